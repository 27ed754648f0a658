import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentError } from '../../../agent/errors.ts';
import { createLocalApiClient } from '../../../agent/local-api/client.ts';
import type { ApiRequest } from '../../../agent/local-api/requests.ts';
import { createLocalApiServer, type LocalApiServer } from '../../../agent/local-api/server.ts';
import { isOutpostError } from '../../../protocol/errors.ts';
import { silentLogger } from '../../../protocol/log.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-api-'));
const socketPath = join(dir, 'agent.sock');
let server: LocalApiServer;

async function handle(req: ApiRequest, signal: AbortSignal): Promise<unknown> {
  if (req.kind === 'tools.call' && req.body.tool === 'fail.typed') throw new AgentError('TOOL_NOT_FOUND', 'nope');
  if (req.kind === 'tools.call' && req.body.tool === 'fail.untyped') throw new TypeError('secret detail');
  if (req.kind === 'telemetry.tail' && req.query.wait_ms > 0) {
    await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
    return { aborted: true };
  }
  return { echo: req };
}

function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const r = request({ socketPath, method, path, headers }, (res) => {
      answered = true;
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    // The server may answer 413 and close while the body is still being written (EPIPE): the answer counts.
    r.on('error', (e) => (answered ? undefined : reject(e)));
    r.end(body);
  });
}

before(async () => {
  server = createLocalApiServer({
    socketPath,
    socketMode: 0o660,
    maxBodyBytes: 4096,
    requestTimeoutMs: 5000,
    handle,
    log: silentLogger,
  });
  await server.listen();
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('local API server and client', () => {
  const client = createLocalApiClient({ socketPath });

  it('creates the socket with mode 0660', () => {
    assert.equal(statSync(socketPath).mode & 0o777, 0o660);
  });

  it('decodes a request and returns the handler result', async () => {
    const r = await client.post<{ echo: ApiRequest }>('/v1/tools/call', {
      tool: 'system.echo',
      args: { message: 'hi' },
    });
    assert.deepEqual(r.echo, { kind: 'tools.call', body: { tool: 'system.echo', args: { message: 'hi' } } });
  });

  it('returns typed errors with their code', async () => {
    await assert.rejects(client.post('/v1/tools/call', { tool: 'fail.typed' }), (e) =>
      isOutpostError(e, 'TOOL_NOT_FOUND'),
    );
    await assert.rejects(client.get('/v1/nothing'), (e) => isOutpostError(e, 'ROUTE_NOT_FOUND'));
    await assert.rejects(client.post('/v1/status', {}), (e) => isOutpostError(e, 'METHOD_NOT_ALLOWED'));
    await assert.rejects(client.post('/v1/tools/call', { tool: 'BAD' }), (e) => isOutpostError(e, 'REQUEST_MALFORMED'));
  });

  it('hides untyped errors behind INTERNAL', async () => {
    await assert.rejects(
      client.post('/v1/tools/call', { tool: 'fail.untyped' }),
      (e) => isOutpostError(e, 'INTERNAL') && !e.message.includes('secret'),
    );
  });

  it('refuses oversized bodies with 413 and other media types with 415', async () => {
    const big = await raw('POST', '/v1/telemetry', { 'content-type': 'application/json' }, 'x'.repeat(5000));
    assert.equal(big.status, 413);
    const text = await raw('POST', '/v1/tools/call', { 'content-type': 'text/plain' }, '{}');
    assert.equal(text.status, 415);
    const bad = await raw('POST', '/v1/tools/call', { 'content-type': 'application/json' }, '{"tool":');
    assert.equal(bad.status, 400);
  });

  it('aborts long polls when the server closes', async () => {
    const other = join(dir, 'other.sock');
    const s = createLocalApiServer({
      socketPath: other,
      socketMode: 0o600,
      maxBodyBytes: 4096,
      requestTimeoutMs: 5000,
      handle,
      log: silentLogger,
    });
    await s.listen();
    const c = createLocalApiClient({ socketPath: other });
    const poll = c.get<{ aborted: boolean }>('/v1/telemetry', { wait_ms: 60_000 });
    // Wait for the request to reach the handler: a second request on a fresh connection proves the server is up.
    await c.get('/v1/status');
    await s.close();
    assert.deepEqual(await poll, { aborted: true });
  });

  it('answers garbage on the socket with 400 and keeps serving', async () => {
    const { connect } = await import('node:net');
    for (const junk of [
      '\x00\x01\x02 garbage\r\n\r\n',
      'GET /v1/status HTTP/9.9\r\nHost: x\r\n\r\n',
      `GET /${'a'.repeat(20_000)}`,
    ]) {
      const reply = await new Promise<string>((resolve) => {
        const s = connect(socketPath);
        let text = '';
        s.on('data', (c) => (text += c));
        s.on('close', () => resolve(text));
        s.on('error', () => resolve(text));
        s.end(junk);
      });
      assert.match(reply, /^HTTP\/1\.1 4\d\d/);
    }
    assert.ok(await client.get('/v1/status'));
  });

  it('reports DAEMON_DOWN when nothing listens', async () => {
    const c = createLocalApiClient({ socketPath: join(dir, 'absent.sock') });
    await assert.rejects(c.get('/v1/status'), (e) => isOutpostError(e, 'DAEMON_DOWN'));
  });

  it('replaces a stale socket file but refuses to start twice', async () => {
    const second = createLocalApiServer({
      socketPath,
      socketMode: 0o660,
      maxBodyBytes: 4096,
      requestTimeoutMs: 5000,
      handle,
      log: silentLogger,
    });
    await assert.rejects(second.listen(), (e) => isOutpostError(e, 'ALREADY_RUNNING'));
    const notSocket = join(dir, 'file.sock');
    writeFileSync(notSocket, '');
    const third = createLocalApiServer({
      socketPath: notSocket,
      socketMode: 0o660,
      maxBodyBytes: 4096,
      requestTimeoutMs: 5000,
      handle,
      log: silentLogger,
    });
    await assert.rejects(third.listen(), (e) => isOutpostError(e, 'STATE_DIR_UNUSABLE'));
  });
});
