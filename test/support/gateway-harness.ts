// A gateway under test with real parts: emulated RNodes on socat ptys sharing a simulated air, the real RNode
// driver, a SQLite store in a temp dir, a fake control plane behind a backhaul proxy that can be cut.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rnodePreambleSymbols } from '../../firmware-bridge/airtime.ts';
import { type RNodeEmulator, startRNodeEmulator } from '../../firmware-bridge/emulator/rnode-emulator.ts';
import { createSimulatedAir, type SimulatedAir } from '../../firmware-bridge/emulator/simulated-air.ts';
import type { RadioParams, ReceivedPacket } from '../../firmware-bridge/radio.ts';
import { createRNodeRadio, type RNodeParams, type RNodeRadio } from '../../firmware-bridge/rnode/driver.ts';
import { createGateway, type Gateway, type GatewayLimits } from '../../gateway/gateway.ts';
import { type GatewayStore, openGatewayStore } from '../../gateway/gateway-store.ts';
import { gatewayManifest } from '../../gateway/manifest.ts';
import { createGatewayMetrics, type GatewayMetrics } from '../../gateway/metrics.ts';
import { createSystemTime, type GatewayTime } from '../../gateway/time.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { type Logger, silentLogger } from '../../protocol/log.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { type BackhaulProxy, startBackhaulProxy } from './backhaul-proxy.ts';
import { type FakeControlPlane, startFakeControlPlane } from './fake-controlplane.ts';
import { tempDir } from './radio-fixtures.ts';

export const FAST_RNODE_TIMING = {
  bootDelayMs: 20,
  detectTimeoutMs: 300,
  detectAttempts: 5,
  configTimeoutMs: 2_000,
  keepaliveIntervalMs: 250,
  keepaliveTimeoutMs: 1_000,
  presencePollMs: 25,
  backoffInitialMs: 20,
  backoffMaxMs: 150,
  writeTimeoutMs: 500,
  detachTimeoutMs: 300,
} as const;

export const TEST_RNODE_PARAMS: RNodeParams = {
  freqHz: 867_200_000,
  bandwidthHz: 125_000,
  spreadingFactor: 7,
  codingRate: 5,
  txPowerDbm: 14,
  region: 'EU868',
};

export function radioParams(p: RNodeParams): RadioParams {
  return { ...p, preambleSymbols: rnodePreambleSymbols(p) };
}

export interface DeviceRadio {
  readonly emulator: RNodeEmulator;
  readonly radio: RNodeRadio;
  readonly received: ReceivedPacket[];
  /** Resolves when `n` packets have been received in total. */
  waitForPackets(n: number, timeoutMs?: number): Promise<void>;
}

export interface GatewayHarness {
  readonly dir: string;
  readonly air: SimulatedAir;
  readonly cp: FakeControlPlane;
  readonly proxy: BackhaulProxy;
  readonly gatewayEmulator: RNodeEmulator;
  readonly gateway: Gateway;
  readonly store: GatewayStore;
  readonly metrics: GatewayMetrics;
  readonly did: string;
  readonly time: GatewayTime;
  device(name: string, position?: { xM: number; yM: number }): Promise<DeviceRadio>;
  /** Starts the gateway and waits until its radio is ready (and, unless `offline`, its session and served list). */
  startAndWait(options?: { offline?: boolean }): Promise<void>;
  /** Stops the gateway and closes everything. */
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly timeScale?: number;
  readonly params?: RNodeParams;
  readonly limits?: Partial<GatewayLimits>;
  readonly heartbeatMs?: number;
  readonly log?: Logger;
  readonly lossRate?: number;
  /** Builds the control plane (default: a plain fake that records and acknowledges). */
  readonly controlPlane?: (o: { heartbeatMs: number }) => Promise<FakeControlPlane>;
}

/** Polls `predicate` (cheap, in-memory) until it holds; rejects after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function startGatewayHarness(options: HarnessOptions = {}): Promise<GatewayHarness> {
  const { dir, cleanup } = await tempDir('outpost-gw-');
  const timeScale = options.timeScale ?? 1;
  const params = options.params ?? TEST_RNODE_PARAMS;
  const log = options.log ?? silentLogger;
  const air = createSimulatedAir({ timeScale, seed: 7, lossRate: options.lossRate ?? 0 });
  const gatewayEmulator = await startRNodeEmulator({ dir, name: 'gw-rnode', air, region: params.region });
  const cp = await (options.controlPlane ?? startFakeControlPlane)({ heartbeatMs: options.heartbeatMs ?? 30_000 });
  const proxy = await startBackhaulProxy(cp.port);
  const seed = new Uint8Array(randomBytes(32));
  const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
  let token = await cp.mintToken(did);
  const time = createSystemTime({ timeScale });
  const metrics = createGatewayMetrics(new MetricsRegistry());
  const store = openGatewayStore(join(dir, 'gateway.db'), {
    clock: time.clock,
    log,
    identitySeed: seed,
    onUplinkDrop: (d) => metrics.uplinkDropped.inc({ reason: d.reason }, d.items),
  });
  const radio = createRNodeRadio({
    path: gatewayEmulator.hostPath,
    params,
    timing: FAST_RNODE_TIMING,
    // With a scaled air, the gateway's own scheduler (on scaled time) is what keeps to the law.
    ...(timeScale === 1 ? {} : { dutyCycle: 'account' as const }),
  });
  const gateway = createGateway({
    name: 'test-gw',
    identitySeed: seed,
    agentVersion: '0.1.0',
    manifest: gatewayManifest({
      did,
      name: 'test-gw',
      agentVersion: '0.1.0',
      radios: [{ kind: 'rnode', params: radioParams(params) }],
    }),
    radios: [{ name: 'rnode0', radio, maxFrameBytes: 254, params: radioParams(params) }],
    store,
    upstream: {
      url: `ws://127.0.0.1:${proxy.port}/v1/wss`,
      tid: cp.tid,
      tokens: {
        read: () => token,
        write: (t) => {
          token = t;
        },
      },
      heartbeatMs: options.heartbeatMs ?? 30_000,
      backoffInitialMs: 50 * timeScale,
      backoffMaxMs: 400 * timeScale,
    },
    time,
    log,
    metrics,
    limits: { tickMs: 50 * timeScale, retry: { retryInitialMs: 500, retryMaxMs: 2_000 }, ...options.limits },
  });
  const devices: DeviceRadio[] = [];
  let n = 0;
  return {
    dir,
    air,
    cp,
    proxy,
    gatewayEmulator,
    gateway,
    store,
    metrics,
    did,
    time,
    async device(name, position = { xM: 200 + 100 * n++, yM: 0 }) {
      const emulator = await startRNodeEmulator({ dir, name, air, region: params.region, position });
      const r = createRNodeRadio({
        path: emulator.hostPath,
        params,
        timing: FAST_RNODE_TIMING,
        ...(timeScale === 1 ? {} : { dutyCycle: 'account' as const }),
      });
      const received: ReceivedPacket[] = [];
      const waiters = new Set<() => void>();
      void (async () => {
        for await (const p of r.packets()) {
          received.push(p);
          for (const w of [...waiters]) w();
        }
      })();
      await r.open();
      const d: DeviceRadio = {
        emulator,
        radio: r,
        received,
        waitForPackets(count, timeoutMs = 10_000) {
          return new Promise((resolve, reject) => {
            const check = () => {
              if (received.length < count) return;
              waiters.delete(check);
              clearTimeout(t);
              resolve();
            };
            const t = setTimeout(() => {
              waiters.delete(check);
              reject(new Error(`timed out with ${received.length}/${count} packets at ${name}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
      };
      devices.push(d);
      return d;
    },
    async startAndWait(o = {}) {
      await gateway.start();
      await waitUntil(() => gateway.status().radios.every((r) => r.ready), 10_000, 'gateway radio ready');
      if (o.offline) return;
      await cp.waitFor(() => cp.received.some((e) => e.type === 'manifest.announce'), 10_000, 'handshake');
      await waitUntil(
        () => gateway.status().devices.served + gateway.status().devices.revoked > 0,
        10_000,
        'served list',
      );
    },
    async close() {
      await gateway.stop();
      store.close();
      for (const d of devices) {
        await d.radio.close();
        await d.emulator.close();
      }
      await gatewayEmulator.close();
      await proxy.close();
      await cp.close();
      air.close();
      await cleanup();
    },
  };
}
