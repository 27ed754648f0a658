// LoRa frame figures (docs/protocol/lora-frames.md): per-frame overhead, readings per frame and airtime per reading at
// both MTU profiles against a JSON baseline, AEAD cost per frame against AES-128-GCM, and packer throughput.
// Run: npm run bench -- lora-frames   (figures only; the targets live in bench/targets.ts)

import { createCipheriv, randomBytes } from 'node:crypto';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import {
  deriveLoraSessionKeys,
  encodeToolCall,
  LORA_OVERHEAD_BYTES,
  LORA_PROFILES,
  type LoraTelemetryRecord,
  loraFrameCount,
  packTelemetry,
  sealLoraFrame,
  x25519KeyPair,
} from '../protocol/lora.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { type BenchContext, runBench } from './harness.ts';

const T0 = Date.UTC(2026, 0, 1);

/** Semtech time on air (SX1276 datasheet; AN1200.13): BW 125 kHz, CR 4/5, explicit header, CRC on, LDRO if T_sym > 16 ms. */
function airtimeMs(phyBytes: number, sf: number, preambleSymbols: number): number {
  const tSym = 2 ** sf / 125; // ms
  const de = tSym > 16 ? 1 : 0;
  const n = 8 + Math.max(Math.ceil((8 * phyBytes - 4 * sf + 28 + 16) / (4 * (sf - 2 * de))) * 5, 0);
  return (preambleSymbols + 4.25) * tSym + n * tSym;
}

/** PHY bytes for one of our frames: Meshtastic adds its 16-byte header and the Data protobuf (portnum 256 + payload). */
function phyBytes(profile: 'meshtastic' | 'rnode', frameBytes: number): number {
  if (profile === 'rnode') return 1 + frameBytes; // RNode's 1-byte split/sequence header
  return 16 + 3 + 1 + (frameBytes > 127 ? 2 : 1) + frameBytes;
}

function preamble(profile: 'meshtastic' | 'rnode', sf: number): number {
  return profile === 'meshtastic' ? 16 : Math.max(18, Math.ceil(24 / (2 ** sf / 125)));
}

function scenario(name: string): LoraTelemetryRecord[] {
  const out: LoraTelemetryRecord[] = [];
  const push = (stream: number, ts: number, value: LoraTelemetryRecord['value']) =>
    out.push({ seq: 10_000 + out.length, stream, ts, value });
  for (let k = 0; out.length < 2000; k++) {
    const ts = T0 + k * 60_000;
    switch (name) {
      case 'one stream, 60 s, 0.1 resolution':
        push(0, ts, (215 + ((k * 7) % 13)) / 10);
        break;
      case 'three streams, 60 s':
        push(0, ts, (215 + ((k * 7) % 13)) / 10);
        push(1, ts, 40 + (k % 9));
        push(2, ts, (101320 - (k % 17)) / 100);
        break;
      case 'eight streams, mixed types':
        for (let s = 0; s < 8; s++) {
          const v = [
            (215 + (k % 13)) / 10,
            40 + (k % 9),
            k % 4 === 0,
            (3712 - (k % 30)) / 1000,
            k,
            -k,
            0.5 * (k % 3),
            null,
          ][s]!;
          push(s, ts + s * 37, v);
        }
        break;
      default: // event stream, irregular ms timestamps, raw float sensor values
        push(0, T0 + k * 7_919 + ((k * 131) % 997), Math.sin(k) * 50);
    }
  }
  return out;
}

/** Baseline: the same readings as compact JSON ({seq, stream, ts, value}), as many as fit the same payload budget. */
function jsonReadingsPerFrame(records: LoraTelemetryRecord[], budget: number): number {
  const names = ['air.temperature', 'air.humidity', 'air.pressure', 'soil.moisture', 'battery.voltage', 'pump.count'];
  let n = 0;
  let size = 2;
  for (const r of records) {
    const item = JSON.stringify({ seq: r.seq, stream: names[r.stream % names.length], ts: r.ts, value: r.value });
    if (size + item.length + 1 > budget) break;
    size += item.length + 1;
    n++;
  }
  return n;
}

function timeIt(fn: () => void, iterations: number): number {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn();
  const t = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  return ((performance.now() - t) * 1000) / iterations; // µs per call
}

const SCENARIOS = [
  'one stream, 60 s, 0.1 resolution',
  'three streams, 60 s',
  'eight streams, mixed types',
  'event stream, irregular ms, f64 values',
];
const slug = (name: string) => name.split(',')[0]!.replace(/[^a-z0-9]+/g, '-');

async function run(ctx: BenchContext): Promise<void> {
  const dev = x25519KeyPair();
  const cp = x25519KeyPair();
  const session = deriveLoraSessionKeys({
    deviceX25519: dev,
    controlPlaneX25519: { publicKey: cp.publicKey },
    tid: 'b6a1c2d3-e4f5-5a6b-8c7d-9e0f1a2b3c4d',
    deviceId: didKeyFromEd25519(ed25519KeyPair().publicKey),
  });

  ctx.exact('overhead', 'per-frame overhead (10-byte header + 16-byte Poly1305 tag)', 'B', LORA_OVERHEAD_BYTES);
  ctx.exact('overhead.fragment', 'per-fragment overhead', 'B', LORA_OVERHEAD_BYTES + 1);
  ctx.note(
    'AES-128-CCM with an 8-byte tag would be 18 B of overhead; the full 16-byte tag is kept (lora-frames.md §5.1).',
  );

  for (const name of SCENARIOS) {
    const records = scenario(name);
    for (const profile of ['meshtastic', 'rnode'] as const) {
      const max = LORA_PROFILES[profile].maxFrameBytes;
      const pack = packTelemetry(records, max, { maxFrames: 1 });
      const frame = pack.frames[0]!;
      const n = frame.records.length;
      const frameBytes = frame.payload.length + LORA_OVERHEAD_BYTES;
      const id = `${slug(name)}.${profile}`;
      ctx.exact(
        `${id}.json`,
        `${name}, ${profile}: readings per frame as compact JSON (baseline)`,
        'readings',
        jsonReadingsPerFrame(records, max - LORA_OVERHEAD_BYTES),
      );
      ctx.figure({
        id: `${id}.readings`,
        label: `${name}, ${profile}: readings per frame (${frameBytes} B)`,
        unit: 'readings',
        better: 'higher',
        samples: [n],
        exact: true,
        baseline: `${id}.json`,
      });
      for (const sf of [7, 9, 12]) {
        ctx.exact(
          `${id}.sf${sf}`,
          `${name}, ${profile}: airtime per reading at SF${sf}/BW125`,
          'ms',
          airtimeMs(phyBytes(profile, frameBytes), sf, preamble(profile, sf)) / n,
        );
      }
    }
  }

  const sig = new Uint8Array(64);
  const call = encodeToolCall({
    callId: randomBytes(16).toString('base64url'),
    tool: { index: 4 },
    deadlineMs: 1_767_229_200_000,
    args: { valve: 2, openPercent: 37.5, seconds: 30 },
    quorum: {
      requestId: randomBytes(16).toString('base64url'),
      nonce: randomBytes(16).toString('base64url'),
      expMs: 1_767_229_200_000,
      approvals: [
        { approver: { id: 'alice' }, signature: sig },
        { approver: { id: 'bob.ops' }, signature: sig },
      ],
    },
  });
  ctx.exact(
    'toolcall.quorum.bytes',
    'tool.call with a 2-of-3 quorum (ids "alice", "bob.ops"): payload',
    'B',
    call.length,
  );
  for (const profile of ['meshtastic', 'rnode'] as const) {
    ctx.exact(
      `toolcall.quorum.frames.${profile}`,
      `tool.call with a 2-of-3 quorum: frames on ${profile}`,
      'frames',
      loraFrameCount(call.length, LORA_PROFILES[profile].maxFrameBytes),
    );
  }

  const payload = randomBytes(207);
  const ad = randomBytes(10);
  const nonce = randomBytes(12);
  const key16 = randomBytes(16);
  const key32 = randomBytes(32);
  const iterations = ctx.size(50_000, 2_000);
  let seq = 0;
  const aead = await ctx.repeat('AEAD per frame', () => ({
    gcm: timeIt(() => {
      const c = createCipheriv('aes-128-gcm', key16, nonce, { authTagLength: 16 });
      c.setAAD(ad);
      c.update(payload);
      c.final();
      c.getAuthTag();
    }, iterations),
    ccm: timeIt(() => {
      const c = createCipheriv('aes-128-ccm', key16, nonce, { authTagLength: 8 });
      c.setAAD(ad, { plaintextLength: payload.length });
      c.update(payload);
      c.final();
      c.getAuthTag();
    }, iterations),
    chacha: timeIt(() => {
      const c = createCipheriv('chacha20-poly1305', key32, nonce, { authTagLength: 16 });
      c.setAAD(ad, { plaintextLength: payload.length });
      c.update(payload);
      c.final();
      c.getAuthTag();
    }, iterations),
    seal: timeIt(() => sealLoraFrame(session, { type: 'telemetry', seq: seq++ }, payload), iterations),
  }));
  const us = { unit: 'µs', better: 'lower' as const };
  ctx.figure({
    id: 'aead.gcm',
    label: 'AES-128-GCM on a 233-byte frame (baseline)',
    ...us,
    samples: aead.map((a) => a.gcm),
  });
  ctx.figure({
    id: 'aead.ccm',
    label: 'AES-128-CCM, 8-byte tag',
    ...us,
    baseline: 'aead.gcm',
    samples: aead.map((a) => a.ccm),
  });
  ctx.figure({
    id: 'aead.chacha',
    label: 'ChaCha20-Poly1305 (chosen)',
    ...us,
    baseline: 'aead.gcm',
    samples: aead.map((a) => a.chacha),
  });
  ctx.figure({
    id: 'aead.seal',
    label: 'sealLoraFrame, whole frame',
    ...us,
    baseline: 'aead.gcm',
    samples: aead.map((a) => a.seal),
  });
  ctx.note('This machine has AES instructions; boards without them, such as the Raspberry Pi 4, favour ChaCha20.');

  for (const n of [1_000, 10_000]) {
    const size = ctx.size(n, 500);
    const records = scenario('three streams, 60 s').slice(0, size);
    while (records.length < size) records.push({ ...records[records.length % 2000]!, seq: 100_000 + records.length });
    const rates = await ctx.repeat(`packer ${n}`, () => {
      const t = performance.now();
      packTelemetry(records, LORA_PROFILES.meshtastic.maxFrameBytes);
      return (size / (performance.now() - t)) * 1000;
    });
    ctx.figure({
      id: `packer.${n}`,
      label: `packTelemetry, a ${n.toLocaleString('en-US')}-record backlog into Meshtastic frames`,
      unit: 'records/s',
      better: 'higher',
      samples: rates,
    });
  }
}

await runBench({ name: 'lora-frames', title: 'LoRa frames: overhead, packing, AEAD cost', run });
