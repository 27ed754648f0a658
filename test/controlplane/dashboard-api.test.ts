// What the dashboard reads, over a real control plane on loopback: the static files and their headers, the event
// stream (a change for each topic, coalesced, only for operators, capped per process), the recent audit entries
// and the newest telemetry first-in-order.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DASHBOARD_ASSETS } from '../../controlplane/dashboard-assets.generated.ts';
import { MAX_EVENT_STREAMS } from '../../controlplane/event-stream.ts';
import { createControlPlaneEvents, topicOfAuditKind } from '../../controlplane/events.ts';
import { DASHBOARD_CSP } from '../../controlplane/http-api.ts';
import { signTelemetryUnit } from '../../protocol/telemetry.ts';
import {
  api,
  mintCallerToken,
  mintEnrollToken,
  readings,
  SimDevice,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/controlplane.ts';

/** Reads server-sent events from a fetch body until `want` says it has what it needs. */
async function readEvents(
  response: Response,
  want: (events: { event: string; data: unknown }[]) => boolean,
): Promise<{ event: string; data: unknown }[]> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { event: string; data: unknown }[] = [];
  let buffer = '';
  while (!want(events)) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) });
    }
  }
  await reader.cancel();
  return events;
}

describe('control plane: what the dashboard reads', () => {
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane();
  });
  after(async () => {
    await cp.close();
  });

  it('serves the page and its two files with a same-origin CSP, and revalidates by etag', async () => {
    const root = await fetch(`${cp.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/dashboard/');
    for (const [path, name] of [
      ['/dashboard/', 'index.html'],
      ['/dashboard/app.js', 'app.js'],
      ['/dashboard/style.css', 'style.css'],
    ] as const) {
      const r = await fetch(`${cp.url}${path}`);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-security-policy'), DASHBOARD_CSP);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
      assert.equal(await r.text(), DASHBOARD_ASSETS[name]!.body);
      const again = await fetch(`${cp.url}${path}`, { headers: { 'if-none-match': r.headers.get('etag')! } });
      assert.equal(again.status, 304);
    }
    assert.equal((await fetch(`${cp.url}/dashboard/../metrics`)).status, 200, 'URL normalisation, not a file');
    assert.equal((await fetch(`${cp.url}/dashboard/secret.txt`)).status, 404);
    // Nothing the page loads comes from elsewhere.
    assert.doesNotMatch(DASHBOARD_ASSETS['index.html']!.body, /(src|href)="(https?:)?\/\//);
  });

  it('streams a change per topic to operators only, coalesced, and caps the open streams', async () => {
    const anon = await fetch(`${cp.url}/v1/operator/events`);
    assert.equal(anon.status, 401);
    const caller = await mintCallerToken(cp, { role: 'viewer', subject: 'llm' });
    assert.equal(
      (await fetch(`${cp.url}/v1/operator/events`, { headers: { authorization: `Bearer ${caller}` } })).status,
      403,
    );

    const stream = await fetch(`${cp.url}/v1/operator/events`, {
      headers: { authorization: `Bearer ${cp.operatorKey}` },
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type')!, /^text\/event-stream/);
    const device = new SimDevice('streamer');
    const seen = readEvents(stream, (events) => {
      const topics = new Set(events.flatMap((e) => (e.data as { topics?: string[] }).topics ?? []));
      return topics.has('devices') && topics.has('telemetry') && topics.has('audit');
    });
    await device.enroll(cp, await mintEnrollToken(cp));
    const s = await device.session();
    s.send('telemetry.batch', { units: [signTelemetryUnit(device.seed, readings(1, 5))] });
    await s.next('telemetry.ack');
    const events = await seen;
    assert.equal(events[0]!.event, 'hello');
    assert.ok(events.slice(1).every((e) => e.event === 'change'));
    // Events name topics, never records.
    for (const e of events.slice(1)) assert.deepEqual(Object.keys(e.data as object), ['topics']);
    s.ws.close();

    // The cap: streams beyond it are refused, and a closed stream frees its place.
    const open: Response[] = [];
    const events2 = cp.host.controlPlane.context.events;
    while (events2.subscribers < MAX_EVENT_STREAMS) {
      open.push(
        await fetch(`${cp.url}/v1/operator/events`, { headers: { authorization: `Bearer ${cp.operatorKey}` } }),
      );
    }
    const refused = await fetch(`${cp.url}/v1/operator/events`, {
      headers: { authorization: `Bearer ${cp.operatorKey}` },
    });
    assert.equal(refused.status, 429);
    for (const r of open) await r.body!.cancel();
    const deadline = Date.now() + 10_000;
    while (events2.subscribers > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(events2.subscribers, 0, 'a client that goes away unsubscribes');
  });

  it('lists the newest audit entries with the chain status (root operators only)', async () => {
    const caller = await mintCallerToken(cp, { role: 'admin', subject: 'ops' }); // audited: at least 3 entries now
    const r = await api(cp.url, '/v1/operator/audit/recent?limit=3', { auth: cp.operatorKey });
    assert.equal(r.status, 200);
    assert.equal(r.body.chainVerified, true);
    const entries = r.body.entries as { seq: number; type: string }[];
    assert.equal(entries.length, 3);
    assert.ok(entries.every((e) => e.type === 'audit-entry'));
    assert.ok(entries[0]!.seq < entries[2]!.seq, 'oldest first');
    assert.equal(entries[2]!.seq, r.body.headSeq, 'ends at the head');
    assert.equal((await api(cp.url, '/v1/operator/audit/recent', { auth: caller })).status, 403);
  });

  it('returns the newest telemetry records, in order, with newest=1', async () => {
    const device = new SimDevice('plotter');
    await device.enroll(cp, await mintEnrollToken(cp));
    const s = await device.session();
    s.send('telemetry.batch', { units: [signTelemetryUnit(device.seed, readings(1, 30))] });
    await s.next('telemetry.ack');
    s.ws.close();
    const q = (extra: string) =>
      api(cp.url, `/v1/operator/telemetry?device=${encodeURIComponent(device.did)}&limit=5${extra}`, {
        auth: cp.operatorKey,
      });
    const first = (await q('')).body.records as { seq: number }[];
    const newest = (await q('&newest=1')).body.records as { seq: number }[];
    assert.deepEqual(
      first.map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      newest.map((r) => r.seq),
      [26, 27, 28, 29, 30],
    );
  });
});

describe('control plane events', () => {
  it('map audit kinds onto topics', () => {
    assert.equal(topicOfAuditKind('approval.deny'), 'approvals');
    assert.equal(topicOfAuditKind('tool.call'), 'calls');
    assert.equal(topicOfAuditKind('enroll'), 'devices');
    assert.equal(topicOfAuditKind('session.close'), 'devices');
    assert.equal(topicOfAuditKind('token.mint'), undefined);
  });

  it('reach every subscriber even when one throws, and stop after unsubscribe', () => {
    const bus = createControlPlaneEvents();
    const got: string[] = [];
    const offA = bus.subscribe(() => {
      throw new Error('broken view');
    });
    const offB = bus.subscribe((t) => got.push(t));
    bus.emit('audit');
    offA();
    offB();
    bus.emit('devices');
    assert.deepEqual(got, ['audit']);
    assert.equal(bus.subscribers, 0);
  });
});
