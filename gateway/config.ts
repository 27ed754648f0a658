// The gateway's configuration file (TOML, /etc/outpost/gateway.toml under systemd): its schema and parsing.
// Every table is strict (an unknown key is an error, never ignored); units are in the key names.

import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { GatewayError } from './errors.ts';

/** Manifest device label rule (manifest.md §2). */
const DEVICE_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
/** Radio names become label values and stream words: lowercase words. */
const RADIO_NAME = /^[a-z][a-z0-9_]{0,31}$/;

const Region = z.enum(['EU868', 'US915', 'ANY']);

const RNodeRadio = z.strictObject({
  name: z.string().regex(RADIO_NAME, 'radio names are lowercase words of 1..32 characters'),
  kind: z.literal('rnode'),
  /** Prefer /dev/serial/by-id/…: the name survives replugging and reboots. */
  path: z.string().min(1).max(4096),
  region: Region,
  frequency_hz: z.int().min(137_000_000).max(3_000_000_000),
  bandwidth_hz: z.int().min(7_800).max(1_625_000),
  spreading_factor: z.int().min(5).max(12),
  /** Denominator 5..8 of the coding rate 4/5..4/8. */
  coding_rate: z.int().min(5).max(8).default(5),
  tx_power_dbm: z.int().min(0).max(37),
  /** On-device airtime locks (RNode CMD_ST_ALOCK/CMD_LT_ALOCK), percent; off when absent. */
  airtime_limit_short_percent: z.number().min(0).max(100).optional(),
  airtime_limit_long_percent: z.number().min(0).max(100).optional(),
});

const MeshtasticRadio = z.strictObject({
  name: z.string().regex(RADIO_NAME, 'radio names are lowercase words of 1..32 characters'),
  kind: z.literal('meshtastic'),
  path: z.string().min(1).max(4096),
  /** Channel index 0..7 (default 0, the primary channel). */
  channel: z.int().min(0).max(7).default(0),
  /** Private application port 256..511 our frames travel on (default 256, PRIVATE_APP). */
  portnum: z.int().min(256).max(511).default(256),
});

export const GatewayConfigSchema = z.strictObject({
  gateway: z.strictObject({
    /** The gateway's name in its manifest: lowercase letters, digits, inner hyphens, 1..32. */
    name: z.string().regex(DEVICE_LABEL, 'names are lowercase letters, digits and inner hyphens, 1..32 characters'),
    /** Where the identity, token and database live; default $STATE_DIRECTORY (systemd StateDirectory=). */
    state_dir: z.string().min(1).optional(),
    log_level: z.enum(['debug', 'info', 'notice', 'warning', 'error']).default('info'),
  }),
  upstream: z
    .strictObject({
      /** The control plane's WebSocket URL (wss://…; ws:// only to 127.0.0.1 for development). */
      url: z.string().regex(/^wss?:\/\/[^\s]+$/, 'a ws:// or wss:// URL'),
      /** Tenant id (lowercase UUID). */
      tenant: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a lowercase UUID'),
      /** The control plane's HTTP API (https://…): lets the gateway renew an expired token by itself. */
      http_url: z
        .string()
        .regex(/^https?:\/\/[^\s]+$/, 'an http:// or https:// URL')
        .optional(),
      /** The runtime token, relative to the state directory; written at enrollment, rewritten on refresh. */
      token_file: z.string().min(1).default('upstream.token'),
      /** PEM bundle of the CA that signed the control plane's certificate (default: the system's). */
      ca_file: z.string().min(1).optional(),
      heartbeat_s: z.number().min(1).max(300).default(30),
      /** Frames per lora.uplink envelope. */
      batch_frames: z.int().min(1).max(64).default(32),
      /** After an outage, replay stored frames no faster than this. */
      replay_frames_per_s: z.number().min(0.1).max(10_000).default(50),
      reconnect_initial_s: z.number().min(0.01).max(600).default(1),
      reconnect_max_s: z.number().min(0.01).max(3600).default(60),
    })
    .optional(),
  radio: z
    .array(z.discriminatedUnion('kind', [RNodeRadio, MeshtasticRadio]))
    .min(1)
    .max(8),
  store: z
    .strictObject({
      /** Cap on stored uplink frames; the lowest priority (heartbeats, then telemetry) is dropped first. */
      max_mb: z
        .number()
        .min(1)
        .max(64 * 1024)
        .default(64),
      max_age_days: z.number().min(0.001).max(365).default(7),
      downlink_max_items: z.int().min(1).max(1_000_000).default(10_000),
    })
    .default({ max_mb: 64, max_age_days: 7, downlink_max_items: 10_000 }),
  checks: z
    .strictObject({
      /** The same (short id, seq) heard again within this is dropped. */
      dedup_window_s: z.number().min(1).max(86_400).default(600),
      /** Per served device: sustained rate and burst of frames accepted. */
      device_frames_per_min: z.number().min(0.1).max(6_000).default(12),
      device_burst: z.int().min(1).max(10_000).default(32),
    })
    .default({ dedup_window_s: 600, device_frames_per_min: 12, device_burst: 32 }),
  downlink: z
    .strictObject({
      retry_initial_s: z.number().min(0.01).max(86_400).default(10),
      retry_max_s: z.number().min(0.01).max(86_400).default(300),
      /** Broadcast a beacon (lora-frames.md §4.9) this often, 0 = never. */
      beacon_interval_s: z.number().min(0).max(86_400).default(0),
    })
    .default({ retry_initial_s: 10, retry_max_s: 300, beacon_interval_s: 0 }),
  api: z
    .strictObject({
      /** The local API's unix socket; relative paths are under $RUNTIME_DIRECTORY (else the state directory). */
      socket: z.string().min(1).default('gateway.sock'),
      /** Prometheus metrics on http://HOST:PORT/metrics, e.g. "127.0.0.1:9466"; absent = only on the socket. */
      metrics_listen: z
        .string()
        .regex(/^(127\.0\.0\.1|\[::1\]|localhost|0\.0\.0\.0|[0-9.]+):[0-9]{1,5}$/, 'HOST:PORT')
        .optional(),
    })
    .default({ socket: 'gateway.sock' }),
  simulation: z
    .strictObject({
      /**
       * Only for emulated radios on a simulated air that runs N× faster (`outpost radio sim --time-scale N`):
       * the gateway's clock, timers and airtime accounting run N× faster too. Never set this with real radios.
       */
      time_scale: z.number().min(1).max(100_000).default(1),
    })
    .default({ time_scale: 1 }),
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type RadioConfig = GatewayConfig['radio'][number];

function issuePath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

/** Parses and validates configuration text. Throws CONFIG_INVALID naming the file, the key and the rule. */
export function parseGatewayConfig(text: string, source = 'gateway.toml'): GatewayConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    const where = e instanceof TomlError ? `:${e.line}:${e.column}` : '';
    throw new GatewayError('CONFIG_INVALID', `${source}${where}: ${(e as Error).message.split('\n')[0]}`, {
      cause: e,
    });
  }
  const r = GatewayConfigSchema.safeParse(raw);
  if (!r.success) {
    const problems = r.error.issues.slice(0, 8).map((i) => `${issuePath(i.path) || '(top level)'}: ${i.message}`);
    throw new GatewayError('CONFIG_INVALID', `${source}: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  const names = r.data.radio.map((x) => x.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new GatewayError('CONFIG_INVALID', `${source}: radio name ${dup} is used twice`);
  const paths = r.data.radio.map((x) => x.path);
  const dupPath = paths.find((p, i) => paths.indexOf(p) !== i);
  if (dupPath) throw new GatewayError('CONFIG_INVALID', `${source}: ${dupPath} is configured twice`);
  if (r.data.upstream && r.data.upstream.reconnect_max_s < r.data.upstream.reconnect_initial_s) {
    throw new GatewayError('CONFIG_INVALID', `${source}: upstream.reconnect_max_s is below reconnect_initial_s`);
  }
  return r.data;
}
