// LoRa path figures with the real parts: device links (agent/lora-link.ts) on emulated RNodes sharing a simulated
// air, the gateway (gateway/), and the control plane's relay (controlplane/lora-relay.ts) behind a loopback WSS host.
//   1. goodput vs the airtime-limited capacity (ratio), 3 devices at SF8/BW125, EU868 1 %, one simulated hour;
//   2. frame overhead in bytes and readings per frame (measured on that run);
//   3. end-to-end latency at SF8/BW125 (device radio → control plane store) against the airtime formula;
//   4. backlog drain after 24 simulated hours offline.
// Run: npx node bench/gateway.bench.ts [--quick]   (prints figures only; no thresholds)

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { createLoraLink, type LoraLink } from '../agent/lora-link.ts';
import { createLoraRelay, type LoraDevice, type LoraRelay } from '../controlplane/lora-relay.ts';
import { rnodeAirtimeMs, rnodePreambleSymbols } from '../firmware-bridge/airtime.ts';
import { type RNodeEmulator, startRNodeEmulator } from '../firmware-bridge/emulator/rnode-emulator.ts';
import { createSimulatedAir, type SimulatedAir } from '../firmware-bridge/emulator/simulated-air.ts';
import { createRNodeRadio, type RNodeParams, type RNodeRadio } from '../firmware-bridge/rnode/driver.ts';
import { createGateway, type Gateway } from '../gateway/gateway.ts';
import { type GatewayStore, openGatewayStore } from '../gateway/gateway-store.ts';
import { gatewayManifest } from '../gateway/manifest.ts';
import { createGatewayMetrics } from '../gateway/metrics.ts';
import { createSystemTime, type GatewayTime } from '../gateway/time.ts';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import {
  decodeEnvelope,
  type Envelope,
  type EnvelopeType,
  encodeEnvelope,
  newMessageId,
  WSS_SUBPROTOCOL,
} from '../protocol/envelope.ts';
import { silentLogger } from '../protocol/log.ts';
import {
  deriveLoraSessionKeys,
  encodeTelemetry,
  LORA_OVERHEAD_BYTES,
  type LoraTelemetryRecord,
  packTelemetry,
  sealLoraFrame,
  x25519KeyPair,
} from '../protocol/lora.ts';
import { MetricsRegistry } from '../protocol/metrics.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';

const QUICK = process.argv.includes('--quick');
const TID = '0e6c3a3d-952c-55af-be8a-3d562dcf52c7';
const PARAMS: RNodeParams = {
  freqHz: 867_200_000,
  bandwidthHz: 125_000,
  spreadingFactor: 8,
  codingRate: 5,
  txPowerDbm: 14,
  region: 'EU868',
};
const RADIO_PARAMS = { ...PARAMS, preambleSymbols: rnodePreambleSymbols(PARAMS) };
const TIMING = { bootDelayMs: 20, detectTimeoutMs: 300, keepaliveIntervalMs: 1_000, presencePollMs: 100 };

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A control-plane stand-in: aethermesh.v2 for one gateway, lora.* handled by the real relay. */
async function startHost(relayRef: { relay?: LoraRelay }, devices: () => { device: string; shortId: string }[]) {
  let current: { send(type: EnvelopeType, body: unknown): void } | undefined;
  const http = createServer();
  const wss = new WebSocketServer({
    server: http,
    handleProtocols: (p) => (p.has(WSS_SUBPROTOCOL) ? WSS_SUBPROTOCOL : false),
  });
  wss.on('connection', (ws) => {
    let seq = 0;
    let peer = '*';
    const send = (type: EnvelopeType, body: unknown) =>
      ws.send(
        encodeEnvelope({
          v: 2,
          id: newMessageId(),
          tid: TID,
          type,
          ts: Date.now(),
          seq: seq++,
          src: 'cp:bench',
          dst: peer,
          body,
        } as unknown as Envelope),
      );
    const nonce = randomBytes(32).toString('base64url');
    send('hello.challenge', { nonce });
    let chain = Promise.resolve();
    ws.on('message', (data) => {
      chain = chain.then(async () => {
        const env = decodeEnvelope(data.toString(), { tid: TID });
        if (env.type === 'hello') {
          peer = env.src;
          send('hello.ack', { sessionId: newMessageId(), heartbeatMs: 30_000, resume: { ackedThroughSeq: null } });
          send('lora.devices', {
            devices: devices().map((d) => ({ device: d.device, shortId: d.shortId, standing: 'served' })),
          });
          current = { send };
        } else if (env.type === 'lora.uplink') {
          await relayRef.relay!.handleUplink(peer, TID, env.body);
          send('lora.ack', { inReplyTo: env.id });
        } else if (env.type === 'lora.downlink.report') {
          relayRef.relay!.handleReport(peer, env.body);
          send('lora.ack', { inReplyTo: env.id });
        } else if (env.type === 'ping') send('pong', { inReplyTo: env.id });
      });
    });
    ws.on('close', () => {
      current = undefined;
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(http.address() as { port: number }).port}/v1/wss`,
    connected: () => current !== undefined,
    send: (type: EnvelopeType, body: unknown) => current?.send(type, body),
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        http.close(() => r());
      }),
  };
}

interface Site {
  readonly dir: string;
  readonly air: SimulatedAir;
  readonly time: GatewayTime;
  readonly gateway: Gateway;
  readonly store: GatewayStore;
  readonly relay: LoraRelay;
  readonly stored: Map<string, Map<number, number>>;
  readonly devices: {
    link: LoraLink;
    cp: LoraDevice;
    radio: RNodeRadio;
    emu: RNodeEmulator;
    sendTimes: Map<number, number>;
  }[];
  readonly ingestTimes: { device: string; seq: number; atMs: number }[];
  close(): Promise<void>;
}

async function startSite(o: {
  devices: number;
  timeScale: number;
  lossRate: number;
  offlineBacklog?: (store: GatewayStore, cp: LoraDevice[], seeds: ReturnType<typeof deviceKeys>[]) => void;
}): Promise<Site> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-gw-'));
  const air = createSimulatedAir({ timeScale: o.timeScale, lossRate: o.lossRate, seed: 11 });
  const time = createSystemTime({ timeScale: o.timeScale });
  const cpX = x25519KeyPair();
  const relayRef: { relay?: LoraRelay } = {};
  const keys = Array.from({ length: o.devices }, () => deviceKeys(cpX.publicKey));
  const cpViews: LoraDevice[] = keys.map((k) => ({
    device: k.did,
    tid: TID,
    shortIdHex: Buffer.from(k.session.shortId).toString('hex'),
    session: deriveLoraSessionKeys({
      deviceX25519: { publicKey: k.x.publicKey },
      controlPlaneX25519: cpX,
      tid: TID,
      deviceId: k.did,
    }),
    streams: ['env.temperature', 'env.humidity', 'env.pressure'],
    tools: ['sensor.read'],
    revoked: false,
  }));
  const host = await startHost(relayRef, () => cpViews.map((d) => ({ device: d.device, shortId: d.shortIdHex })));
  const stored = new Map<string, Map<number, number>>();
  const ingestTimes: { device: string; seq: number; atMs: number }[] = [];
  const downSeq = new Map<string, number>();
  const gwSeed = new Uint8Array(randomBytes(32));
  const gwDid = didKeyFromEd25519(ed25519KeyPair(gwSeed).publicKey);
  relayRef.relay = createLoraRelay({
    clock: time.clock,
    log: silentLogger,
    after: (ms, fn) => time.timers.setTimer(ms, fn),
    ackDelayMs: 1_000,
    ports: {
      devicesByShortId: async (id) => cpViews.filter((d) => d.shortIdHex === id),
      loadWindow: async () => undefined,
      saveWindow: async () => {},
      ingestTelemetry: async (device, records) => {
        const t = stored.get(device) ?? new Map<number, number>();
        stored.set(device, t);
        let n = 0;
        const at = performance.now();
        for (const r of records) {
          if (t.has(r.seq)) continue;
          t.set(r.seq, at);
          ingestTimes.push({ device, seq: r.seq, atMs: at });
          n++;
        }
        return { stored: n, duplicates: records.length - n };
      },
      takeDownlinkSeqs: async (device, count) => {
        const first = (downSeq.get(device) ?? 0) + 1;
        downSeq.set(device, first + count - 1);
        return first;
      },
      sendToGateway: (_g, type, body) => {
        if (!host.connected()) return false;
        host.send(type, body);
        return true;
      },
      gatewaysOf: () => (host.connected() ? [gwDid] : []),
    },
  });
  const gwEmu = await startRNodeEmulator({ dir, name: 'gw', air, region: 'EU868' });
  const store = openGatewayStore(join(dir, 'gw.db'), { clock: time.clock, log: silentLogger, identitySeed: gwSeed });
  o.offlineBacklog?.(store, cpViews, keys);
  const token = 'e30.e30.e30'; // the bench host does not check tokens
  const gateway = createGateway({
    name: 'bench-gw',
    identitySeed: gwSeed,
    agentVersion: '0.1.0',
    manifest: gatewayManifest({ did: gwDid, name: 'bench-gw', agentVersion: '0.1.0', radios: [] }),
    radios: [
      {
        name: 'rnode0',
        radio: createRNodeRadio({ path: gwEmu.hostPath, params: PARAMS, timing: TIMING, dutyCycle: 'account' }),
        maxFrameBytes: 254,
        params: RADIO_PARAMS,
      },
    ],
    store,
    upstream: { url: host.url, tid: TID, tokens: { read: () => token, write: () => {} } },
    time,
    log: silentLogger,
    metrics: createGatewayMetrics(new MetricsRegistry()),
  });
  const devices: Site['devices'] = [];
  for (let i = 0; i < o.devices; i++) {
    const emu = await startRNodeEmulator({
      dir,
      name: `dev-${i}`,
      air,
      region: 'EU868',
      position: { xM: 300 + 200 * i, yM: 0 },
    });
    const radio = createRNodeRadio({ path: emu.hostPath, params: PARAMS, timing: TIMING, dutyCycle: 'account' });
    await radio.open();
    let seq = 0;
    const k = keys[i]!;
    const link = createLoraLink({
      radio,
      params: RADIO_PARAMS,
      maxFrameBytes: 254,
      session: k.session,
      seq: {
        take: (count) => {
          const first = seq + 1;
          seq += count;
          return { first, count };
        },
      },
      handlers: { toolCall: async () => ({ status: 'ok', durationMs: 0, value: null }) },
      timers: time.timers,
      clock: time.clock,
      log: silentLogger,
    });
    link.start();
    devices.push({ link, cp: cpViews[i]!, radio, emu, sendTimes: new Map() });
  }
  await gateway.start();
  const t0 = Date.now();
  while (!(host.connected() && gateway.status().radios[0]!.ready)) {
    if (Date.now() - t0 > 20_000) throw new Error('site did not come up');
    await sleep(20);
  }
  return {
    dir,
    air,
    time,
    gateway,
    store,
    relay: relayRef.relay,
    stored,
    devices,
    ingestTimes,
    async close() {
      for (const d of devices) {
        await d.link.stop();
        await d.radio.close();
        await d.emu.close();
      }
      await gateway.stop();
      store.close();
      await gwEmu.close();
      await host.close();
      air.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function deviceKeys(cpPublic: Uint8Array) {
  const kp = ed25519KeyPair();
  const did = didKeyFromEd25519(kp.publicKey);
  const x = x25519KeyPair();
  return {
    did,
    x,
    session: deriveLoraSessionKeys({
      deviceX25519: x,
      controlPlaneX25519: { publicKey: cpPublic },
      tid: TID,
      deviceId: did,
    }),
  };
}

/** A realistic backlog: three streams sampled every minute, 0.1 resolution. */
function readings(n: number, startSeq = 1): LoraTelemetryRecord[] {
  const out: LoraTelemetryRecord[] = [];
  for (let i = 0; out.length < n; i++) {
    const ts = Date.UTC(2026, 0, 1) + i * 60_000;
    out.push({ seq: startSeq + out.length, stream: 0, ts, value: (215 + ((i * 7) % 13)) / 10 });
    out.push({ seq: startSeq + out.length, stream: 1, ts, value: 40 + (i % 9) });
    out.push({ seq: startSeq + out.length, stream: 2, ts, value: (101320 - (i % 17)) / 100 });
  }
  return out.slice(0, n);
}

/** Keeps a device's pipe full: send what is unacked, as the budget allows, until `untilMs` (real). */
async function pump(link: LoraLink, records: LoraTelemetryRecord[], untilMs: number, sendTimes?: Map<number, number>) {
  const acked = new Set<number>();
  link.onAck((ranges) => {
    for (const r of ranges) for (let s = r.from; s <= r.to; s++) acked.add(s);
  });
  const inFlight = new Map<number, number>();
  while (Date.now() < untilMs) {
    const now = Date.now();
    const pending = records.filter(
      (r) => !acked.has(r.seq) && !(inFlight.has(r.seq) && now - inFlight.get(r.seq)! < 3_000),
    );
    if (pending.length === 0) {
      await sleep(50);
      continue;
    }
    const r = await link.sendTelemetry(pending, { maxFrames: 1 });
    for (const rec of r.sent) {
      inFlight.set(rec.seq, Date.now());
      if (sendTimes && !sendTimes.has(rec.seq)) sendTimes.set(rec.seq, performance.now());
    }
    if (r.sent.length === 0) await sleep(50);
  }
}

async function goodput(): Promise<void> {
  const timeScale = QUICK ? 200 : 100;
  const simHours = 1;
  const site = await startSite({ devices: 3, timeScale, lossRate: 0 });
  const realMs = (simHours * 3_600_000) / timeScale;
  const until = Date.now() + realMs;
  const backlog = readings(6000);
  await Promise.all(site.devices.map((d) => pump(d.link, backlog, until)));
  const storedReadings = [...site.stored.values()].reduce((n, t) => n + t.size, 0);
  const stats = site.air.stats();
  const devFrames = site.devices.reduce((n, d) => n + (stats.ports[d.emu.portId]?.tx.frames ?? 0), 0);
  const devAirtime = site.devices.reduce((n, d) => n + (stats.ports[d.emu.portId]?.tx.airtimeMs ?? 0), 0);
  const perFrameReadings = storedReadings / Math.max(1, devFrames);
  const fullFrameAirtime = rnodeAirtimeMs(254, PARAMS);
  // Capacity: each device may use half the 1 % budget (its default share) with full frames.
  const capacityFrames = site.devices.length * ((0.5 * 0.01 * simHours * 3_600_000) / fullFrameAirtime);
  const capacityReadings = capacityFrames * perFrameReadings;
  const gwPort = stats.ports.gw!;
  console.log('1. goodput, 3 devices, SF8/BW125, EU868 sub-band L (1 %), device share 50 %, one simulated hour');
  console.log(
    `   readings stored exactly once: ${storedReadings} (${(storedReadings / simHours).toFixed(0)} per hour)`,
  );
  console.log(
    `   device frames on air: ${devFrames}, airtime ${(devAirtime / 1000).toFixed(1)} s (budget ${(site.devices.length * 18).toFixed(0)} s)`,
  );
  console.log(
    `   airtime-limited capacity: ${capacityFrames.toFixed(0)} full frames = ${capacityReadings.toFixed(0)} readings`,
  );
  console.log(`   ratio goodput / capacity: ${(storedReadings / capacityReadings).toFixed(3)}`);
  console.log(
    `   gateway: ${gwPort.tx.frames} ack frames, ${(gwPort.tx.airtimeMs / 1000).toFixed(1)} s on air, budget used ${(gwPort.budgetUsed * 100).toFixed(1)} %`,
  );
  console.log('2. frame overhead and readings per frame');
  console.log(`   Outpost frame: ${LORA_OVERHEAD_BYTES} bytes (10 header + 16 tag); RNode adds 1 byte per LoRa frame`);
  console.log(`   readings per frame (measured): ${perFrameReadings.toFixed(1)}`);
  await site.close();
}

async function latency(): Promise<void> {
  const site = await startSite({ devices: 1, timeScale: 1, lossRate: 0 });
  const d = site.devices[0]!;
  const n = QUICK ? 10 : 30;
  const lat: number[] = [];
  const ratio: number[] = [];
  let seq = 1;
  for (let i = 0; i < n; i++) {
    const recs = readings(3, seq);
    seq += 3;
    const t0 = performance.now();
    await d.link.sendTelemetry(recs, { maxFrames: 1 });
    const frameBytes = encodeTelemetry(recs).length + LORA_OVERHEAD_BYTES;
    const deadline = Date.now() + 10_000;
    while (!site.stored.get(d.cp.device)?.has(recs[0]!.seq) && Date.now() < deadline) await sleep(2);
    const at = site.stored.get(d.cp.device)?.get(recs[0]!.seq);
    if (at === undefined) continue;
    const ms = at - t0;
    lat.push(ms);
    ratio.push(ms / rnodeAirtimeMs(frameBytes, PARAMS));
    await sleep(1_500); // stay far inside the budget; one frame at a time
  }
  lat.sort((a, b) => a - b);
  ratio.sort((a, b) => a - b);
  const air = rnodeAirtimeMs(encodeTelemetry(readings(3)).length + LORA_OVERHEAD_BYTES, PARAMS);
  console.log(
    `3. end-to-end latency, SF8/BW125, ${lat.length} frames of 3 readings (${air.toFixed(0)} ms on air each)`,
  );
  console.log(
    `   device send → control-plane store: p50 ${pct(lat, 50).toFixed(0)} ms, p90 ${pct(lat, 90).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms`,
  );
  console.log(
    `   ÷ airtime formula: p50 ${pct(ratio, 50).toFixed(2)}, p90 ${pct(ratio, 90).toFixed(2)}, max ${ratio[ratio.length - 1]!.toFixed(2)}`,
  );
  console.log('   (the rest: serial links and driver pacing, the gateway checks and fsync, the WSS hop, the relay)');
  await site.close();
}

async function backlogDrain(): Promise<void> {
  // 24 h offline at a site of 3 devices each at its full 50 % share of 1 % with full SF8 frames.
  const perDevicePerHour = Math.floor((0.5 * 36_000) / rnodeAirtimeMs(254, PARAMS));
  const hours = 24;
  let frames = 0;
  const t0 = performance.now();
  let site: Site | undefined;
  site = await startSite({
    devices: 3,
    timeScale: 1,
    lossRate: 0,
    offlineBacklog: (store, cps, keys) => {
      keys.forEach((k, i) => {
        let s = 1;
        const pack = packTelemetry(readings(perDevicePerHour * hours * 120), 254, {
          maxFrames: perDevicePerHour * hours,
        });
        for (const f of pack.frames) {
          const frame = sealLoraFrame(k.session, { type: 'telemetry', seq: s++ }, f.payload, { maxFrameBytes: 254 });
          store.uplink.store({ radio: 'rnode0', rssiDbm: -90, snrDb: 5, rxWallMs: Date.now(), frame }, 'telemetry');
          frames++;
        }
        void cps[i];
      });
    },
  });
  const storedAt = performance.now();
  while (site.gateway.status().uplink.frames > 0) await sleep(50);
  const drainedAt = performance.now();
  const readingsStored = [...site.stored.values()].reduce((n, t) => n + t.size, 0);
  console.log(
    `4. backlog after ${hours} simulated hours offline: ${frames} frames (${perDevicePerHour}/h per device × 3)`,
  );
  console.log(`   written to the gateway store in ${((storedAt - t0) / 1000).toFixed(1)} s (fsync per frame)`);
  console.log(
    `   drained upstream in ${((drainedAt - storedAt) / 1000).toFixed(1)} s = ${(frames / ((drainedAt - storedAt) / 1000)).toFixed(0)} frames/s (replay limit 50/s), ${readingsStored} readings stored`,
  );
  await site.close();
  site = undefined;
}

console.log(`bench/gateway.bench.ts${QUICK ? ' (quick)' : ''}\n`);
await goodput();
await latency();
await backlogDrain();
