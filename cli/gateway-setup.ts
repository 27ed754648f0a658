// Wires a gateway daemon from its configuration file: identity (systemd credential or 0600 key file), store,
// radio drivers, upstream token file, metrics, local API. The only place that picks concrete implementations.

import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { rnodePreambleSymbols } from '../firmware-bridge/airtime.ts';
import { createMeshtasticRadio } from '../firmware-bridge/meshtastic/driver.ts';
import type { Radio } from '../firmware-bridge/radio.ts';
import { createRNodeRadio, type RNodeParams } from '../firmware-bridge/rnode/driver.ts';
import type { GatewayConfig } from '../gateway/config.ts';
import {
  type Enrollment,
  Enrollment as EnrollmentSchema,
  enrollGateway,
  renewGatewayToken,
} from '../gateway/enrollment.ts';
import { GatewayError } from '../gateway/errors.ts';
import { createGateway, type Gateway, type GatewayRadio, type TokenStore } from '../gateway/gateway.ts';
import { type GatewayStore, openGatewayStore } from '../gateway/gateway-store.ts';
import { createLocalApi, type LocalApi } from '../gateway/local-api.ts';
import { gatewayManifest, type ManifestRadio } from '../gateway/manifest.ts';
import { createGatewayMetrics } from '../gateway/metrics.ts';
import { createSystemTime } from '../gateway/time.ts';
import { systemClock } from '../protocol/clock.ts';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import type { Logger } from '../protocol/log.ts';
import { LORA_PROFILES } from '../protocol/lora.ts';
import { MetricsRegistry } from '../protocol/metrics.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { writeFileAtomic } from '../store/atomic-file.ts';
import { loadKey } from '../store/key-file.ts';
import { buildInfo } from './build-info.ts';
import { gatewaySocketPath, gatewayStateDir } from './gateway-paths.ts';
import type { NativeAddonLoader } from './native-addons.ts';

export const GATEWAY_CREDENTIAL = 'outpost-gateway-identity';

type Env = Readonly<Record<string, string | undefined>>;

/** The runtime token kept in a 0600 file in the state directory: read at every connect, replaced on refresh. */
export function fileTokenStore(path: string, log: Logger): TokenStore {
  return {
    read() {
      try {
        const t = readFileSync(path, 'utf8').trim();
        return t.length > 0 ? t : undefined;
      } catch {
        return undefined;
      }
    },
    write(token) {
      try {
        writeFileAtomic(path, `${token}\n`, { mode: 0o600 });
      } catch (e) {
        log.error('gateway.token_write_failed', { path, error: e });
      }
    },
  };
}

function rnodeParams(r: Extract<GatewayConfig['radio'][number], { kind: 'rnode' }>): RNodeParams {
  return {
    freqHz: r.frequency_hz,
    bandwidthHz: r.bandwidth_hz,
    spreadingFactor: r.spreading_factor,
    codingRate: r.coding_rate,
    txPowerDbm: r.tx_power_dbm,
    region: r.region,
  };
}

export interface GatewayDaemon {
  readonly gateway: Gateway;
  readonly store: GatewayStore;
  readonly api: LocalApi;
  readonly did: string;
  readonly stateDir: string;
  readonly socketPath: string;
  close(): Promise<void>;
}

/** Builds everything; nothing is started yet except what opening the store does. */
export function setupGatewayDaemon(input: {
  readonly config: GatewayConfig;
  readonly configPath: string;
  readonly env: Env;
  readonly log: Logger;
  readonly loader: NativeAddonLoader;
}): GatewayDaemon {
  const { config, env, log } = input;
  const stateDir = gatewayStateDir(config, input.configPath, env);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const key = loadKey({ credential: GATEWAY_CREDENTIAL, filePath: join(stateDir, 'identity.key'), env });
  if (key.created) log.notice('gateway.identity_created', { path: key.path });
  const did = didKeyFromEd25519(ed25519KeyPair(key.seed).publicKey);
  const timeScale = config.simulation.time_scale;
  if (timeScale !== 1) log.warning('gateway.simulated_time', { timeScale, hint: 'only for emulated radios' });
  const time = createSystemTime({ timeScale });
  const registry = new MetricsRegistry();
  const metrics = createGatewayMetrics(registry);
  input.loader.load('serialport');
  const store = openGatewayStore(join(stateDir, 'gateway.db'), {
    clock: time.clock,
    log,
    identitySeed: key.seed,
    uplinkMaxBytes: Math.floor(config.store.max_mb * 1024 * 1024),
    uplinkMaxAgeMs: Math.floor(config.store.max_age_days * 86_400_000),
    downlinkMaxItems: config.store.downlink_max_items,
    onUplinkDrop: (d) => metrics.uplinkDropped.inc({ reason: d.reason }, d.items),
    nativeBinding: input.loader.load('better-sqlite3'),
  });
  // Drivers keep real time: their serial timing is physical. With a scaled air the gateway's scheduler, on
  // scaled time, is what keeps to the law; the drivers then only account.
  const dutyCycle = timeScale === 1 ? ('enforce' as const) : ('account' as const);
  const radios: GatewayRadio[] = [];
  const manifestRadios: ManifestRadio[] = [];
  for (const r of config.radio) {
    const rlog = log.child({ radio: r.name });
    let radio: Radio;
    if (r.kind === 'rnode') {
      const params = rnodeParams(r);
      radio = createRNodeRadio({
        path: r.path,
        params,
        clock: systemClock,
        log: rlog,
        dutyCycle,
        ...(r.airtime_limit_short_percent !== undefined || r.airtime_limit_long_percent !== undefined
          ? {
              airtimeLimits: {
                ...(r.airtime_limit_short_percent === undefined
                  ? {}
                  : { shortTermPercent: r.airtime_limit_short_percent }),
                ...(r.airtime_limit_long_percent === undefined
                  ? {}
                  : { longTermPercent: r.airtime_limit_long_percent }),
              },
            }
          : {}),
      });
      const radioParams = { ...params, preambleSymbols: rnodePreambleSymbols(params) };
      radios.push({ name: r.name, radio, maxFrameBytes: LORA_PROFILES.rnode.maxFrameBytes, params: radioParams });
      manifestRadios.push({ kind: 'rnode', params: radioParams });
    } else {
      radio = createMeshtasticRadio({
        path: r.path,
        clock: systemClock,
        log: rlog,
        channel: r.channel,
        portnum: r.portnum,
        dutyCycle,
        wantAckByDefault: false,
      });
      radios.push({ name: r.name, radio, maxFrameBytes: LORA_PROFILES.meshtastic.maxFrameBytes });
      manifestRadios.push({ kind: 'meshtastic' });
    }
  }
  const agentVersion = buildInfo().version;
  const manifest = gatewayManifest({ did, name: config.gateway.name, agentVersion, radios: manifestRadios });
  const up = upstreamSettings(config, stateDir, log);
  let ca: Buffer | undefined;
  if (config.upstream?.ca_file) {
    try {
      ca = readFileSync(resolve(dirname(input.configPath), config.upstream.ca_file));
    } catch (e) {
      throw new GatewayError(
        'CONFIG_INVALID',
        `cannot read upstream.ca_file ${config.upstream.ca_file}: ${(e as Error).message}`,
      );
    }
  }
  const gateway = createGateway({
    name: config.gateway.name,
    identitySeed: key.seed,
    agentVersion,
    manifest,
    radios,
    store,
    ...(up
      ? {
          upstream: {
            url: up.url,
            tid: up.tid,
            tokens: fileTokenStore(resolve(stateDir, up.tokenFile), log),
            ...(ca ? { ca } : {}),
            heartbeatMs: up.heartbeatMs,
            backoffInitialMs: up.backoffInitialMs,
            backoffMaxMs: up.backoffMaxMs,
            ...(up.httpUrl
              ? {
                  renewToken: () =>
                    renewGatewayToken({ httpUrl: up.httpUrl!, seed: key.seed, ...(ca ? { http: { ca } } : {}) }),
                }
              : {}),
          },
        }
      : {}),
    time,
    log,
    metrics,
    limits: {
      batchFrames: config.upstream?.batch_frames ?? 32,
      replay: {
        ratePerSec: config.upstream?.replay_frames_per_s ?? 50,
        burst: Math.max(64, (config.upstream?.replay_frames_per_s ?? 50) * 4),
      },
      retry: {
        retryInitialMs: config.downlink.retry_initial_s * 1000,
        retryMaxMs: config.downlink.retry_max_s * 1000,
      },
      beaconIntervalMs: config.downlink.beacon_interval_s * 1000,
    },
    filter: {
      dedupWindowMs: config.checks.dedup_window_s * 1000,
      perDevice: { ratePerSec: config.checks.device_frames_per_min / 60, burst: config.checks.device_burst },
    },
  });
  const socketPath = gatewaySocketPath(config, stateDir, env);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o750 });
  const api = createLocalApi({
    socketPath,
    ...(config.api.metrics_listen ? { metricsListen: config.api.metrics_listen } : {}),
    status: () => gateway.status(),
    metrics: () => {
      gateway.status(); // refreshes the gauges read at render time
      return registry.render();
    },
    log,
  });
  return {
    gateway,
    store,
    api,
    did,
    stateDir,
    socketPath,
    async close() {
      await gateway.stop();
      await api.close();
      store.close();
    },
  };
}

interface UpstreamSettings {
  readonly url: string;
  readonly tid: string;
  readonly tokenFile: string;
  readonly heartbeatMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly httpUrl?: string;
}

export const ENROLLMENT_FILE = 'enrollment.json';

/** Reads the enrollment kept in the state directory, if any. Throws CONFIG_INVALID for a damaged file. */
export function readEnrollment(stateDir: string): Enrollment | undefined {
  let text: string;
  try {
    text = readFileSync(join(stateDir, ENROLLMENT_FILE), 'utf8');
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const r = EnrollmentSchema.safeParse(value);
  if (!r.success) throw new GatewayError('CONFIG_INVALID', `${join(stateDir, ENROLLMENT_FILE)} is not an enrollment`);
  return r.data;
}

/** Where to connect: the configuration's [upstream] when present, else what `outpost gateway enroll` recorded. */
function upstreamSettings(config: GatewayConfig, stateDir: string, log: Logger): UpstreamSettings | undefined {
  const c = config.upstream;
  const enrolled = readEnrollment(stateDir);
  if (c) {
    return {
      url: c.url,
      tid: c.tenant,
      tokenFile: c.token_file,
      heartbeatMs: c.heartbeat_s * 1000,
      backoffInitialMs: c.reconnect_initial_s * 1000,
      backoffMaxMs: c.reconnect_max_s * 1000,
      ...(c.http_url ? { httpUrl: c.http_url } : enrolled ? { httpUrl: enrolled.httpUrl } : {}),
    };
  }
  if (!enrolled) {
    log.notice('gateway.not_enrolled', { hint: 'outpost gateway enroll --url URL --token-file -' });
    return undefined;
  }
  return {
    url: enrolled.wssUrl,
    tid: enrolled.tid,
    tokenFile: 'upstream.token',
    heartbeatMs: enrolled.heartbeatMs,
    backoffInitialMs: 1_000,
    backoffMaxMs: 60_000,
    httpUrl: enrolled.httpUrl,
  };
}

/**
 * `outpost gateway enroll`: creates the identity if needed, enrolls with the control plane at `httpUrl` using the
 * enroll token, and keeps the enrollment (0600 enrollment.json) and the runtime token (0600 upstream.token) in the
 * state directory. The radios need not be attached: only their configuration goes into the manifest.
 */
export async function enrollFromConfig(input: {
  readonly config: GatewayConfig;
  readonly configPath: string;
  readonly env: Env;
  readonly httpUrl: string;
  readonly token: string;
  readonly log: Logger;
  readonly ca?: Buffer;
}): Promise<{ did: string; enrollment: Enrollment; path: string }> {
  const stateDir = gatewayStateDir(input.config, input.configPath, input.env);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const key = loadKey({ credential: GATEWAY_CREDENTIAL, filePath: join(stateDir, 'identity.key'), env: input.env });
  const did = didKeyFromEd25519(ed25519KeyPair(key.seed).publicKey);
  const manifest = gatewayManifest({
    did,
    name: input.config.gateway.name,
    agentVersion: buildInfo().version,
    radios: input.config.radio.map((r) =>
      r.kind === 'rnode'
        ? {
            kind: 'rnode' as const,
            params: { ...rnodeParams(r), preambleSymbols: rnodePreambleSymbols(rnodeParams(r)) },
          }
        : { kind: 'meshtastic' as const },
    ),
  });
  const { enrollment, runtimeToken } = await enrollGateway({
    httpUrl: input.httpUrl,
    token: input.token,
    seed: key.seed,
    manifest,
    nowMs: Date.now(),
    ...(input.ca ? { http: { ca: input.ca } } : {}),
  });
  writeFileAtomic(join(stateDir, 'upstream.token'), `${runtimeToken}\n`, { mode: 0o600 });
  const path = join(stateDir, ENROLLMENT_FILE);
  writeFileAtomic(path, `${JSON.stringify(enrollment, null, 2)}\n`, { mode: 0o600 });
  input.log.notice('gateway.enrolled', { device: did, tid: enrollment.tid, wss: enrollment.wssUrl });
  return { did, enrollment, path };
}
