import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  createUplinkFilter,
  type DeviceDirectory,
  type DeviceStanding,
  UPLINK_DROP_REASONS,
} from '../../gateway/uplink-filter.ts';
import { encodeBeacon, sealLoraFrame } from '../../protocol/lora.ts';
import { byteInputs, fuzzCases } from '../support/fuzz.ts';
import {
  enrollRequestFrame,
  fragmentedFrames,
  heartbeatFrame,
  telemetryFrame,
  testControlPlaneKeys,
  testDevice,
} from '../support/lora-fixtures.ts';

const cp = testControlPlaneKeys();
const served = testDevice(cp);
const revoked = testDevice(cp);
const stranger = testDevice(cp);

function directory(extra: Record<string, DeviceStanding> = {}): DeviceDirectory {
  const table: Record<string, DeviceStanding> = {
    [served.shortIdHex]: 'served',
    [revoked.shortIdHex]: 'revoked',
    ...extra,
  };
  return { standing: (id) => table[id] ?? 'unknown' };
}

const reading = (seq: number) => [{ seq, stream: 0, ts: 1_700_000_000_000 + seq * 1000, value: 21.5 }];

describe('uplink filter', () => {
  it('accepts a served device’s telemetry and classes it', () => {
    const f = createUplinkFilter({ directory: directory(), maxFrameBytes: 254 });
    const v = f.check(telemetryFrame(served, reading(1)), 0);
    assert.equal(v.accept, true);
    assert.equal(v.accept && v.class, 'telemetry');
    assert.equal(v.accept && v.shortIdHex, served.shortIdHex);
    const h = f.check(heartbeatFrame(served), 0);
    assert.equal(h.accept && h.class, 'heartbeat');
  });

  const rows: { name: string; frame: () => Uint8Array; reason: string; maxFrameBytes?: number }[] = [
    { name: 'empty bytes', frame: () => new Uint8Array(0), reason: 'too_short' },
    {
      name: 'a header without body',
      frame: () => telemetryFrame(served, reading(1)).subarray(0, 12),
      reason: 'too_short',
    },
    {
      name: 'longer than the profile allows',
      frame: () => new Uint8Array(240).fill(0x21),
      reason: 'too_long',
      maxFrameBytes: 233,
    },
    {
      name: 'bad version bits',
      frame: () => {
        const f = telemetryFrame(served, reading(1));
        f[0] = (f[0]! & 0x1f) | (2 << 5);
        return f;
      },
      reason: 'malformed',
    },
    {
      name: 'reserved flag bits',
      frame: () => {
        const f = telemetryFrame(served, reading(1));
        f[1] = f[1]! | 0x01;
        return f;
      },
      reason: 'malformed',
    },
    {
      name: 'a beacon from another gateway',
      frame: () => encodeBeacon({ gatewayShortId: stranger.session.shortId, seq: 1, pending: [] }),
      reason: 'not_uplink',
    },
    { name: 'an unknown device', frame: () => telemetryFrame(stranger, reading(1)), reason: 'unknown_device' },
    { name: 'a revoked device', frame: () => telemetryFrame(revoked, reading(1)), reason: 'revoked' },
    {
      name: 'a forged enroll request (signature broken)',
      frame: () => {
        const f = enrollRequestFrame(stranger, 'x'.repeat(32), new Uint8Array(32));
        f[f.length - 1]! ^= 1;
        return f;
      },
      reason: 'enroll_invalid',
    },
    {
      name: 'an enroll request from a revoked device',
      frame: () => enrollRequestFrame(revoked, 'x'.repeat(32), new Uint8Array(32)),
      reason: 'revoked',
    },
  ];
  for (const row of rows) {
    it(`drops ${row.name} as ${row.reason}`, () => {
      const f = createUplinkFilter({ directory: directory(), maxFrameBytes: row.maxFrameBytes ?? 254 });
      const v = f.check(row.frame(), 0);
      assert.equal(v.accept, false);
      assert.equal(!v.accept && v.reason, row.reason);
    });
  }

  it('drops a replayed frame within the window, passes it again after', () => {
    const f = createUplinkFilter({ directory: directory(), maxFrameBytes: 254, dedupWindowMs: 1000 });
    const frame = telemetryFrame(served, reading(2));
    assert.equal(f.check(frame, 0).accept, true);
    const again = f.check(frame, 500);
    assert.equal(!again.accept && again.reason, 'duplicate');
    assert.equal(f.check(frame, 2000).accept, true);
  });

  it('rate-limits per device without touching others', () => {
    const other = testDevice(cp);
    const f = createUplinkFilter({
      directory: directory({ [other.shortIdHex]: 'served' }),
      maxFrameBytes: 254,
      perDevice: { ratePerSec: 1, burst: 3 },
    });
    const verdicts = Array.from({ length: 5 }, (_, i) => f.check(telemetryFrame(served, reading(10 + i)), 0));
    assert.deepEqual(
      verdicts.map((v) => (v.accept ? 'ok' : v.reason)),
      ['ok', 'ok', 'ok', 'rate_limited', 'rate_limited'],
    );
    assert.equal(f.check(telemetryFrame(other, reading(1)), 0).accept, true);
    assert.equal(f.check(telemetryFrame(served, reading(20)), 1000).accept, true, 'refilled after 1 s');
  });

  it('passes a valid enroll request from an unknown device, then rate-limits enrollment', () => {
    const f = createUplinkFilter({
      directory: directory(),
      maxFrameBytes: 254,
      perEnrollee: { ratePerSec: 0.001, burst: 1 },
      enrollTotal: { ratePerSec: 0.001, burst: 2 },
    });
    const first = f.check(enrollRequestFrame(stranger, 't'.repeat(32), new Uint8Array(32), 0), 0);
    assert.equal(first.accept && first.class, 'enroll');
    const again = f.check(enrollRequestFrame(stranger, 't'.repeat(32), new Uint8Array(32), 1), 0);
    assert.equal(!again.accept && again.reason, 'enroll_rate_limited');
    // A second enrollee may use what is left of the shared budget; a third may not.
    assert.equal(f.check(enrollRequestFrame(testDevice(cp), 't'.repeat(32), new Uint8Array(32)), 0).accept, true);
    const third = f.check(enrollRequestFrame(testDevice(cp), 't'.repeat(32), new Uint8Array(32)), 0);
    assert.equal(!third.accept && third.reason, 'enroll_rate_limited');
  });

  it('passes fragments through as frames (the gateway cannot reassemble what it cannot read)', () => {
    const f = createUplinkFilter({ directory: directory(), maxFrameBytes: 233 });
    const frames = fragmentedFrames(served, 600);
    assert.ok(frames.length >= 3);
    for (const fr of frames) assert.equal(f.check(fr, 0).accept, true);
  });

  it('keeps its memory bounded under a flood of distinct short ids and seqs', () => {
    const f = createUplinkFilter({
      directory: { standing: () => 'served' },
      maxFrameBytes: 254,
      dedupMaxEntries: 256,
      maxTrackedIds: 128,
    });
    const device = testDevice(cp);
    const base = telemetryFrame(device, reading(1));
    for (let i = 0; i < 5000; i++) {
      const fr = Uint8Array.from(base);
      new DataView(fr.buffer).setUint32(2, i * 2654435761);
      new DataView(fr.buffer).setUint32(6, i);
      f.check(fr, i);
    }
    const sizes = f.sizes();
    assert.ok(sizes.dedup <= 256, `dedup ${sizes.dedup}`);
    assert.ok(sizes.buckets <= 128, `buckets ${sizes.buckets}`);
  });

  it('never throws, whatever the bytes (fuzz), and only reports known reasons', () => {
    const f = createUplinkFilter({ directory: directory(), maxFrameBytes: 254 });
    const seeds = [
      telemetryFrame(served, reading(3)),
      heartbeatFrame(served),
      enrollRequestFrame(stranger, 'y'.repeat(32), new Uint8Array(32)),
      ...fragmentedFrames(served, 400, 254),
      sealLoraFrame(served.session, { type: 'tool.result', seq: 99 }, new Uint8Array([0, 0, 0xf6])),
    ];
    let accepted = 0;
    fc.assert(
      fc.property(byteInputs(seeds, 600), (bytes) => {
        const v = f.check(bytes, 0);
        if (v.accept) accepted++;
        else assert.ok((UPLINK_DROP_REASONS as readonly string[]).includes(v.reason));
      }),
      { numRuns: fuzzCases() },
    );
    assert.ok(accepted > 0);
  });
});
