// The whole LoRa path in one process, with the real parts on each side: devices running agent/lora-link.ts on
// emulated radios, the gateway, and a loopback control plane whose lora.* handling is controlplane/lora-relay.ts
// over in-memory ports (exactly-once telemetry by (device, seq), persisted-style replay windows and seqs).

import { createLoraLink, type LoraLink } from '../../agent/lora-link.ts';
import { createLoraRelay, type IngestRecord, type LoraDevice, type LoraRelay } from '../../controlplane/lora-relay.ts';
import type { RadioParams } from '../../firmware-bridge/radio.ts';
import type { GatewayTime } from '../../gateway/time.ts';
import { createSystemTime } from '../../gateway/time.ts';
import { type Logger, silentLogger } from '../../protocol/log.ts';
import {
  deriveLoraSessionKeys,
  type LoraTelemetryRecord,
  loraEnrollTokenKeys,
  openEnrollRequest,
  type ReplayWindowState,
  sealEnrollResponse,
} from '../../protocol/lora.ts';
import { FAKE_TID, type FakeControlPlane, startFakeControlPlane } from './fake-controlplane.ts';
import {
  type DeviceRadio,
  type GatewayHarness,
  radioParams,
  startGatewayHarness,
  TEST_RNODE_PARAMS,
} from './gateway-harness.ts';
import { controlPlaneSession, type TestDevice, testControlPlaneKeys, testDevice } from './lora-fixtures.ts';

export interface CpStore {
  /** device → seq → record, each stored once. */
  readonly telemetry: Map<string, Map<number, IngestRecord>>;
  ingestCalls: number;
  duplicates: number;
}

export interface PathDevice {
  readonly keys: TestDevice;
  readonly cpView: LoraDevice;
  readonly radio: DeviceRadio;
  readonly link: LoraLink;
  readonly acked: Set<number>;
  /** Sends `records` until every one is acknowledged (the agent pump's job, in miniature). */
  deliver(records: readonly LoraTelemetryRecord[], options?: { timeoutMs?: number; retryMs?: number }): Promise<void>;
  readonly windowSaves: ReplayWindowState[];
  /** callIds the device's tool handler ran, in order. */
  readonly toolRuns: string[];
}

export interface LoraPath {
  /** An enroll token the control plane accepts once, over LoRa (lora-frames.md §4.10). */
  issueEnrollToken(): string;
  /** A device that has never had IP: its link has no session until it enrolls over LoRa. */
  addUnenrolledDevice(name: string): Promise<PathDevice>;
  readonly harness: GatewayHarness;
  readonly relay: LoraRelay;
  readonly store: CpStore;
  readonly devices: PathDevice[];
  addDevice(name: string): Promise<PathDevice>;
  close(): Promise<void>;
}

export async function startLoraPath(options: {
  lossRate?: number;
  timeScale?: number;
  log?: Logger;
  params?: typeof TEST_RNODE_PARAMS;
  dutyCycleShare?: number;
}): Promise<LoraPath> {
  const cpKeys = testControlPlaneKeys();
  const byShortId = new Map<string, LoraDevice[]>();
  const windows = new Map<string, ReplayWindowState>();
  const downSeq = new Map<string, number>();
  const store: CpStore = { telemetry: new Map(), ingestCalls: 0, duplicates: 0 };
  /** tokenId hex → token, and which device used it (single use; the same device may ask again). */
  const enrollTokens = new Map<string, { token: string; usedBy?: string }>();
  const log = options.log ?? silentLogger;
  // Filled in once the harness (and so the fake control plane) exists.
  let cp: FakeControlPlane | undefined;
  let relay: LoraRelay | undefined;
  const harness = await startGatewayHarness({
    lossRate: options.lossRate ?? 0,
    ...(options.timeScale === undefined ? {} : { timeScale: options.timeScale }),
    ...(options.params === undefined ? {} : { params: options.params }),
    log,
    controlPlane: (o) =>
      startFakeControlPlane({
        ...o,
        onUplink: async (body, gateway) => {
          const result = await relay!.handleUplink(gateway, FAKE_TID, body);
          for (const req of result.enrollRequests) await enroll(req.frame);
        },
        onReport: (body, gateway) => relay!.handleReport(gateway, body),
      }),
  });
  cp = harness.cp;
  const time: GatewayTime = createSystemTime({ timeScale: options.timeScale ?? 1 });
  relay = createLoraRelay({
    clock: time.clock,
    log,
    after: (ms, fn) => time.timers.setTimer(ms, fn),
    ackDelayMs: 300,
    ports: {
      devicesByShortId: async (id) => byShortId.get(id) ?? [],
      loadWindow: async (device) => windows.get(device),
      saveWindow: async (device, state) => {
        windows.set(device, state);
      },
      ingestTelemetry: async (device, records) => {
        store.ingestCalls++;
        const table = store.telemetry.get(device) ?? new Map<number, IngestRecord>();
        store.telemetry.set(device, table);
        let stored = 0;
        let duplicates = 0;
        for (const r of records) {
          if (table.has(r.seq)) duplicates++;
          else {
            table.set(r.seq, r);
            stored++;
          }
        }
        store.duplicates += duplicates;
        return { stored, duplicates };
      },
      takeDownlinkSeqs: async (device, count) => {
        const first = (downSeq.get(device) ?? 0) + 1;
        downSeq.set(device, first + count - 1);
        return first;
      },
      sendToGateway: (_gateway, type, body) => {
        if (!cp?.connected()) return false;
        cp.send(type, body as never);
        return true;
      },
      gatewaysOf: () => (cp?.connected() ? [harness.did] : []),
    },
  });
  /** The control plane's side of enrollment over LoRa, as a host would do it (single-use token, idempotent repeat). */
  async function enroll(frame: Uint8Array): Promise<void> {
    let req: ReturnType<typeof openEnrollRequest>;
    try {
      req = openEnrollRequest(frame, (id) => enrollTokens.get(Buffer.from(id).toString('hex'))?.token);
    } catch {
      return; // unknown token or bad MAC: no answer (the device retries, or the operator looks)
    }
    const entry = enrollTokens.get(Buffer.from(req.tokenId).toString('hex'))!;
    if (entry.usedBy !== undefined && entry.usedBy !== req.deviceId) return;
    entry.usedBy = req.deviceId;
    const view: LoraDevice = {
      device: req.deviceId,
      tid: FAKE_TID,
      shortIdHex: Buffer.from(req.header.shortId).toString('hex'),
      session: deriveLoraSessionKeys({
        deviceX25519: { publicKey: req.deviceX25519 },
        controlPlaneX25519: cpKeys.x25519,
        tid: FAKE_TID,
        deviceId: req.deviceId,
      }),
      streams: ['env.temperature', 'env.humidity'],
      tools: ['sensor.read', 'valve.open'],
      revoked: false,
    };
    if (!(byShortId.get(view.shortIdHex) ?? []).some((d) => d.device === view.device)) {
      byShortId.set(view.shortIdHex, [...(byShortId.get(view.shortIdHex) ?? []), view]);
      cp?.setDevices([...servedList(), { device: view.device, shortId: view.shortIdHex, standing: 'served' }]);
    }
    const first = (downSeq.get(view.device) ?? 0) + 1;
    downSeq.set(view.device, first);
    const response = sealEnrollResponse({
      request: frame,
      token: entry.token,
      seq: first,
      status: 'accepted',
      controlPlaneX25519Public: cpKeys.x25519.publicKey,
      tid: FAKE_TID,
    });
    relay!.sendFrames(view, [response], { priority: 0, ttlMs: 600_000, maxAttempts: 5 });
  }
  const servedList = () =>
    [...byShortId.values()]
      .flat()
      .map((d) => ({ device: d.device, shortId: d.shortIdHex, standing: 'served' as const }));
  const devices: PathDevice[] = [];
  const path: LoraPath = {
    issueEnrollToken() {
      const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64url');
      enrollTokens.set(Buffer.from(loraEnrollTokenKeys(token).tokenId).toString('hex'), { token });
      return token;
    },
    async addUnenrolledDevice(name) {
      return makeDevice(name, false);
    },
    harness,
    relay,
    store,
    devices,
    addDevice: (name) => makeDevice(name, true),
    async close() {
      for (const d of devices) await d.link.stop();
      await harness.close();
    },
  };
  async function makeDevice(name: string, enrolled: boolean): Promise<PathDevice> {
    const keys = testDevice(cpKeys, FAKE_TID);
    const cpView: LoraDevice = {
      device: keys.did,
      tid: FAKE_TID,
      shortIdHex: keys.shortIdHex,
      session: controlPlaneSession(cpKeys, keys, FAKE_TID),
      streams: ['env.temperature', 'env.humidity'],
      tools: ['sensor.read', 'valve.open'],
      revoked: false,
    };
    if (enrolled) byShortId.set(keys.shortIdHex, [...(byShortId.get(keys.shortIdHex) ?? []), cpView]);
    const radio = await harness.device(name);
    let seq = 0;
    const windowSaves: ReplayWindowState[] = [];
    const toolRuns: string[] = [];
    const params: RadioParams = radioParams(options.params ?? TEST_RNODE_PARAMS);
    const link = createLoraLink({
      radio: radio.radio,
      params,
      maxFrameBytes: 254,
      ...(enrolled ? { session: keys.session } : {}),
      seq: {
        take: (count) => {
          const first = seq + 1;
          seq += count;
          return { first, count };
        },
      },
      downlinkWindow: {
        save: (s) => {
          windowSaves.push(s);
        },
      },
      handlers: {
        toolCall: async (call) => {
          toolRuns.push(call.callId);
          return { status: 'ok', durationMs: 3, value: { echo: call.args } };
        },
      },
      timers: time.timers,
      clock: time.clock,
      log,
      ...(options.dutyCycleShare === undefined ? {} : { dutyCycleShare: options.dutyCycleShare }),
    });
    link.start();
    const acked = new Set<number>();
    link.onAck((ranges) => {
      for (const r of ranges) for (let s = r.from; s <= r.to; s++) acked.add(s);
    });
    const d: PathDevice = {
      keys,
      cpView,
      radio,
      link,
      acked,
      windowSaves,
      toolRuns,
      async deliver(records, o = {}) {
        const deadline = Date.now() + (o.timeoutMs ?? 60_000);
        const retryMs = o.retryMs ?? 1_500;
        for (;;) {
          const pending = records.filter((r) => !acked.has(r.seq));
          if (pending.length === 0) return;
          if (Date.now() > deadline) throw new Error(`${name}: ${pending.length} records never acknowledged`);
          await link.sendTelemetry(pending, { maxFrames: 2 });
          // Wait for acks (or give up on them after retryMs of device time, scaled).
          await new Promise<void>((resolve) => {
            const cancel = time.timers.setTimer(retryMs, () => {
              off();
              resolve();
            });
            const off = link.onAck(() => {
              if (records.every((r) => acked.has(r.seq))) {
                cancel();
                off();
                resolve();
              }
            });
          });
        }
      },
    };
    devices.push(d);
    return d;
  }
  return path;
}
