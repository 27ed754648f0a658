// LoRa link: goodput as a share of the airtime-limited capacity at SF8/BW125 under the EU868 1 % duty cycle,
// and one packet's latency against the time-on-air formula. Goodput here runs the pure stack (packer, AEAD,
// simulated air with its duty-cycle law, receiver decode) in virtual time; latency runs the real RNode driver
// against the emulated firmware over pseudo-terminals in real time.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rnodeAirtimeMs, rnodePreambleSymbols } from '../firmware-bridge/airtime.ts';
import { DUTY_CYCLE_WINDOW_MS, eu868SubBand } from '../firmware-bridge/duty-cycle.ts';
import { createVirtualScheduler } from '../firmware-bridge/emulator/air-scheduler.ts';
import { startMeshtasticEmulator } from '../firmware-bridge/emulator/meshtastic-emulator.ts';
import { startRNodeEmulator } from '../firmware-bridge/emulator/rnode-emulator.ts';
import { createSimulatedAir } from '../firmware-bridge/emulator/simulated-air.ts';
import { createMeshtasticRadio } from '../firmware-bridge/meshtastic/driver.ts';
import { meshtasticAirtimeMs } from '../firmware-bridge/meshtastic/lora-params.ts';
import { createData, encodeData } from '../firmware-bridge/meshtastic/protobuf.ts';
import type { Radio, RadioParams } from '../firmware-bridge/radio.ts';
import { createRNodeRadio, type RNodeParams } from '../firmware-bridge/rnode/driver.ts';
import { concatBytes } from '../protocol/bytes.ts';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import {
  decodeTelemetry,
  deriveLoraSessionKeys,
  LORA_PROFILES,
  type LoraTelemetryRecord,
  openLoraFrame,
  packTelemetry,
  sealLoraFrame,
  x25519KeyPair,
} from '../protocol/lora.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { type BenchContext, runBench, summarizeLatencies } from './harness.ts';

const SF8: Omit<RadioParams, 'preambleSymbols'> = {
  freqHz: 868_100_000,
  bandwidthHz: 125_000,
  spreadingFactor: 8,
  codingRate: 5,
  txPowerDbm: 14,
  region: 'EU868',
};
const MOD = { spreadingFactor: 8, bandwidthHz: 125_000, codingRate: 5 };
const T0 = Date.UTC(2026, 0, 1);

/** An endless backlog like a three-sensor station sampling every minute. */
function* readings(): Generator<LoraTelemetryRecord> {
  for (let k = 0, seq = 1; ; k++) {
    const ts = T0 + k * 60_000;
    yield { seq: seq++, stream: 0, ts, value: (215 + ((k * 7) % 13)) / 10 };
    yield { seq: seq++, stream: 1, ts, value: 40 + (k % 9) };
    yield { seq: seq++, stream: 2, ts, value: (101320 - (k % 17)) / 100 };
  }
}

function session() {
  return deriveLoraSessionKeys({
    deviceX25519: x25519KeyPair(),
    controlPlaneX25519: { publicKey: x25519KeyPair().publicKey },
    tid: 'b6a1c2d3-e4f5-5a6b-8c7d-9e0f1a2b3c4d',
    deviceId: didKeyFromEd25519(ed25519KeyPair().publicKey),
  });
}

interface GoodputResult {
  readonly delivered: number;
  readonly frames: number;
  readonly meanReadingsPerFrame: number;
  /** Readings carried per ms of time on air, over the frames actually sent. */
  readonly readingsPerAirMs: number;
  readonly refusals: number;
}

/** A device with an endless backlog sends full RNode frames as fast as the duty cycle lets it, for `hours`. */
async function simulateGoodput(hours: number): Promise<GoodputResult> {
  const scheduler = createVirtualScheduler();
  const air = createSimulatedAir({ scheduler, seed: 8 });
  const params: RadioParams = { ...SF8, preambleSymbols: rnodePreambleSymbols(MOD) };
  const device = air.attach({ id: 'device', network: 'rnode', params: () => params });
  const gateway = air.attach({ id: 'gateway', network: 'rnode', params: () => params, position: { xM: 500, yM: 0 } });
  const s = session();
  let delivered = 0;
  gateway.onReceive((rx) => {
    // RNode's 1-byte split header, then our frame: authenticate and decode as the gateway's upstream would.
    const opened = openLoraFrame(rx.frame.subarray(1), s, { expect: 'uplink' });
    delivered += decodeTelemetry(opened.payload).length;
  });
  const endMs = hours * 3_600_000;
  const source = readings();
  let pending: LoraTelemetryRecord[] = [];
  let frames = 0;
  let packed = 0;
  let airMs = 0;
  let refusals = 0;
  const wait = (ms: number) => new Promise<void>((resolve) => scheduler.setTimer(ms, resolve));
  // The sender is left waiting on a virtual timer past the end (a refusal's retry, or a transmission the
  // closed air resolves as detached); nothing else keeps it alive.
  void (async () => {
    while (scheduler.nowMs() < endMs) {
      while (pending.length < 200) pending.push(source.next().value as LoraTelemetryRecord);
      const pack = packTelemetry(pending, LORA_PROFILES.rnode.maxFrameBytes, { maxFrames: 1 });
      const frame = pack.frames[0]!;
      const sealed = sealLoraFrame(s, { type: 'telemetry', seq: frames + 1 }, frame.payload);
      const r = await device.transmit(concatBytes(Uint8Array.of(0x00), sealed));
      if (!r.ok) {
        refusals++;
        await wait(r.retryAfterMs ?? 1000);
        continue;
      }
      const sent = new Set(frame.records);
      pending = pending.filter((x) => !sent.has(x));
      frames++;
      packed += frame.records.length;
      airMs += r.airtimeMs;
    }
  })();
  await scheduler.advance(endMs);
  air.close();
  return { delivered, frames, meanReadingsPerFrame: packed / frames, readingsPerAirMs: packed / airMs, refusals };
}

const RNODE_PARAMS: RNodeParams = { ...SF8, region: 'ANY' };

/** Sends packets of each size one at a time from radio A and times send() → arrival at radio B. */
async function timePackets(
  a: Radio,
  b: Radio,
  sizes: readonly number[],
  perSize: number,
): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>();
  const arrivals = b.packets()[Symbol.asyncIterator]();
  for (const size of sizes) {
    const list: number[] = [];
    for (let i = 0; i < perSize; i++) {
      const payload = Uint8Array.from({ length: size }, (_, k) => (k * 7 + i) & 0xff);
      const t = performance.now();
      void a.send(payload);
      const got = await arrivals.next();
      if (got.done || got.value.payload.length !== size) throw new Error('packet lost on a loss-free air');
      list.push(performance.now() - t);
    }
    out.set(size, list);
  }
  await arrivals.return?.();
  return out;
}

/** Real time: RNode driver A → emulated RNode → air → emulated RNode → driver B. */
async function rnodeLatency(sizes: readonly number[], perSize: number): Promise<Map<number, number[]>> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-lora-'));
  const air = createSimulatedAir({ timeScale: 1 });
  const ea = await startRNodeEmulator({ dir, name: 'a', air, bootDelayMs: 5 });
  const eb = await startRNodeEmulator({ dir, name: 'b', air, bootDelayMs: 5, position: { xM: 300, yM: 0 } });
  const a = createRNodeRadio({ path: ea.hostPath, params: RNODE_PARAMS });
  const b = createRNodeRadio({ path: eb.hostPath, params: RNODE_PARAMS });
  try {
    await Promise.all([a.open(), b.open()]);
    return await timePackets(a, b, sizes, perSize);
  } finally {
    for (const x of [a, b, ea, eb]) await x.close();
    air.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Real time: the same through two emulated Meshtastic radios (default EU868 LongFast, listen-before-talk on). */
async function meshtasticLatency(
  sizes: readonly number[],
  perSize: number,
): Promise<{ times: Map<number, number[]>; params: RadioParams }> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-mesh-'));
  const air = createSimulatedAir({ timeScale: 1 });
  const ea = await startMeshtasticEmulator({ dir, name: 'a', air, nodeNum: 0x0a0a0a0a });
  const eb = await startMeshtasticEmulator({ dir, name: 'b', air, nodeNum: 0x0b0b0b0b, position: { xM: 300, yM: 0 } });
  const a = createMeshtasticRadio({ path: ea.hostPath, wantAckByDefault: false });
  const b = createMeshtasticRadio({ path: eb.hostPath });
  try {
    await Promise.all([a.open(), b.open()]);
    return { times: await timePackets(a, b, sizes, perSize), params: ea.params };
  } finally {
    for (const x of [a, b, ea, eb]) await x.close();
    air.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function run(ctx: BenchContext): Promise<void> {
  const band = eu868SubBand(SF8.freqHz, SF8.bandwidthHz)!;
  const budgetMs = band.dutyCycle * DUTY_CYCLE_WINDOW_MS;
  const fullFrameAirMs = rnodeAirtimeMs(LORA_PROFILES.rnode.maxFrameBytes, MOD);
  const hours = ctx.quick ? 1 : 6;
  const sim = await simulateGoodput(hours);
  // Capacity: every ms of the hour's budget spent on frames packed like these.
  const capacityPerHour = budgetMs * sim.readingsPerAirMs;
  ctx.exact('airtime.fullframe', `time on air of a full 255-byte RNode frame at SF8/BW125`, 'ms', fullFrameAirMs);
  ctx.exact(
    'readings.perframe',
    'readings per frame (three streams, 60 s), mean',
    'readings',
    sim.meanReadingsPerFrame,
  );
  ctx.exact(
    'capacity',
    `airtime-limited capacity: ${budgetMs / 1000} s of air per hour (sub-band ${band.name}, ${band.dutyCycle * 100} %) × readings per ms of air`,
    'readings/h',
    capacityPerHour,
  );
  ctx.exact(
    'goodput.sim',
    `goodput over ${hours} simulated hours, pure stack (no driver)`,
    'readings/h',
    sim.delivered / hours,
  );
  ctx.exact(
    'goodput.sim.share',
    'goodput share of capacity, pure stack (no driver)',
    '%',
    (100 * sim.delivered) / hours / capacityPerHour,
  );
  ctx.note(
    `Goodput: a device with an endless backlog packs, seals and transmits full frames through the simulated air in virtual time; the air enforces the EU868 law and the receiver authenticates and decodes every frame (${sim.frames} frames, ${sim.refusals} duty-cycle refusals waited out). The real device links → gateway → control plane path is measured by gateway.bench.ts (gw.goodput.share).`,
  );

  const sizes = [16, 128, 254];
  const perSize = ctx.quick ? 1 : 4;
  const runs = await ctx.repeat('RNode driver latency', () => rnodeLatency(sizes, perSize), {
    repeats: Math.min(3, ctx.repeats),
  });
  for (const size of sizes) {
    ctx.exact(
      `latency.formula.${size}`,
      `RNode: time on air of a ${size}-byte packet at SF8/BW125 (formula)`,
      'ms',
      rnodeAirtimeMs(size, MOD),
    );
    ctx.figure({
      id: `latency.${size}`,
      label: `RNode: send() → received, ${size}-byte packet, driver ↔ emulator over ptys, p50`,
      unit: 'ms',
      better: 'lower',
      baseline: `latency.formula.${size}`,
      samples: runs.map((r) => summarizeLatencies(r.get(size)!).p50),
    });
  }
  const meshSizes = [16, 128, 200];
  const mesh = await ctx.repeat('Meshtastic driver latency', () => meshtasticLatency(meshSizes, perSize), {
    repeats: Math.min(3, ctx.repeats),
  });
  const meshParams = mesh[0]!.params;
  for (const size of meshSizes) {
    const dataBytes = encodeData(createData({ portnum: 256, payload: new Uint8Array(size) })).length;
    ctx.exact(
      `mesh.latency.formula.${size}`,
      `Meshtastic: time on air of a ${size}-byte payload at SF${meshParams.spreadingFactor}/BW${meshParams.bandwidthHz / 1000} (formula)`,
      'ms',
      meshtasticAirtimeMs(dataBytes, meshParams),
    );
    ctx.figure({
      id: `mesh.latency.${size}`,
      label: `Meshtastic: send() → received, ${size}-byte payload, driver ↔ emulator over ptys, p50`,
      unit: 'ms',
      better: 'lower',
      baseline: `mesh.latency.formula.${size}`,
      samples: mesh.map((r) => summarizeLatencies(r.times.get(size)!).p50),
    });
  }
  ctx.note(
    'Latency: one packet at a time on a loss-free air; RNode in region ANY (no duty-cycle wait), Meshtastic with its default EU868 LongFast channel and listen-before-talk. The excess over the formula is serial I/O, framing, driver pacing and channel access.',
  );
}

await runBench({
  name: 'lora-link',
  title: 'LoRa link: goodput under the EU868 duty cycle, latency against the formula',
  run,
});
