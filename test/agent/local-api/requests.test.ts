import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeApiRequest, ROUTES } from '../../../agent/local-api/requests.ts';
import { isOutpostError } from '../../../protocol/errors.ts';
import { assertDecoderTotal, jsonTextInputs } from '../../support/fuzz.ts';

const limits = { maxBodyBytes: 64 * 1024 };

const seeds = [
  { tool: 'greenhouse.fan.set', args: { speed_pct: 40 }, call_id: 'c0ffee00c0ffee00', token: 'a.b.c' },
  { call_id: 'c0ffee00c0ffee00', token: 'a.b.c', quorum: 'q' },
  { records: [{ stream: 'greenhouse.air.temperature', value: 21.5, ts_ms: 1767225600000 }] },
  {
    records: [
      { stream: 'door.events', value: 'open', quality: ['estimated'] },
      { stream: 'door.events', value: true },
    ],
  },
];

describe('decodeApiRequest', () => {
  it('decodes each route', () => {
    assert.deepEqual(decodeApiRequest('GET', '/v1/status', '', limits), { kind: 'status' });
    assert.deepEqual(decodeApiRequest('GET', '/v1/telemetry?stream=a.b&limit=5', '', limits), {
      kind: 'telemetry.tail',
      query: { stream: 'a.b', limit: 5, wait_ms: 0 },
    });
    const call = decodeApiRequest('POST', '/v1/tools/call', JSON.stringify(seeds[0]), limits);
    assert.equal(call.kind, 'tools.call');
    const push = decodeApiRequest('POST', '/v1/telemetry', JSON.stringify(seeds[2]), limits);
    assert.equal(push.kind, 'telemetry.push');
  });

  const bad: [string, string, string, string, string][] = [
    ['unknown path', 'GET', '/v2/status', '', 'ROUTE_NOT_FOUND'],
    ['wrong method', 'DELETE', '/v1/status', '', 'METHOD_NOT_ALLOWED'],
    ['unknown query key', 'GET', '/v1/status?x=1', '', 'REQUEST_MALFORMED'],
    ['repeated query key', 'GET', '/v1/telemetry?limit=1&limit=2', '', 'REQUEST_MALFORMED'],
    ['limit out of range', 'GET', '/v1/telemetry?limit=100000', '', 'REQUEST_MALFORMED'],
    ['body on GET', 'GET', '/v1/status', '{}', 'REQUEST_MALFORMED'],
    ['not JSON', 'POST', '/v1/tools/call', '{', 'REQUEST_MALFORMED'],
    ['extra member', 'POST', '/v1/tools/call', '{"tool":"a.b","sudo":true}', 'REQUEST_MALFORMED'],
    ['bad tool name', 'POST', '/v1/tools/call', '{"tool":"A"}', 'REQUEST_MALFORMED'],
    ['empty batch', 'POST', '/v1/telemetry', '{"records":[]}', 'REQUEST_MALFORMED'],
    ['array value', 'POST', '/v1/telemetry', '{"records":[{"stream":"a.b","value":[1]}]}', 'REQUEST_MALFORMED'],
    ['object value', 'POST', '/v1/telemetry', '{"records":[{"stream":"a.b","value":{"t":1}}]}', 'REQUEST_MALFORMED'],
    [
      'unknown quality flag',
      'POST',
      '/v1/telemetry',
      '{"records":[{"stream":"a.b","value":1,"quality":["x"]}]}',
      'REQUEST_MALFORMED',
    ],
    [
      'too large',
      'POST',
      '/v1/telemetry',
      JSON.stringify({ records: [{ stream: 'a.b', value: 'x'.repeat(70_000) }] }),
      'REQUEST_TOO_LARGE',
    ],
    ['relative target', 'GET', 'v1/status', '', 'REQUEST_MALFORMED'],
  ];
  for (const [name, method, target, body, code] of bad) {
    it(`refuses ${name}`, () =>
      assert.throws(
        () => decodeApiRequest(method, target, body, limits),
        (e) => isOutpostError(e, code),
      ));
  }

  it('never throws untyped on mutated bodies (fuzz)', () => {
    const posts = ROUTES.filter((r) => r.method === 'POST').map((r) => r.path);
    const r = assertDecoderTotal(fc.tuple(fc.constantFrom(...posts), jsonTextInputs(seeds)), ([path, body]) =>
      decodeApiRequest('POST', path, body, limits),
    );
    assert.ok(r.accepted > 0 && r.rejected > 0);
  });

  it('never throws untyped on mutated targets (fuzz)', () => {
    const target = fc.oneof(
      fc.string({ maxLength: 80 }).map((s) => `/v1/telemetry?${s}`),
      fc.string({ maxLength: 80 }).map((s) => `/${s}`),
      fc.constantFrom(...ROUTES.map((r) => r.path)),
    );
    const method = fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', '');
    const r = assertDecoderTotal(fc.tuple(method, target, fc.constantFrom('', '{}')), ([m, t, b]) =>
      decodeApiRequest(m, t, b, limits),
    );
    assert.ok(r.accepted > 0 && r.rejected > 0);
  });
});
