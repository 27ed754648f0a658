import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { deviceView } from '../../controlplane/devices.ts';
import { CLOSE } from '../../controlplane/hub-session.ts';
import { createControlPlaneMetrics } from '../../controlplane/metrics.ts';
import { CONTROL_PLANE_AUDIENCE } from '../../controlplane/settings.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { type BodyOf, type Envelope, encodeEnvelope, WIRE_ERROR_CODES } from '../../protocol/envelope.ts';
import { manifestHash } from '../../protocol/manifest.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { signTelemetryUnit } from '../../protocol/telemetry.ts';
import { verifyRuntimeToken } from '../../protocol/tokens.ts';
import { greenhouseManifest, readings } from '../support/controlplane.ts';
import { fuzzCases, jsonTextInputs } from '../support/fuzz.ts';
import { type CoreHarness, CoreSession, createCoreHarness, enrollCoreDevice } from '../support/hub-harness.ts';

async function openSession(h: CoreHarness, name: string) {
  const device = await enrollCoreDevice(h, name);
  const s = new CoreSession(h, device);
  await s.hello();
  await s.conn.next('hello.ack');
  return s;
}

async function auditReasons(h: CoreHarness, kind: string): Promise<string[]> {
  const { lines } = await h.state.store.exportAudit();
  return lines
    .map((l) => JSON.parse(l) as { type: string; kind?: string; reason?: string })
    .filter((e) => e.type === 'audit-entry' && e.kind === kind)
    .map((e) => e.reason!);
}

describe('hub session (aethermesh.v2)', () => {
  let h: CoreHarness;
  const clock = new FakeClock(Date.UTC(2026, 5, 1, 12));
  before(async () => {
    h = await createCoreHarness(clock, { maxEnvelopeBytes: 64 * 1024 });
  });
  after(() => h.close());

  it('sends a challenge at once and acknowledges a valid hello with the resume point', async () => {
    const device = await enrollCoreDevice(h, 'hello-ok');
    const s = new CoreSession(h, device);
    const challenge = await s.conn.next('hello.challenge');
    assert.equal(challenge.dst, '*');
    assert.equal(challenge.seq, 0);
    assert.equal(challenge.tid, h.tid);
    await s.hello();
    const ack = await s.conn.next('hello.ack');
    assert.equal(ack.seq, 1);
    assert.equal(ack.dst, device.did);
    assert.equal(ack.body.resume.ackedThroughSeq, null);
    assert.equal(h.cp.context.sessions.get(device.did)?.sessionId, ack.body.sessionId);
  });

  it('refuses a hello replayed on another connection (its challenge is not this one) and audits it', async () => {
    const device = await enrollCoreDevice(h, 'replayed');
    const first = new CoreSession(h, device);
    await first.hello();
    const firstAck = await first.conn.next('hello.ack');
    // The hello as a relay would have recorded it: signed, over the first connection's challenge.
    const helloText = encodeEnvelope(
      first.build(
        'hello',
        {
          token: device.token,
          device: device.did,
          agentVersion: '0.0.0',
          manifestHash: manifestHash(greenhouseManifest(device.did, device.name)),
          resume: { lastAckedSeq: null },
          challenge: (first.conn.sent[0] as Extract<Envelope, { type: 'hello.challenge' }>).body.nonce,
        },
        { seq: 0 },
      ),
    );
    const second = new CoreSession(h, device);
    await second.hub.onText(helloText);
    const err = await second.conn.next('error');
    assert.equal(err.body.code, 'HANDSHAKE_FAILED');
    assert.equal(second.conn.closed?.code, CLOSE.policy);
    assert.ok((await auditReasons(h, 'session.hello')).includes('CHALLENGE_MISMATCH'));
    // The first session is untouched.
    assert.equal(h.cp.context.sessions.get(device.did)?.sessionId, firstAck.body.sessionId);
    assert.equal(first.conn.closed, undefined);
  });

  it('closes a connection that sends anything before hello, or nothing in time', async () => {
    const device = await enrollCoreDevice(h, 'impatient');
    const s = new CoreSession(h, device);
    await s.hub.onText(encodeEnvelope(s.build('ping', {})));
    assert.equal((await s.conn.next('error')).body.code, 'HANDSHAKE_REQUIRED');
    assert.equal(s.conn.closed?.code, CLOSE.policy);

    // A peer that never named itself cannot be addressed by an envelope: the close reason carries the code.
    const slow = new CoreSession(h, device);
    clock.advance(h.cp.context.settings.handshakeTimeoutMs);
    h.scheduler.run();
    assert.deepEqual(slow.conn.closed, { code: CLOSE.policy, reason: 'HANDSHAKE_TIMEOUT' });
  });

  it('refuses an expired session token with TOKEN_EXPIRED, and a token of another device', async () => {
    const local = new FakeClock(Date.UTC(2026, 5, 1, 12));
    const h2 = await createCoreHarness(local);
    try {
      const a = await enrollCoreDevice(h2, 'expiring');
      const b = await enrollCoreDevice(h2, 'other');
      local.advance(h2.cp.context.settings.deviceTokenTtlMs + 120_000);
      const s = new CoreSession(h2, a);
      await s.hello();
      assert.equal((await s.conn.next('error')).body.code, 'TOKEN_EXPIRED');
      assert.equal(s.conn.closed?.code, CLOSE.policy);
      const fresh = await enrollCoreDevice(h2, 'fresh');
      const t = new CoreSession(h2, { ...b, token: fresh.token });
      await t.hello();
      assert.equal((await t.conn.next('error')).body.code, 'HANDSHAKE_FAILED');
    } finally {
      h2.close();
    }
  });

  it('refuses envelopes for another tenant on this tenant’s connection', async () => {
    const s = await openSession(h, 'cross-tenant');
    const other = '00000000-0000-5000-8000-000000000000';
    s.seq--; // the refused envelope does not consume a seq
    await s.hub.onText(encodeEnvelope(s.build('ping', {}, { tid: other })));
    assert.equal((await s.conn.next('error')).body.code, 'ENVELOPE_WRONG_TENANT');
    assert.equal(s.conn.closed, undefined);
    assert.ok((await auditReasons(h, 'envelope')).includes('ENVELOPE_WRONG_TENANT'));
  });

  it('answers each kind of bad envelope with its typed error and keeps the session', async () => {
    const s = await openSession(h, 'bad-input');
    const cases: [string, string][] = [
      ['{not json', 'ENVELOPE_MALFORMED'],
      [JSON.stringify({ v: 2, type: 'teleport' }), 'ENVELOPE_UNKNOWN_TYPE'],
      [JSON.stringify({ v: 3 }), 'ENVELOPE_BAD_VERSION'],
      ['x'.repeat(70_000), 'ENVELOPE_TOO_LARGE'],
    ];
    for (const [text, code] of cases) {
      await s.hub.onText(text);
      assert.equal((await s.conn.next('error')).body.code, code, text.slice(0, 30));
    }
    const good = s.build('ping', {});
    s.seq--;
    const forged = { ...good, body: { extra: 1 } } as unknown as Envelope;
    await s.hub.onText(JSON.stringify(forged));
    assert.equal((await s.conn.next('error')).body.code, 'ENVELOPE_UNKNOWN_FIELD');
    const tampered = { ...good, ts: good.ts + 1 };
    await s.hub.onText(JSON.stringify(tampered));
    const bad = await s.conn.next('error');
    assert.equal(bad.body.code, 'ENVELOPE_BAD_SIGNATURE');
    assert.equal(bad.body.inReplyTo, good.id);
    await s.hub.onText(
      encodeEnvelope(
        s.build('hello.ack', { sessionId: 'a'.repeat(22), heartbeatMs: 1000, resume: { ackedThroughSeq: null } }),
      ),
    );
    assert.equal((await s.conn.next('error')).body.code, 'FORBIDDEN');
    await s.hub.onText(
      encodeEnvelope(s.build('tool.result', { callId: 'b'.repeat(22), ok: true, result: 1, durationMs: 1 })),
    );
    assert.equal((await s.conn.next('error')).body.code, 'UNKNOWN_CALL');
    // Still serving: a ping is answered.
    const ping = s.send('ping', {});
    await s.conn.next('pong', (p) => p.body.inReplyTo === ping.id);
    assert.equal(s.conn.closed, undefined);
  });

  it('closes on a sequence violation and on a binary frame', async () => {
    const s = await openSession(h, 'seq-breaker');
    s.seq += 5;
    await s.hub.onText(encodeEnvelope(s.build('ping', {})));
    assert.equal((await s.conn.next('error')).body.code, 'SEQ_VIOLATION');
    assert.equal(s.conn.closed?.code, CLOSE.policy);
    const t = await openSession(h, 'binary');
    t.hub.onBinary();
    assert.equal(t.conn.closed?.code, CLOSE.unsupportedData);
  });

  it('stores telemetry exactly once, acknowledges by range, flags misfits and refuses conflicts', async () => {
    const s = await openSession(h, 'telemetry');
    const ctx = h.cp.context;
    const batch = s.send('telemetry.batch', { units: [signTelemetryUnit(s.device.seed, readings(1, 10))] });
    const ack = await s.conn.next('telemetry.ack');
    assert.deepEqual(ack.body.ranges, [{ device: s.device.did, fromSeq: 1, toSeq: 10 }]);
    assert.ok(batch);
    // The same unit again (a resend after a lost ack) is acknowledged and not stored twice.
    s.send('telemetry.batch', { units: [signTelemetryUnit(s.device.seed, readings(1, 10))] });
    await s.conn.next('telemetry.ack');
    assert.equal(await ctx.store.countTelemetry(h.tid, s.device.did), 10);
    // Same seq, other content: not stored, audited.
    s.send('telemetry.batch', {
      units: [signTelemetryUnit(s.device.seed, [{ seq: 3, stream: 'soil.moisture', ts: 1, value: 99 }])],
    });
    await s.conn.next('telemetry.ack');
    assert.ok((await auditReasons(h, 'telemetry.conflict')).includes('CONTENT_DIFFERS'));
    const stored = await ctx.store.listTelemetry({ tid: h.tid, device: s.device.did, limit: 100 });
    assert.notEqual(stored.find((r) => r.seq === 3)?.value, 99);
    // A stream the manifest does not declare, or a value of the wrong type: acknowledged, kept as misfit.
    s.send('telemetry.batch', {
      units: [
        signTelemetryUnit(s.device.seed, [
          { seq: 11, stream: 'no.such', ts: 1, value: 1 },
          { seq: 12, stream: 'soil.moisture', ts: 1, value: 'wet' },
        ]),
      ],
    });
    assert.deepEqual((await s.conn.next('telemetry.ack')).body.ranges, [
      { device: s.device.did, fromSeq: 11, toSeq: 12 },
    ]);
    const misfits = (await ctx.store.listTelemetry({ tid: h.tid, device: s.device.did, afterSeq: 10, limit: 10 })).map(
      (r) => r.misfit,
    );
    assert.deepEqual(misfits, [true, true]);
    // Another device's unit on this session: refused, not acknowledged.
    const other = await enrollCoreDevice(h, 'not-mine');
    s.send('telemetry.batch', { units: [signTelemetryUnit(other.seed, readings(1, 2))] });
    assert.equal((await s.conn.next('error')).body.code, 'FORBIDDEN');
    assert.equal(await ctx.store.countTelemetry(h.tid, other.did), 0);
    // The resume point on the next hello covers the contiguous stored run.
    assert.equal(await ctx.store.telemetryResumePoint(s.device.did, 0), 12);
  });

  it('holds a changed manifest for approval and routes nothing against it until accepted', async () => {
    const s = await openSession(h, 'changer');
    const m = greenhouseManifest(s.device.did, 'changer');
    const changed = {
      ...m,
      tools: m.tools.map((t) => (t.name === 'valve.open' ? { ...t, safety_class: 'read_only' as const } : t)),
    };
    s.send('manifest.announce', { manifest: changed, manifestHash: manifestHash(changed) });
    const ack = await s.conn.next('manifest.ack');
    assert.equal(ack.body.status, 'pending_approval');
    const record = await h.cp.context.store.getDevice(s.device.did);
    assert.equal(record?.pending?.hash, manifestHash(changed));
    assert.ok((await auditReasons(h, 'manifest.change')).includes('CLASS_DOWNGRADE'));
    // Announcing the accepted one again clears the pending change.
    s.send('manifest.announce', { manifest: m, manifestHash: manifestHash(m) });
    assert.equal((await s.conn.next('manifest.ack')).body.status, 'accepted');
    assert.equal((await h.cp.context.store.getDevice(s.device.did))?.pending, undefined);
  });

  it('refreshes the session token over the link', async () => {
    const s = await openSession(h, 'refresher');
    s.send('token.refresh', { token: s.device.token });
    const r = await s.conn.next('token.refreshed');
    assert.ok(r.body.jwks);
    const v = await verifyRuntimeToken(r.body.token, {
      jwks: r.body.jwks!,
      clock,
      issuer: h.cp.context.settings.issuer,
      audience: CONTROL_PLANE_AUDIENCE,
    });
    assert.equal(v.claims.sub, s.device.did);
    s.send('token.refresh', { token: 'not.a.token' });
    assert.equal((await s.conn.next('error')).body.code, 'UNAUTHENTICATED');
  });

  it('pings an idle peer and closes one silent for three heartbeats', async () => {
    const s = await openSession(h, 'silent');
    const hb = h.cp.context.settings.heartbeatMs;
    clock.advance(hb);
    h.scheduler.run();
    const ping = await s.conn.next('ping');
    s.send('pong', { inReplyTo: ping.id });
    clock.advance(3 * hb);
    h.scheduler.run();
    await s.conn.whenClosed();
    assert.equal(s.conn.closed?.code, CLOSE.goingAway);
    assert.equal(h.cp.context.sessions.get(s.device.did), undefined);
  });

  it('replaces an older session of the same device', async () => {
    const a = await openSession(h, 'twice');
    const b = new CoreSession(h, a.device);
    await b.hello();
    await b.conn.next('hello.ack');
    assert.equal((await a.conn.next('error')).body.code, 'SESSION_REPLACED');
    assert.equal(a.conn.closed?.code, CLOSE.policy);
    assert.equal(
      h.cp.context.sessions.get(a.device.did)?.sessionId,
      (b.conn.sent[1] as Extract<Envelope, { type: 'hello.ack' }>).body.sessionId,
    );
  });

  it('slows a flooding session down to its rate (never dropping while it is short) and keeps serving others', async () => {
    const local = new FakeClock(Date.UTC(2026, 5, 1, 12));
    const h2 = await createCoreHarness(local, { envelopeBurst: 20, envelopesPerSecond: 10 });
    try {
      const flood = await openSession(h2, 'flood');
      const quiet = await openSession(h2, 'quiet');
      const pings = Array.from({ length: 40 }, () => flood.build('ping', {}));
      const done = Promise.all(pings.map((p) => flood.hub.onText(encodeEnvelope(p))));
      // What is left of the burst (the hello took one) is answered at once; then the session is told it is over
      // its rate, and waits.
      assert.equal((await flood.conn.next('error')).body.code, 'RATE_LIMITED');
      assert.equal(flood.conn.sent.filter((e) => e.type === 'pong').length, 19);
      // Meanwhile another device is served at once.
      const ping = quiet.send('ping', {});
      await quiet.conn.next('pong', (p) => p.body.inReplyTo === ping.id);
      // As time passes the rest is processed, in order, none dropped.
      for (let i = 0; i < 40 && flood.conn.sent.filter((e) => e.type === 'pong').length < 40; i++) {
        local.advance(100);
        h2.scheduler.run();
        await new Promise((r) => setImmediate(r));
      }
      await done;
      assert.equal(flood.conn.sent.filter((e) => e.type === 'pong').length, 40);
      assert.equal(flood.conn.closed, undefined);
    } finally {
      h2.close();
    }
  });

  it('drops envelopes beyond the queue bound of a host without backpressure, then closes a flooder', async () => {
    const local = new FakeClock(Date.UTC(2026, 5, 1, 12));
    const h2 = await createCoreHarness(local, { envelopeBurst: 1, envelopesPerSecond: 1 });
    try {
      const flood = await openSession(h2, 'flood2');
      for (let i = 0; i < 1100; i++) void flood.hub.onText(encodeEnvelope(flood.build('ping', {})));
      assert.ok(flood.conn.sent.some((e) => e.type === 'error' && e.body.code === 'RATE_LIMITED'));
      assert.equal(flood.conn.closed, undefined, 'some drops do not close');
      for (let i = 0; i < 1100 && !flood.conn.closed; i++)
        void flood.hub.onText(encodeEnvelope(flood.build('ping', {})));
      assert.equal((flood.conn.closed as { code: number } | undefined)?.code, CLOSE.policy);
    } finally {
      h2.close();
    }
  });

  it(`survives ${fuzzCases()} fuzzed envelopes with typed errors, and serves other devices meanwhile`, async () => {
    const local = new FakeClock(Date.UTC(2026, 5, 1, 12));
    const h2 = await createCoreHarness(local, {
      maxViolations: Number.MAX_SAFE_INTEGER,
      envelopesPerSecond: 1e9,
      envelopeBurst: 1e9,
      maxEnvelopeBytes: 64 * 1024,
    });
    try {
      let s = await openSession(h2, 'fuzzed');
      const m = greenhouseManifest(s.device.did, 'fuzzed');
      const seeds: Envelope[] = [
        s.build('ping', {}),
        s.build('pong', { inReplyTo: 'c'.repeat(22) }),
        s.build('telemetry.batch', { units: [signTelemetryUnit(s.device.seed, readings(100, 3))] }),
        s.build('tool.result', {
          callId: 'd'.repeat(22),
          ok: false,
          error: { code: 'X', message: 'y' },
          durationMs: 1,
        }),
        s.build('manifest.announce', { manifest: m, manifestHash: manifestHash(m) }),
        s.build('token.refresh', { token: s.device.token }),
        s.build('error', { code: 'INTERNAL', message: 'x', inReplyTo: null }),
      ];
      const inputs = fc.sample(jsonTextInputs(seeds), { numRuns: fuzzCases(), seed: 42 });
      const other = await openSession(h2, 'bystander');
      const codes: string[] = [];
      let served = 0;
      let reconnects = 0;
      for (const [i, text] of inputs.entries()) {
        if (s.conn.closed) {
          // A sequence violation ends a session, as the contract says; the device reconnects and the run goes on.
          codes.push(
            ...s.conn.sent
              .filter((e) => e.type === 'error')
              .map((e) => (e as Extract<Envelope, { type: 'error' }>).body.code),
          );
          const device = s.device;
          s = new CoreSession(h2, device);
          await s.hello();
          await s.conn.next('hello.ack');
          reconnects++;
        }
        await s.hub.onText(text);
        if (i % 1000 === 0) {
          const ping = other.send('ping', {});
          await other.conn.next('pong', (p) => p.body.inReplyTo === ping.id);
          served++;
        }
      }
      codes.push(
        ...s.conn.sent
          .filter((e) => e.type === 'error')
          .map((e) => (e as Extract<Envelope, { type: 'error' }>).body.code),
      );
      assert.ok(codes.length > inputs.length / 2, `${codes.length} refusals for ${inputs.length} inputs`);
      assert.ok(reconnects < inputs.length / 10);
      assert.ok(!codes.includes('INTERNAL'), 'no input may cause an internal error');
      for (const c of codes) assert.ok((WIRE_ERROR_CODES as readonly string[]).includes(c));
      assert.ok(served >= 1);
      const ping = other.send('ping', {});
      await other.conn.next('pong', (p) => p.body.inReplyTo === ping.id);
    } finally {
      h2.close();
    }
  });
});

describe('hub session: lora.health', () => {
  let h: CoreHarness;
  const clock = new FakeClock(Date.UTC(2026, 5, 1, 12));
  before(async () => {
    h = await createCoreHarness(clock);
  });
  after(() => h.close());

  const report: BodyOf<'lora.health'> = {
    radios: [
      {
        name: 'rnode0',
        kind: 'rnode',
        state: 'ready',
        ready: true,
        airtime: { windowMs: 9_000, budgetUsed: 0.25, totalMs: 12_000 },
        frames: { received: 40, sent: 7, dropped: 2 },
        rssiDbm: {
          buckets: [
            { le: -100, count: 10 },
            { le: '+Inf', count: 40 },
          ],
          count: 40,
          sum: -3_800,
        },
        snrDb: null,
        lastRxMs: Date.UTC(2026, 5, 1, 11, 59),
      },
    ],
    uplinkBacklog: 3,
    downlinkBacklog: 1,
  };

  /** Resolves once every envelope sent before it has been processed (the hub handles a session's in order). */
  async function drain(s: CoreSession): Promise<void> {
    const ping = s.send('ping', {});
    await s.conn.next('pong', (p) => p.body.inReplyTo === ping.id);
  }

  async function open(name: string, role: 'device' | 'gateway') {
    const s = new CoreSession(h, await enrollCoreDevice(h, name, h.operatorKey, role));
    await s.hello();
    await s.conn.next('hello.ack');
    return s;
  }

  it('refuses lora.health from a device session, as every lora.* type, and keeps nothing', async () => {
    const s = await open('health-device', 'device');
    const env = s.send('lora.health', report);
    const err = await s.conn.next('error');
    assert.equal(err.body.code, 'FORBIDDEN');
    assert.equal(err.body.inReplyTo, env.id);
    await drain(s);
    assert.equal(s.conn.closed, undefined);
    assert.equal(h.cp.context.lora.healthOf(s.device.did), undefined);
    const record = (await h.state.store.getDevice(s.device.did))!;
    assert.equal(deviceView(h.cp.context, record).gateway, null);
  });

  it('keeps a gateway’s latest report with its receive time in the device view, after it disconnects too', async () => {
    const s = await open('health-gw', 'gateway');
    const record = (await h.state.store.getDevice(s.device.did))!;
    assert.equal(deviceView(h.cp.context, record).gateway, null);
    s.send('lora.health', report);
    await drain(s);
    const receivedAt = clock.nowMs();
    assert.deepEqual(deviceView(h.cp.context, record).gateway, { atMs: receivedAt, ...report });
    // Not acknowledged: nothing is stored for the gateway to release.
    assert.equal(
      s.conn.sent.some((e) => e.type === 'lora.ack'),
      false,
    );
    const metrics = createControlPlaneMetrics(
      new MetricsRegistry(),
      () => 0,
      () => h.cp.context.lora.healthReports(),
    );
    assert.ok(
      metrics.gatewayRadioBudgetUsed
        .render()
        .includes('outpost_cp_gateway_radio_airtime_budget_used{gateway="health-gw",radio="rnode0"} 0.25'),
    );

    // A newer report replaces it; after the session closes the report stays, its atMs telling its age.
    clock.advance(30_000);
    const next = { ...report, radios: [{ ...report.radios[0]!, state: 'absent' as const, ready: false }] };
    s.send('lora.health', next);
    await drain(s);
    s.hub.onClose();
    clock.advance(60_000);
    const view = deviceView(h.cp.context, record);
    assert.equal(view.online, false);
    assert.deepEqual(view.gateway, { atMs: receivedAt + 30_000, ...next });
  });
});
