// A control plane for LoRa end-to-end tests: the loopback WSS host of fake-controlplane.ts with the real
// controlplane/lora-relay.ts behind it, in-memory ports (telemetry stored once per (device, seq)), manifests
// registered by hash (what an operator does with an enroll token, lora-frames.md §4.10.5), enrollment over LoRa,
// and the served-device list pushed to gateways.

import { randomBytes } from 'node:crypto';
import { createLoraRelay, type IngestRecord, type LoraDevice, type LoraRelay } from '../../controlplane/lora-relay.ts';
import type { GatewayTime } from '../../gateway/time.ts';
import { createSystemTime } from '../../gateway/time.ts';
import { type Logger, silentLogger } from '../../protocol/log.ts';
import {
  deriveLoraSessionKeys,
  loraEnrollTokenKeys,
  openEnrollRequest,
  type ReplayWindowState,
  sealEnrollResponse,
  type X25519KeyPair,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { type FakeControlPlane, startFakeControlPlane } from './fake-controlplane.ts';

export interface LoraControlPlane {
  readonly cp: FakeControlPlane;
  readonly relay: LoraRelay;
  readonly x25519: X25519KeyPair;
  readonly tid: string;
  /** device → seq → record, each stored once; `duplicates` counts records that arrived again. */
  readonly telemetry: Map<string, Map<number, IngestRecord>>;
  readonly counts: { duplicates: number; ingests: number };
  /** What the operator registers with an enroll token: the manifest's hash and the names its indexes map to. */
  registerManifest(hashHex: string, names: { streams: readonly string[]; tools: readonly string[] }): void;
  issueEnrollToken(): string;
  /** Enrolled LoRa devices by did. */
  device(did: string): LoraDevice | undefined;
  close(): Promise<void>;
}

export async function startLoraControlPlane(options: {
  tid: string;
  heartbeatMs?: number;
  log?: Logger;
  time?: GatewayTime;
}): Promise<LoraControlPlane> {
  const log = options.log ?? silentLogger;
  const time = options.time ?? createSystemTime();
  const x25519 = x25519KeyPair();
  const tid = options.tid;
  const byShortId = new Map<string, LoraDevice[]>();
  const byDid = new Map<string, LoraDevice>();
  const windows = new Map<string, ReplayWindowState>();
  const downSeq = new Map<string, number>();
  const telemetry = new Map<string, Map<number, IngestRecord>>();
  const counts = { duplicates: 0, ingests: 0 };
  const manifests = new Map<string, { streams: readonly string[]; tools: readonly string[] }>();
  const enrollTokens = new Map<string, { token: string; usedBy?: string }>();
  let relay: LoraRelay | undefined;

  const served = () =>
    [...byDid.values()].map((d) => ({ device: d.device, shortId: d.shortIdHex, standing: 'served' as const }));

  const cp = await startFakeControlPlane({
    tid,
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
    onUplink: async (body, gateway) => {
      const r = await relay!.handleUplink(gateway, tid, body);
      for (const req of r.enrollRequests) enroll(req.frame);
    },
    onReport: (body, gateway) => relay!.handleReport(gateway, body),
  });

  function enroll(frame: Uint8Array): void {
    let req: ReturnType<typeof openEnrollRequest>;
    try {
      req = openEnrollRequest(frame, (id) => enrollTokens.get(Buffer.from(id).toString('hex'))?.token);
    } catch (e) {
      log.warning('test_cp.enroll_refused', { error: e });
      return;
    }
    const entry = enrollTokens.get(Buffer.from(req.tokenId).toString('hex'))!;
    if (entry.usedBy !== undefined && entry.usedBy !== req.deviceId) return;
    const names = manifests.get(Buffer.from(req.manifestHash).toString('hex'));
    const first = (downSeq.get(req.deviceId) ?? 0) + 1;
    downSeq.set(req.deviceId, first);
    const target = { device: req.deviceId, tid, shortIdHex: Buffer.from(req.header.shortId).toString('hex') };
    if (!names) {
      const refusal = sealEnrollResponse({
        request: frame,
        token: entry.token,
        seq: first,
        status: 'manifest-unknown',
      });
      relay!.sendFrames(target, [refusal], { priority: 0, ttlMs: 600_000, maxAttempts: 3 });
      return;
    }
    entry.usedBy = req.deviceId;
    if (!byDid.has(req.deviceId)) {
      const d: LoraDevice = {
        ...target,
        session: deriveLoraSessionKeys({
          deviceX25519: { publicKey: req.deviceX25519 },
          controlPlaneX25519: x25519,
          tid,
          deviceId: req.deviceId,
        }),
        streams: names.streams,
        tools: names.tools,
        revoked: false,
      };
      byDid.set(d.device, d);
      byShortId.set(d.shortIdHex, [...(byShortId.get(d.shortIdHex) ?? []), d]);
      if (cp.connected()) cp.setDevices(served());
    }
    const response = sealEnrollResponse({
      request: frame,
      token: entry.token,
      seq: first,
      status: 'accepted',
      controlPlaneX25519Public: x25519.publicKey,
      tid,
    });
    relay!.sendFrames(target, [response], { priority: 0, ttlMs: 600_000, maxAttempts: 10 });
  }

  relay = createLoraRelay({
    clock: time.clock,
    log,
    after: (ms, fn) => time.timers.setTimer(ms, fn),
    ackDelayMs: 500,
    ports: {
      devicesByShortId: async (id) => byShortId.get(id) ?? [],
      loadWindow: async (device) => windows.get(device),
      saveWindow: async (device, state) => {
        windows.set(device, state);
      },
      ingestTelemetry: async (device, records) => {
        counts.ingests++;
        const table = telemetry.get(device) ?? new Map<number, IngestRecord>();
        telemetry.set(device, table);
        let stored = 0;
        for (const r of records) {
          if (table.has(r.seq)) counts.duplicates++;
          else {
            table.set(r.seq, r);
            stored++;
          }
        }
        return { stored, duplicates: records.length - stored };
      },
      takeDownlinkSeqs: async (device, count) => {
        const first = (downSeq.get(device) ?? 0) + 1;
        downSeq.set(device, first + count - 1);
        return first;
      },
      sendToGateway: (_gateway, type, body) => {
        if (!cp.connected()) return false;
        cp.send(type, body as never);
        return true;
      },
      gatewaysOf: () => (cp.connected() ? ['gateway'] : []),
    },
  });
  cp.setDevices([]);

  return {
    cp,
    relay,
    x25519,
    tid,
    telemetry,
    counts,
    registerManifest(hashHex, names) {
      manifests.set(hashHex, names);
    },
    issueEnrollToken() {
      const token = randomBytes(24).toString('base64url');
      enrollTokens.set(Buffer.from(loraEnrollTokenKeys(token).tokenId).toString('hex'), { token });
      return token;
    },
    device: (did) => byDid.get(did),
    close: () => cp.close(),
  };
}
