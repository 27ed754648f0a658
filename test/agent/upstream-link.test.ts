// The agent's upstream link against a real control plane on 127.0.0.1: session, tool calls into the gate, telemetry
// acknowledged exactly once, and the faults it must ride out by itself — restarts, a half-open connection through a
// black-holing proxy, a token that expired during an outage, a skewed clock, revocation.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { enroll, readEnrollment, readPolicy, readToken } from '../../agent/enrollment.ts';
import { createUpstreamLink, type UpstreamLink } from '../../agent/upstream-link.ts';
import { toBase64Url, utf8 } from '../../protocol/bytes.ts';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import type { Clock } from '../../protocol/clock.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { createLogger } from '../../protocol/log.ts';
import { manifestHash } from '../../protocol/manifest.ts';
import { approverPublicKey } from '../../protocol/quorum.ts';
import { signEd25519 } from '../../protocol/signing.ts';
import { encodeTelemetryUnit, signTelemetryUnit } from '../../protocol/telemetry.ts';
import { AUDIT_CHECKPOINT_CONTEXT } from '../../store/audit.ts';
import type { Lease } from '../../store/outbox.ts';
import {
  api,
  mintEnrollToken,
  readings,
  SimDevice,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/controlplane.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

/** Real time shifted by an adjustable offset (a wrong or jumping wall clock). */
class OffsetClock implements Clock {
  offsetMs = 0;
  nowMs(): number {
    return Date.now() + this.offsetMs;
  }
  monotonicMs(): number {
    return performance.now();
  }
}

/** A logger whose lines the test can await. */
function watchedLog() {
  const lines: string[] = [];
  const waiters: { re: RegExp; from: number; resolve: (line: string) => void }[] = [];
  const log = createLogger({
    format: 'json',
    level: 'debug',
    sink: (line) => {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    },
  });
  return {
    log,
    lines,
    /** Resolves with the next line (after now) matching `re`. */
    next(re: RegExp): Promise<string> {
      return new Promise((resolve) => waiters.push({ re, from: lines.length, resolve }));
    },
  };
}

interface Rig {
  device: SimDevice;
  stateDir: string;
  link: UpstreamLink;
  watch: ReturnType<typeof watchedLog>;
  calls: { tool: string; args: Record<string, unknown> }[];
  close(): Promise<void>;
}

async function rig(
  cp: TestControlPlane,
  name: string,
  options: { clock?: Clock; heartbeatMs?: number; timeoutMs?: number; rewriteWss?: (url: string) => string } = {},
): Promise<Rig> {
  const device = new SimDevice(name);
  const stateDir = mkdtempSync(join(tmpdir(), 'outpost-link-'));
  await enroll({
    url: cp.url,
    token: await mintEnrollToken(cp),
    stateDir,
    identity: { did: device.did, seed: device.seed },
    manifest: device.manifest,
    replace: false,
    nowMs: Date.now(),
  });
  if (options.rewriteWss) {
    const path = join(stateDir, 'enrollment.json');
    const e = JSON.parse(readFileSync(path, 'utf8')) as { wssUrl: string };
    writeFileSync(path, JSON.stringify({ ...e, wssUrl: options.rewriteWss(e.wssUrl) }));
  }
  const watch = watchedLog();
  const calls: Rig['calls'] = [];
  const link = createUpstreamLink({
    stateDir,
    clock: options.clock ?? { nowMs: () => Date.now(), monotonicMs: () => performance.now() },
    log: watch.log,
    heartbeatMs: options.heartbeatMs ?? 60_000,
    timeoutMs: options.timeoutMs ?? 2_000,
    backoff: { baseMs: 50, capMs: 400, stableMs: 60_000 },
    ackTimeoutMs: 5_000,
  });
  link.bind({
    identity: { did: device.did, seed: device.seed },
    manifest: device.manifest,
    manifestHash: manifestHash(device.manifest),
    async callTool(c) {
      calls.push({ tool: c.tool, args: c.args });
      if (c.tool === 'valve.open') {
        throw new OutpostError('GATE_DENIED', 'physical_actuation needs a quorum token', {
          details: { reason: 'QUORUM_REQUIRED' },
        });
      }
      return { result: { bed: c.args.bed ?? 1, moisturePercent: 12 } };
    },
    auditCheckpoint() {
      const body = {
        v: 1,
        head_seq: 7,
        head_mac: toBase64Url(new Uint8Array(32).fill(3)),
        count: 7,
        ts: 1,
        key_id: device.did,
      };
      return { body, signature: signEd25519(device.seed, AUDIT_CHECKPOINT_CONTEXT, canonicalBytes(body)) };
    },
  });
  return {
    device,
    stateDir,
    link,
    watch,
    calls,
    async close() {
      await link.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

function online(link: UpstreamLink): Promise<void> {
  if (link.state() === 'connected') return Promise.resolve();
  return new Promise((resolve) => {
    const off = link.onStateChange((s) => {
      if (s === 'connected') {
        off();
        resolve();
      }
    });
  });
}

function offline(link: UpstreamLink): Promise<void> {
  if (link.state() === 'disconnected') return Promise.resolve();
  return new Promise((resolve) => {
    const off = link.onStateChange((s) => {
      if (s === 'disconnected') {
        off();
        resolve();
      }
    });
  });
}

function lease(device: SimDevice, firstSeq: number, units: number, perUnit: number): Lease {
  const items = Array.from({ length: units }, (_, i) => {
    const unit = signTelemetryUnit(device.seed, readings(firstSeq + i * perUnit, perUnit, 1_700_000_000_000));
    return {
      stream: 'telemetry',
      seq: firstSeq + i,
      priority: 4,
      payload: utf8(encodeTelemetryUnit(unit)),
      createdWallMs: 0,
      ageMs: 0,
    };
  });
  return { id: firstSeq, items, expiresAtStoreMs: 0 };
}

async function storedCount(cp: TestControlPlane, device: string): Promise<number> {
  const r = await api(cp.url, `/v1/operator/telemetry?device=${encodeURIComponent(device)}&limit=1`, {
    auth: cp.operatorKey,
  });
  return r.body.total as number;
}

describe('upstream link', () => {
  const cpClock = new OffsetClock();
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane({ clock: cpClock });
  });
  after(() => cp.close());

  it('opens a session, announces, answers tool calls through the gate and delivers telemetry acknowledged once', async () => {
    const r = await rig(cp, 'link-basic');
    try {
      const anchored = r.watch.next(/link.audit_anchored/);
      await r.link.start();
      await online(r.link);
      await anchored;
      assert.equal((await cp.host.state.store.listAnchors(r.device.did, 5))[0]?.headSeq, 7);
      assert.equal(r.link.linkState(), 'online');
      const devices = await api(cp.url, '/v1/operator/devices', { auth: cp.operatorKey });
      const view = (devices.body.devices as { device: string; online: boolean; session: { callable: boolean } }[]).find(
        (d) => d.device === r.device.did,
      );
      assert.equal(view?.online, true);
      // Delivery: the link resolves with the outbox items the control plane acknowledged.
      const acked = await r.link.deliver(lease(r.device, 1, 3, 4));
      assert.deepEqual(
        acked,
        [1, 2, 3].map((s) => ({ stream: 'telemetry', from: s, to: s })),
      );
      assert.equal(await storedCount(cp, r.device.did), 12);
      // A resend (ack lost) is acknowledged again and stored once.
      await r.link.deliver(lease(r.device, 1, 3, 4));
      assert.equal(await storedCount(cp, r.device.did), 12);
      // A tool call reaches the binding; a gate refusal comes back as the gate's reason.
      const token = await api(cp.url, '/v1/operator/tokens', {
        body: { role: 'actuator', subject: 'al' },
        auth: cp.operatorKey,
      });
      const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
      const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
      const client = new Client({ name: 't', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${token.body.token}` } },
        }),
      );
      const ok = await client.callTool({ name: 'link-basic.soil.read_moisture', arguments: { bed: 2 } });
      assert.deepEqual(ok.structuredContent, { bed: 2, moisturePercent: 12 });
      assert.deepEqual(r.calls.at(-1), { tool: 'soil.read_moisture', args: { bed: 2 } });
      await client.close();
      const detail = r.link.detail();
      assert.equal(detail.state, 'online');
      assert.equal(detail.tenant, cp.tid);
    } finally {
      await r.close();
    }
  });

  it('reconnects by itself after the control plane restarts, and re-announces its manifest', async () => {
    const r = await rig(cp, 'link-restart');
    try {
      await r.link.start();
      await online(r.link);
      const announced = r.watch.next(/link.manifest_accepted/);
      const down = offline(r.link);
      await cp.restart();
      await down;
      await online(r.link);
      await announced;
      assert.deepEqual(await r.link.deliver(lease(r.device, 1, 1, 2)), [{ stream: 'telemetry', from: 1, to: 1 }]);
    } finally {
      await r.close();
    }
  });

  it('detects a half-open connection within two heartbeats and comes back when the path does', async () => {
    const proxy = await startTcpProxy(cp.port);
    const r = await rig(cp, 'link-halfopen', {
      heartbeatMs: 400,
      timeoutMs: 400,
      rewriteWss: (u) => u.replace(`:${cp.port}/`, `:${proxy.port}/`),
    });
    try {
      await r.link.start();
      await online(r.link);
      proxy.blackhole();
      // Nothing closes the TCP connection: only the link's own heartbeat can notice (one interval plus the pong
      // timeout, which is shorter than an interval: within two intervals).
      const timeout = r.watch.next(/link.heartbeat_timeout/);
      await offline(r.link);
      await timeout;
      proxy.resume();
      await online(r.link);
      assert.ok(proxy.accepted >= 2);
    } finally {
      await r.close();
      await proxy.close();
    }
  });

  it('gets a fresh token by proving its key when the token expired during an outage', async () => {
    const r = await rig(cp, 'link-expired');
    try {
      await r.link.start();
      await online(r.link);
      const before = readToken(r.stateDir)!.token;
      const down = offline(r.link);
      await cp.host.close();
      await down;
      cpClock.offsetMs += 3 * 3_600_000; // the outage outlives the one-hour token
      const renewed = r.watch.next(/link.token_renewed/);
      cp.host = await (await import('../../controlplane/node/host.ts')).startControlPlaneHost({
        dir: cp.dir,
        env: {},
        clock: cpClock,
        log: createLogger({ sink: () => undefined }),
        metrics: new (await import('../../protocol/metrics.ts')).MetricsRegistry(),
        version: 'test',
      });
      await renewed;
      await online(r.link);
      assert.notEqual(readToken(r.stateDir)!.token, before);
    } finally {
      cpClock.offsetMs = 0;
      await r.close();
    }
  });

  it('works with a device clock hours off the control plane’s (no refresh storm, telemetry flows)', async () => {
    const skewed = new OffsetClock();
    skewed.offsetMs = -5 * 3_600_000;
    const r = await rig(cp, 'link-skewed', { clock: skewed });
    try {
      await r.link.start();
      await online(r.link);
      assert.deepEqual(await r.link.deliver(lease(r.device, 1, 2, 2)), [
        { stream: 'telemetry', from: 1, to: 1 },
        { stream: 'telemetry', from: 2, to: 2 },
      ]);
      assert.equal(r.watch.lines.filter((l) => l.includes('token_refreshed') || l.includes('token_renewed')).length, 0);
      assert.equal(r.link.linkState(), 'online');
    } finally {
      await r.close();
    }
  });

  it('stops for good when its device is revoked', async () => {
    const r = await rig(cp, 'link-revoked');
    try {
      await r.link.start();
      await online(r.link);
      const revoked = r.watch.next(/link.revoked/);
      await api(cp.url, '/v1/operator/devices/link-revoked/revoke', { body: {}, auth: cp.operatorKey });
      await revoked;
      await offline(r.link);
      assert.equal(r.link.linkState(), 'revoked');
      assert.equal(typeof readEnrollment(r.stateDir)?.revokedAtMs, 'number');
    } finally {
      await r.close();
    }
  });

  it('refuses to enroll twice without being told to replace the enrollment', async () => {
    const r = await rig(cp, 'link-twice');
    try {
      await assert.rejects(
        enroll({
          url: cp.url,
          token: await mintEnrollToken(cp),
          stateDir: r.stateDir,
          identity: { did: r.device.did, seed: r.device.seed },
          manifest: r.device.manifest,
          replace: false,
          nowMs: Date.now(),
        }),
        (e) => e instanceof OutpostError && e.code === 'ALREADY_ENROLLED',
      );
    } finally {
      await r.close();
    }
  });
});

describe('upstream link: quorum policy updates (quorum.md §2.3)', () => {
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane();
  });
  after(() => cp.close());

  it('installs what tightens, refuses what a control plane alone would widen, and says so', async () => {
    const r = await rig(cp, 'link-policy');
    const key = (n: number) => approverPublicKey(new Uint8Array(32).fill(n));
    const setPolicy = async (approvers: { id: string; publicKey: string }[], rules: unknown[] = []) => {
      const res = await api(cp.url, '/v1/operator/policy', {
        method: 'PUT',
        body: { approvers, rules },
        auth: cp.operatorKey,
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };
    const installed = () => readPolicy(r.stateDir)?.approvers.map((a) => a.id);
    try {
      await r.link.start();
      await online(r.link);
      // Approvers added one at a time: the policy is not in force until two are there.
      let next = r.watch.next(/"link.policy"/);
      await setPolicy([{ id: 'ann', publicKey: key(1) }]);
      await next;
      next = r.watch.next(/"link.policy"/);
      await setPolicy([
        { id: 'ann', publicKey: key(1) },
        { id: 'bob', publicKey: key(2) },
        { id: 'cy', publicKey: key(3) },
      ]);
      await next;
      assert.deepEqual(installed(), ['ann', 'bob', 'cy']);
      // A new key (the control plane appointing its own approver) is refused; the installed policy stays.
      const refused = r.watch.next(/link.policy_refused/);
      await setPolicy([
        { id: 'ann', publicKey: key(1) },
        { id: 'bob', publicKey: key(2) },
        { id: 'cp', publicKey: key(9) },
      ]);
      assert.match(await refused, /QUORUM_POLICY_UNAUTHORIZED/);
      assert.deepEqual(installed(), ['ann', 'bob', 'cy']);
      // Removing an approver tightens: installed without anyone's endorsement.
      next = r.watch.next(/"link.policy"/);
      await setPolicy([
        { id: 'ann', publicKey: key(1) },
        { id: 'bob', publicKey: key(2) },
      ]);
      await next;
      assert.deepEqual(installed(), ['ann', 'bob']);
      // Shrinking below two approvers is a tightening too, but it does not reopen the policy to new keys: else a
      // control plane could shrink it and then fill it with its own.
      next = r.watch.next(/"link.policy"/);
      await setPolicy([{ id: 'ann', publicKey: key(1) }]);
      await next;
      assert.deepEqual(installed(), ['ann']);
      const refusedAgain = r.watch.next(/link.policy_refused/);
      await setPolicy([
        { id: 'ann', publicKey: key(1) },
        { id: 'cp', publicKey: key(9) },
      ]);
      assert.match(await refusedAgain, /QUORUM_POLICY_UNAUTHORIZED/);
      assert.deepEqual(installed(), ['ann']);
    } finally {
      await r.close();
    }
  });
});
