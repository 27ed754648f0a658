import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { openGatewayStore } from '../../gateway/gateway-store.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { silentLogger } from '../../protocol/log.ts';

const SEED = new Uint8Array(32).fill(3);

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-gw-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(path: string, clock = new FakeClock(), extra = {}) {
  return openGatewayStore(path, { clock, log: silentLogger, identitySeed: SEED, ...extra });
}

const rec = (n: number) => ({
  radio: 'rnode0',
  rssiDbm: -90,
  snrDb: 5.25,
  rxWallMs: 1_800_000_000_000 + n,
  frame: new Uint8Array(40).fill(n & 0xff),
});

describe('gateway store: uplink', () => {
  it('keeps stored frames across a reopen and leases them by priority', (t) => {
    const path = join(tempDir(t), 'gw.db');
    let s = open(path);
    s.uplink.store(rec(1), 'telemetry');
    s.uplink.store(rec(2), 'heartbeat');
    s.uplink.store(rec(3), 'result');
    s.close();
    s = open(path);
    t.after(() => s.close());
    const lease = s.uplink.lease(10, 1 << 20, 60_000);
    assert.deepEqual(
      lease.frames.map((f) => f.stream),
      ['result', 'telemetry', 'heartbeat'],
    );
    assert.deepEqual(lease.frames[0]!.record, rec(3));
  });

  it('deletes only what is acknowledged; a released lease comes back', (t) => {
    const s = open(join(tempDir(t), 'gw.db'));
    t.after(() => s.close());
    for (let i = 0; i < 5; i++) s.uplink.store(rec(i), 'telemetry');
    const lease = s.uplink.lease(3, 1 << 20, 60_000);
    assert.equal(lease.frames.length, 3);
    assert.equal(s.uplink.ack([{ stream: 'telemetry', from: 1, to: 2 }]), 2);
    s.uplink.release(lease.id);
    const again = s.uplink.lease(10, 1 << 20, 60_000);
    assert.deepEqual(
      again.frames.map((f) => f.seq),
      [3, 4, 5],
    );
  });

  it('drops lowest priority first when the byte cap is hit, and counts it', (t) => {
    const drops: string[] = [];
    const s = open(join(tempDir(t), 'gw.db'), new FakeClock(), {
      uplinkMaxBytes: 600,
      onUplinkDrop: (d: { stream: string; reason: string; items: number }) => drops.push(`${d.stream}:${d.reason}`),
    });
    t.after(() => s.close());
    s.uplink.store(rec(1), 'heartbeat');
    for (let i = 0; i < 12; i++) s.uplink.store(rec(10 + i), 'telemetry');
    s.uplink.store(rec(99), 'result');
    const st = s.uplink.stats();
    assert.ok(st.bytes <= 600);
    assert.equal(st.byClass.heartbeat, 0, 'heartbeat dropped first');
    assert.equal(st.byClass.result, 1, 'the result is kept');
    assert.ok(st.dropsByReason.max_bytes > 0);
    assert.ok(drops.includes('heartbeat:max_bytes'));
  });

  it('drops frames older than the age cap', (t) => {
    const clock = new FakeClock();
    const s = open(join(tempDir(t), 'gw.db'), clock, { uplinkMaxAgeMs: 3_600_000 });
    t.after(() => s.close());
    s.uplink.store(rec(1), 'telemetry');
    clock.advance(3_600_001);
    s.uplink.store(rec(2), 'telemetry');
    const lease = s.uplink.lease(10, 1 << 20, 1000);
    assert.deepEqual(
      lease.frames.map((f) => f.record.rxWallMs),
      [rec(2).rxWallMs],
    );
    assert.equal(s.uplink.stats().dropsByReason.max_age, 1);
  });
});

describe('gateway store: downlink', () => {
  const frames = [new Uint8Array(30).fill(1), new Uint8Array(20).fill(2)];
  const policy = { retryInitialMs: 1000, retryMaxMs: 8000 };

  it('adds idempotently and survives a reopen', (t) => {
    const path = join(tempDir(t), 'gw.db');
    let s = open(path);
    const input = {
      id: 'dl-0000000000000001',
      shortIdHex: 'a1b2c3d4',
      priority: 1,
      frames,
      ttlMs: 60_000,
      maxAttempts: 3,
    };
    assert.equal(s.downlink.add(input), 'added');
    assert.equal(s.downlink.add(input), 'duplicate');
    s.close();
    s = open(path);
    t.after(() => s.close());
    const [item] = s.downlink.active();
    assert.equal(item!.id, input.id);
    assert.deepEqual(item!.frames, frames);
    assert.equal(item!.state, 'queued');
  });

  it('retries with backoff, fails after max attempts, reports each state once', (t) => {
    const clock = new FakeClock();
    const s = openGatewayStore(join(tempDir(t), 'gw.db'), {
      clock,
      log: silentLogger,
      identitySeed: SEED,
    });
    t.after(() => s.close());
    s.downlink.add({ id: 'call-1', shortIdHex: '00000001', priority: 1, frames, ttlMs: 600_000, maxAttempts: 3 });
    const first = s.downlink.transmitted('call-1', 'rnode0', policy)!;
    assert.equal(first.state, 'transmitted');
    assert.equal(first.attempts, 1);
    const wait = first.nextAttemptAtStoreMs - s.db.time.nowMs();
    assert.ok(wait >= 800 && wait <= 1200, `first retry after ~1 s, got ${wait}`);
    let reports = s.downlink.pendingReports(10);
    assert.deepEqual(
      reports.map((r) => [r.id, r.state, r.attempts, r.radio]),
      [['call-1', 'transmitted', 1, 'rnode0']],
    );
    s.downlink.reported(reports);
    assert.equal(s.downlink.pendingReports(10).length, 0);
    s.downlink.transmitted('call-1', 'rnode0', policy);
    const last = s.downlink.transmitted('call-1', 'rnode0', policy)!;
    assert.equal(last.state, 'failed');
    assert.equal(last.reason, 'max_attempts');
    assert.equal(s.downlink.active().length, 0);
    reports = s.downlink.pendingReports(10);
    assert.equal(reports[0]!.state, 'failed');
    s.downlink.reported(reports);
    assert.equal(s.downlink.get('call-1'), undefined, 'a reported terminal item is deleted');
  });

  it('a report read before a newer state does not clear the newer one', (t) => {
    const s = open(join(tempDir(t), 'gw.db'));
    t.after(() => s.close());
    s.downlink.add({ id: 'x1', shortIdHex: '00000002', priority: 2, frames, ttlMs: 60_000, maxAttempts: 5 });
    s.downlink.transmitted('x1', 'r', policy);
    const stale = s.downlink.pendingReports(10);
    s.downlink.transmitted('x1', 'r', policy);
    s.downlink.reported(stale);
    assert.equal(s.downlink.pendingReports(10)[0]!.attempts, 2);
  });

  it('expires by store time and reports it', (t) => {
    const clock = new FakeClock();
    const s = open(join(tempDir(t), 'gw.db'), clock);
    t.after(() => s.close());
    s.downlink.add({ id: 'ack-1', shortIdHex: '00000003', priority: 2, frames, ttlMs: 5000, maxAttempts: 2 });
    clock.advance(4999);
    assert.equal(s.downlink.sweep(), 0);
    clock.jumpWallMs(-86_400_000); // a wall-clock step changes nothing
    clock.advance(1);
    assert.equal(s.downlink.sweep(), 1);
    assert.equal(s.downlink.pendingReports(5)[0]!.state, 'expired');
  });

  it('hearing a device makes its waiting downlink due now', (t) => {
    const s = open(join(tempDir(t), 'gw.db'));
    t.after(() => s.close());
    s.downlink.add({ id: 'a', shortIdHex: '0000000a', priority: 1, frames, ttlMs: 600_000, maxAttempts: 5 });
    s.downlink.add({ id: 'b', shortIdHex: '0000000b', priority: 1, frames, ttlMs: 600_000, maxAttempts: 5 });
    s.downlink.transmitted('a', 'r', { retryInitialMs: 60_000, retryMaxMs: 60_000 });
    s.downlink.transmitted('b', 'r', { retryInitialMs: 60_000, retryMaxMs: 60_000 });
    assert.equal(s.downlink.deviceHeard('0000000a'), 1);
    const now = s.db.time.nowMs();
    const due = s.downlink.active().filter((i) => i.nextAttemptAtStoreMs <= now);
    assert.deepEqual(
      due.map((i) => i.id),
      ['a'],
    );
    assert.deepEqual(s.downlink.pendingDevices(), ['0000000a', '0000000b']);
  });

  it('cancel deletes without a report; refuses bad input and a full queue', (t) => {
    const s = open(join(tempDir(t), 'gw.db'), new FakeClock(), { downlinkMaxItems: 2 });
    t.after(() => s.close());
    const ok = { id: 'c1', shortIdHex: '0000000c', priority: 1, frames, ttlMs: 1000, maxAttempts: 1 };
    s.downlink.add(ok);
    s.downlink.add({ ...ok, id: 'c2' });
    assert.throws(() => s.downlink.add({ ...ok, id: 'c3' }), { code: 'DOWNLINK_INVALID' });
    assert.equal(s.downlink.cancel(['c1', 'nope']), 1);
    assert.equal(s.downlink.pendingReports(10).length, 0);
    for (const bad of [
      { ...ok, id: 'bad id!' },
      { ...ok, shortIdHex: 'XYZ' },
      { ...ok, frames: [] },
      { ...ok, frames: Array.from({ length: 17 }, () => new Uint8Array(1)) },
      { ...ok, frames: [new Uint8Array(509)] },
      { ...ok, ttlMs: 0 },
      { ...ok, maxAttempts: 0 },
      { ...ok, priority: 8 },
    ]) {
      assert.throws(() => s.downlink.add(bad), { code: 'DOWNLINK_INVALID' });
    }
  });
});

describe('gateway store: served devices', () => {
  it('persists the list; revocation wins over unknown, served wins over a colliding revoked id', (t) => {
    const path = join(tempDir(t), 'gw.db');
    let s = open(path);
    s.devices.replace([
      { shortIdHex: '11111111', device: 'did:key:z1', standing: 'served' },
      { shortIdHex: '22222222', device: 'did:key:z2', standing: 'served' },
    ]);
    s.devices.revoke('22222222', 'did:key:z2');
    s.close();
    s = open(path);
    t.after(() => s.close());
    assert.equal(s.devices.standing('11111111'), 'served');
    assert.equal(s.devices.standing('22222222'), 'revoked');
    assert.equal(s.devices.standing('33333333'), 'unknown');
    s.devices.replace([
      { shortIdHex: '44444444', device: 'did:key:za', standing: 'revoked' },
      { shortIdHex: '44444444', device: 'did:key:zb', standing: 'served' },
    ]);
    assert.equal(s.devices.standing('44444444'), 'served');
    assert.equal(s.devices.standing('11111111'), 'unknown', 'replace drops devices no longer listed');
    assert.deepEqual(s.devices.counts(), { served: 1, revoked: 0 });
  });
});
