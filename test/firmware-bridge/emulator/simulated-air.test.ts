import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { timeOnAirMs } from '../../../firmware-bridge/airtime.ts';
import type { AirPort, AirReception } from '../../../firmware-bridge/emulator/air.ts';
import { createRealtimeScheduler, createVirtualScheduler } from '../../../firmware-bridge/emulator/air-scheduler.ts';
import {
  createSimulatedAir,
  type SimulatedAirOptions,
  sensitivityDbm,
} from '../../../firmware-bridge/emulator/simulated-air.ts';
import type { RadioKind, RadioParams } from '../../../firmware-bridge/radio.ts';
import { FakeClock } from '../../../protocol/clock.ts';
import { isOutpostError } from '../../../protocol/errors.ts';

const BASE: RadioParams = {
  freqHz: 867_200_000,
  bandwidthHz: 125_000,
  spreadingFactor: 7,
  codingRate: 5,
  txPowerDbm: 14,
  preambleSymbols: 8,
  region: 'ANY',
};

function setup(options: SimulatedAirOptions = {}) {
  const scheduler = createVirtualScheduler();
  const air = createSimulatedAir({ scheduler, ...options });
  const inbox = new Map<string, AirReception[]>();
  const attach = (
    id: string,
    params: Partial<RadioParams> = {},
    extra: { network?: RadioKind; xM?: number; yM?: number } = {},
  ): AirPort => {
    let p: RadioParams = { ...BASE, ...params };
    const port = air.attach({
      id,
      network: extra.network ?? 'rnode',
      position: { xM: extra.xM ?? 0, yM: extra.yM ?? 0 },
      params: () => p,
    });
    inbox.set(id, []);
    port.onReceive((rx) => inbox.get(id)!.push(rx));
    Object.assign(port, { retune: (q: Partial<RadioParams>) => (p = { ...p, ...q }) });
    return port;
  };
  return { scheduler, air, inbox, attach };
}

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

describe('simulated air: delivery and channels', () => {
  it('delivers after exactly the computed time on air, with the frame intact', async () => {
    const { scheduler, air, inbox, attach } = setup();
    const a = attach('a');
    attach('b');
    const frame = Uint8Array.from([1, 2, 3, 0xc0, 0xdb]);
    const airtime = timeOnAirMs(frame.length, BASE);
    const done = a.transmit(frame);
    await scheduler.advance(airtime - 0.001);
    assert.equal(inbox.get('b')!.length, 0, 'nothing before the frame ends');
    await scheduler.advance(0.001);
    assert.deepEqual(await done, { ok: true, airtimeMs: airtime });
    assert.deepEqual([...inbox.get('b')![0]!.frame], [...frame]);
    assert.equal(inbox.get('b')![0]!.fromPortId, 'a');
    assert.equal(inbox.get('a')!.length, 0, 'a transmitter does not hear itself');
    assert.equal(air.stats().ports.a!.tx.frames, 1);
    assert.equal(air.stats().ports.a!.tx.airtimeMs, airtime);
    assert.equal(air.stats().ports.b!.rx.delivered, 1);
  });

  it('only the same frequency, bandwidth and SF hear each other', async () => {
    const { scheduler, air, inbox, attach } = setup();
    const a = attach('a');
    attach('same');
    attach('sf8', { spreadingFactor: 8 });
    attach('bw250', { bandwidthHz: 250_000 });
    attach('f2', { freqHz: 868_100_000 });
    attach('cr8', { codingRate: 8 }); // coding rate travels in the explicit header: still decoded
    const done = a.transmit(bytes(10));
    await scheduler.runUntilIdle();
    await done;
    assert.deepEqual(
      [...inbox].filter(([, v]) => v.length > 0).map(([k]) => k),
      ['same', 'cr8'],
    );
    assert.equal(air.stats().ports.sf8!.rx.delivered + air.stats().ports.sf8!.rx.collided, 0);
  });

  it('radios decode only their own firmware family', async () => {
    const { scheduler, air, inbox, attach } = setup();
    const a = attach('a');
    attach('mesh', {}, { network: 'meshtastic' });
    attach('rn');
    const done = a.transmit(bytes(10));
    await scheduler.runUntilIdle();
    await done;
    assert.equal(inbox.get('mesh')!.length, 0);
    assert.equal(inbox.get('rn')!.length, 1);
    assert.equal(air.stats().ports.mesh!.rx.otherNetwork, 1);
  });

  it('a receiver that retunes before the frame ends does not get it', async () => {
    const { scheduler, inbox, attach } = setup();
    const a = attach('a');
    const b = attach('b') as AirPort & { retune(p: Partial<RadioParams>): void };
    const done = a.transmit(bytes(10));
    b.retune({ spreadingFactor: 9 });
    await scheduler.runUntilIdle();
    await done;
    assert.equal(inbox.get('b')!.length, 0);
  });
});

describe('simulated air: loss, collisions, capture, half duplex', () => {
  async function lossRun(seed: number, rate: number): Promise<boolean[]> {
    const { scheduler, inbox, attach } = setup({ seed, lossRate: rate });
    const a = attach('a');
    attach('b');
    const got: boolean[] = [];
    for (let i = 0; i < 400; i++) {
      const before = inbox.get('b')!.length;
      const done = a.transmit(bytes(4, i & 0xff));
      await scheduler.runUntilIdle();
      await done;
      got.push(inbox.get('b')!.length > before);
    }
    return got;
  }

  it('loss rate is applied with a seeded PRNG: same seed, same pattern', async () => {
    const one = await lossRun(42, 0.25);
    const two = await lossRun(42, 0.25);
    const other = await lossRun(43, 0.25);
    assert.deepEqual(one, two);
    assert.notDeepEqual(one, other);
    const lost = one.filter((x) => !x).length;
    assert.ok(lost > 60 && lost < 140, `lost ${lost} of 400 at 25 %`);
    assert.equal((await lossRun(1, 0)).filter((x) => !x).length, 0);
  });

  it('per-link loss overrides the air rate in one direction only', async () => {
    const { scheduler, air, inbox, attach } = setup();
    const a = attach('a');
    const b = attach('b');
    air.setLinkLossRate('a', 'b', 1);
    await Promise.all([a.transmit(bytes(3)), scheduler.runUntilIdle()]);
    await Promise.all([b.transmit(bytes(3)), scheduler.runUntilIdle()]);
    assert.equal(inbox.get('b')!.length, 0);
    assert.equal(inbox.get('a')!.length, 1);
    assert.equal(air.stats().ports.b!.rx.lost, 1);
  });

  it('overlapping frames on one channel collide: both lost at an equidistant receiver', async () => {
    const { scheduler, air, inbox, attach } = setup();
    const a = attach('a', {}, { xM: -100 });
    const b = attach('b', {}, { xM: 100 });
    attach('c');
    const da = a.transmit(bytes(20));
    await scheduler.advance(5); // b starts while a is still on air
    const db = b.transmit(bytes(20));
    await scheduler.runUntilIdle();
    await Promise.all([da, db]);
    assert.equal(inbox.get('c')!.length, 0);
    assert.equal(air.stats().ports.c!.rx.collided, 2);
    assert.equal(air.stats().collided, 2);
    // a and b were both transmitting: half duplex, they miss each other.
    assert.equal(air.stats().ports.a!.rx.halfDuplex, 1);
  });

  it('frames that do not overlap in time do not collide', async () => {
    const { scheduler, inbox, attach } = setup();
    const a = attach('a');
    const b = attach('b');
    attach('c');
    await Promise.all([a.transmit(bytes(20)), scheduler.runUntilIdle()]);
    await Promise.all([b.transmit(bytes(20)), scheduler.runUntilIdle()]);
    assert.equal(inbox.get('c')!.length, 2);
  });

  it('capture effect: the frame ≥ 6 dB stronger survives; with capture off both die', async () => {
    for (const [captureThresholdDb, expected] of [
      [6, ['near']],
      [Number.POSITIVE_INFINITY, []],
    ] as const) {
      const { scheduler, inbox, attach } = setup({ captureThresholdDb });
      const near = attach('near', {}, { xM: 10 });
      const far = attach('far', {}, { xM: 1_000 });
      attach('c');
      const d1 = near.transmit(bytes(20));
      const d2 = far.transmit(bytes(20));
      await scheduler.runUntilIdle();
      await Promise.all([d1, d2]);
      assert.deepEqual(
        inbox.get('c')!.map((r) => r.fromPortId),
        expected,
      );
    }
  });

  it('another family or SF on an overlapping channel still interferes', async () => {
    const { scheduler, air, inbox, attach } = setup();
    const a = attach('a', {}, { xM: 50 });
    const m = attach('m', { spreadingFactor: 9 }, { network: 'meshtastic', xM: -50 });
    attach('c');
    const d1 = a.transmit(bytes(20));
    const d2 = m.transmit(bytes(20));
    await scheduler.runUntilIdle();
    await Promise.all([d1, d2]);
    assert.equal(inbox.get('c')!.length, 0);
    assert.equal(air.stats().ports.c!.rx.collided, 1);
  });
});

describe('simulated air: signal model', () => {
  it('RSSI follows log-distance path loss and SNR the thermal noise floor', async () => {
    const { scheduler, inbox, attach } = setup({ pathLoss: { exponent: 3 } });
    const a = attach('a');
    attach('b', {}, { xM: 1_000 });
    await Promise.all([a.transmit(bytes(5)), scheduler.runUntilIdle()]);
    const rx = inbox.get('b')![0]!;
    const fspl1m = 20 * Math.log10(867_200_000) - 147.55;
    const expected = 14 - (fspl1m + 30 * 3);
    assert.ok(Math.abs(rx.rssiDbm - expected) < 1e-9, `${rx.rssiDbm} vs ${expected}`);
    const noise = -174 + 10 * Math.log10(125_000) + 6;
    assert.ok(Math.abs(rx.snrDb - (expected - noise)) < 1e-9);
  });

  it('frames below the SF sensitivity are not decoded; a slower SF reaches further', async () => {
    for (const [sf, expected] of [
      [7, 0],
      [12, 1],
    ] as const) {
      const { scheduler, air, inbox, attach } = setup();
      const a = attach('a', { spreadingFactor: sf });
      attach('b', { spreadingFactor: sf }, { xM: 15_000 });
      await Promise.all([a.transmit(bytes(5)), scheduler.runUntilIdle()]);
      assert.equal(inbox.get('b')!.length, expected, `SF${sf}`);
      assert.equal(air.stats().ports.b!.rx.weak, 1 - expected);
    }
    assert.ok(Math.abs(sensitivityDbm(12, 125_000) - -137.03) < 0.01);
  });
});

describe('simulated air: regulations', () => {
  it('enforces the EU868 duty cycle per port and says when to retry', async () => {
    const { scheduler, air, attach } = setup();
    const eu: Partial<RadioParams> = { region: 'EU868', spreadingFactor: 12 };
    const a = attach('a', eu);
    const b = attach('b', eu);
    const frameMs = timeOnAirMs(200, { ...BASE, spreadingFactor: 12 });
    let sent = 0;
    for (;;) {
      const done = a.transmit(bytes(200));
      await scheduler.runUntilIdle();
      const r = await done;
      if (!r.ok) {
        assert.equal(r.reason, 'duty-cycle');
        assert.ok(r.retryAfterMs !== undefined && r.retryAfterMs > 0);
        await scheduler.advance(r.retryAfterMs - 1);
        const early = await a.transmit(bytes(200));
        assert.equal(early.ok, false, 'still refused 1 ms early');
        await scheduler.advance(1);
        const later = a.transmit(bytes(200));
        await scheduler.runUntilIdle();
        assert.equal((await later).ok, true);
        break;
      }
      sent++;
    }
    assert.equal(sent, Math.floor(36_000 / frameMs), '1 % of an hour of 7.2 s frames');
    assert.equal(air.stats().ports.a!.tx.refusedDutyCycle, 2);
    assert.ok(air.stats().ports.a!.budgetUsed > 0.8);
    const r = b.transmit(bytes(200));
    await scheduler.runUntilIdle();
    assert.equal((await r).ok, true, 'the budget is per transmitter');
  });

  it('refuses frames over the US915 400 ms dwell time and channels outside the band', async () => {
    const { air, attach } = setup();
    const us = attach('us', { region: 'US915', freqHz: 903_900_000, spreadingFactor: 10 });
    assert.deepEqual(await us.transmit(bytes(100)), { ok: false, reason: 'dwell-time' });
    const eu = attach('eu', { region: 'EU868', freqHz: 915_000_000 });
    assert.deepEqual(await eu.transmit(bytes(10)), { ok: false, reason: 'out-of-band' });
    assert.equal(air.stats().ports.us!.tx.refusedDwellTime, 1);
    assert.equal(air.stats().ports.eu!.tx.refusedOutOfBand, 1);
  });

  it('can be told not to enforce (accounting only)', async () => {
    const { scheduler, attach } = setup({ enforceRegulations: false });
    const us = attach('us', { region: 'US915', freqHz: 903_900_000, spreadingFactor: 10 });
    const r = us.transmit(bytes(100));
    await scheduler.runUntilIdle();
    assert.equal((await r).ok, true);
  });
});

describe('simulated air: detach, ports, accounting, time', () => {
  it('detach mid-frame aborts it: nobody receives it, later sends report detached', async () => {
    const { scheduler, air, inbox, attach } = setup();
    const a = attach('a');
    attach('b');
    const done = a.transmit(bytes(50));
    await scheduler.advance(10);
    a.detach();
    assert.deepEqual(await done, { ok: false, reason: 'detached' });
    await scheduler.runUntilIdle();
    assert.equal(inbox.get('b')!.length, 0);
    assert.deepEqual(await a.transmit(bytes(1)), { ok: false, reason: 'detached' });
    assert.equal(air.stats().ports.a!.tx.aborted, 1);
    assert.equal(air.stats().ports.a!.attached, false);
  });

  it('statistics survive re-attaching under the same id (replug)', async () => {
    const { scheduler, air, attach } = setup();
    const a = attach('a');
    attach('b');
    await Promise.all([a.transmit(bytes(5)), scheduler.runUntilIdle()]);
    a.detach();
    const a2 = attach('a');
    await Promise.all([a2.transmit(bytes(5)), scheduler.runUntilIdle()]);
    assert.equal(air.stats().ports.a!.tx.frames, 2);
    assert.equal(air.stats().ports.b!.rx.delivered, 2);
    assert.equal(air.stats().framesSent, 2);
    assert.equal(air.stats().deliveries, 2);
  });

  it('rejects a second port with the same id, a second concurrent transmit, and a closed air', async () => {
    const { air, attach } = setup();
    const a = attach('a');
    assert.throws(
      () => attach('a'),
      (e: unknown) => isOutpostError(e, 'AIR_PORT_IN_USE'),
    );
    void a.transmit(bytes(5));
    await assert.rejects(a.transmit(bytes(5)), (e: unknown) => isOutpostError(e, 'AIR_PORT_BUSY'));
    await assert.rejects(a.transmit(bytes(256)), (e: unknown) => isOutpostError(e, 'AIR_PORT_BUSY'));
    air.close();
    assert.throws(
      () => attach('z'),
      (e: unknown) => isOutpostError(e, 'AIR_CLOSED'),
    );
  });

  it('a frame longer than 255 bytes is refused with AIRTIME_INVALID', async () => {
    const { attach } = setup();
    const a = attach('a');
    await assert.rejects(a.transmit(bytes(256)), (e: unknown) => isOutpostError(e, 'AIRTIME_INVALID'));
  });

  it('trace events report transmissions and reception outcomes', async () => {
    const { scheduler, air, attach } = setup();
    const events: string[] = [];
    air.onTrace((e) => events.push(e.type === 'rx' ? `rx ${e.fromPortId}>${e.toPortId} ${e.outcome}` : `${e.type}`));
    const a = attach('a');
    attach('b');
    await Promise.all([a.transmit(bytes(5)), scheduler.runUntilIdle()]);
    assert.deepEqual(events, ['tx', 'rx a>b delivered']);
  });

  it('real-time scheduler: air time runs timeScale× faster than the clock', () => {
    const clock = new FakeClock();
    const s = createRealtimeScheduler({ clock, timeScale: 100 });
    clock.advance(36);
    assert.equal(s.nowMs(), 3_600);
    assert.throws(
      () => createRealtimeScheduler({ timeScale: 0 }),
      (e: unknown) => isOutpostError(e),
    );
  });

  it('real-time air at 10,000× delivers a 9 s SF12 frame promptly', { timeout: 5_000 }, async () => {
    const air = createSimulatedAir({ timeScale: 10_000 });
    const params: RadioParams = { ...BASE, spreadingFactor: 12 };
    const a = air.attach({ id: 'a', network: 'rnode', params: () => params });
    const b = air.attach({ id: 'b', network: 'rnode', params: () => params });
    const got = new Promise<AirReception>((resolve) => b.onReceive(resolve));
    const r = await a.transmit(bytes(255));
    assert.ok(r.ok && r.airtimeMs > 9_000);
    assert.equal((await got).frame.length, 255);
    assert.ok(air.scheduler.nowMs() >= r.airtimeMs);
    air.close();
  });
});
