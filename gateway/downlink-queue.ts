// The durable downlink queue: frames the control plane routed to this gateway for one device, kept with an
// expiry and a retry schedule until the control plane says they were delivered (or they expire, or the
// attempts run out). Every state change the control plane has not yet heard of is marked for reporting,
// so delivery states survive restarts and backhaul outages. Times are store time (jump-proof, scaled with
// the gateway's clock in simulations). The served-device list lives here too.

import type { MigrationSet, StoreDatabase } from '../store/database.ts';
import { GatewayError } from './errors.ts';
import type { DeviceStanding } from './uplink-filter.ts';

export const GATEWAY_MIGRATIONS: MigrationSet = {
  component: 'gateway',
  migrations: [
    {
      version: 1,
      name: 'downlink queue and served devices',
      up: `
        CREATE TABLE gateway_downlink (
          id TEXT PRIMARY KEY,                 -- the control plane's downlink id
          short_id TEXT NOT NULL,              -- destination device, 8 lowercase hex
          priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 7),
          frames BLOB NOT NULL,                -- (u16 length ‖ frame) × frame_count
          frame_count INTEGER NOT NULL,
          bytes INTEGER NOT NULL,              -- sum of frame lengths
          received_store_ms INTEGER NOT NULL,
          expires_store_ms INTEGER NOT NULL,
          max_attempts INTEGER NOT NULL,
          attempts INTEGER NOT NULL,
          next_attempt_store_ms INTEGER NOT NULL,
          last_tx_wall_ms INTEGER,
          last_radio TEXT,
          state TEXT NOT NULL CHECK (state IN ('queued', 'transmitted', 'expired', 'failed')),
          reason TEXT,
          report_pending INTEGER NOT NULL      -- 1: the control plane has not been told the current state
        ) STRICT;
        CREATE INDEX gateway_downlink_due ON gateway_downlink (state, priority, next_attempt_store_ms);
        CREATE INDEX gateway_downlink_device ON gateway_downlink (short_id);
        CREATE TABLE gateway_devices (
          short_id TEXT NOT NULL,
          device TEXT NOT NULL,
          standing TEXT NOT NULL CHECK (standing IN ('served', 'revoked')),
          PRIMARY KEY (short_id, device)
        ) STRICT, WITHOUT ROWID;`,
    },
  ],
};

export type DownlinkState = 'queued' | 'transmitted' | 'expired' | 'failed';
export type DownlinkFailure = 'max_attempts' | 'too_large' | 'dwell_time' | 'duty_cycle' | 'out_of_band' | 'no_radio';

export interface DownlinkInput {
  readonly id: string;
  readonly shortIdHex: string;
  readonly priority: number;
  /** 1..16 frames (fragments of one message go together). */
  readonly frames: readonly Uint8Array[];
  /** Time to live from receipt, ms. */
  readonly ttlMs: number;
  readonly maxAttempts: number;
}

export interface DownlinkItem {
  readonly id: string;
  readonly shortIdHex: string;
  readonly priority: number;
  readonly frames: readonly Uint8Array[];
  readonly bytes: number;
  readonly expiresAtStoreMs: number;
  readonly maxAttempts: number;
  readonly attempts: number;
  readonly nextAttemptAtStoreMs: number;
  readonly state: DownlinkState;
  readonly reason?: string;
  readonly lastTxWallMs?: number;
  readonly lastRadio?: string;
}

export interface DownlinkReport {
  readonly id: string;
  readonly state: DownlinkState;
  readonly attempts: number;
  readonly reason?: string;
  readonly lastTxWallMs?: number;
  readonly radio?: string;
}

export interface RetryPolicy {
  /** Wait after the first attempt; doubles per attempt up to retryMaxMs. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

export interface DownlinkStats {
  readonly items: number;
  readonly bytes: number;
  readonly byState: Readonly<Record<DownlinkState, number>>;
  readonly reportsPending: number;
}

export interface DownlinkQueue {
  /** Stores `input` durably; an id already held is left as it is (the control plane may resend). */
  add(input: DownlinkInput): 'added' | 'duplicate';
  /** Items that may be transmitted (queued or transmitted, not expired), by priority, then due time. */
  active(): DownlinkItem[];
  get(id: string): DownlinkItem | undefined;
  /** Records a transmission of every frame of `id` and schedules the next attempt (or fails it). */
  transmitted(id: string, radio: string, policy: RetryPolicy): DownlinkItem | undefined;
  /** Ends `id` as failed with `reason` (reported upstream). */
  fail(id: string, reason: DownlinkFailure): void;
  /** The control plane ended it (delivered, superseded …): delete without reporting. */
  cancel(ids: readonly string[]): number;
  /** Makes every waiting item for `shortIdHex` due now (the device was just heard, so it is listening). */
  deviceHeard(shortIdHex: string): number;
  /** Expires items past their time to live; returns how many. */
  sweep(): number;
  /** States the control plane has not been told, oldest first (at most `max`). */
  pendingReports(max: number): DownlinkReport[];
  /** The control plane has received these reports: clear the flag; terminal items are deleted. */
  reported(reports: readonly DownlinkReport[]): void;
  /** Short ids with active downlink (for beacons). */
  pendingDevices(): string[];
  stats(): DownlinkStats;
}

export const MAX_DOWNLINK_FRAMES = 16;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const SHORT_ID = /^[0-9a-f]{8}$/;

function packFrames(frames: readonly Uint8Array[]): Uint8Array {
  const total = frames.reduce((n, f) => n + 2 + f.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const f of frames) {
    out[at] = f.length >>> 8;
    out[at + 1] = f.length & 0xff;
    out.set(f, at + 2);
    at += 2 + f.length;
  }
  return out;
}

function unpackFrames(blob: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at + 2 <= blob.length) {
    const n = (blob[at]! << 8) | blob[at + 1]!;
    out.push(Uint8Array.from(blob.subarray(at + 2, at + 2 + n)));
    at += 2 + n;
  }
  return out;
}

interface Row {
  id: string;
  short_id: string;
  priority: number;
  frames: Uint8Array;
  bytes: number;
  expires_store_ms: number;
  max_attempts: number;
  attempts: number;
  next_attempt_store_ms: number;
  state: DownlinkState;
  reason: string | null;
  last_tx_wall_ms: number | null;
  last_radio: string | null;
}

function toItem(r: Row): DownlinkItem {
  return {
    id: r.id,
    shortIdHex: r.short_id,
    priority: r.priority,
    frames: unpackFrames(r.frames),
    bytes: r.bytes,
    expiresAtStoreMs: r.expires_store_ms,
    maxAttempts: r.max_attempts,
    attempts: r.attempts,
    nextAttemptAtStoreMs: r.next_attempt_store_ms,
    state: r.state,
    ...(r.reason === null ? {} : { reason: r.reason }),
    ...(r.last_tx_wall_ms === null ? {} : { lastTxWallMs: r.last_tx_wall_ms }),
    ...(r.last_radio === null ? {} : { lastRadio: r.last_radio }),
  };
}

function invalid(message: string): GatewayError {
  return new GatewayError('DOWNLINK_INVALID', message);
}

/** The downlink queue in `db` (which must include GATEWAY_MIGRATIONS). `maxItems` bounds what is held. */
export function createDownlinkQueue(
  db: StoreDatabase,
  options: { readonly maxItems?: number; readonly maxBytes?: number; readonly random?: () => number } = {},
): DownlinkQueue {
  const maxItems = options.maxItems ?? 10_000;
  const maxBytes = options.maxBytes ?? 16 << 20;
  const random = options.random ?? Math.random;
  const sql = db.sqlite;
  const q = {
    insert: sql.prepare(
      `INSERT INTO gateway_downlink (id, short_id, priority, frames, frame_count, bytes, received_store_ms, expires_store_ms,
         max_attempts, attempts, next_attempt_store_ms, state, report_pending)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 'queued', 0) ON CONFLICT (id) DO NOTHING`,
    ),
    totals: sql.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM gateway_downlink'),
    active: sql.prepare(
      `SELECT * FROM gateway_downlink WHERE state IN ('queued', 'transmitted') ORDER BY priority, next_attempt_store_ms, id`,
    ),
    get: sql.prepare('SELECT * FROM gateway_downlink WHERE id = ?'),
    update: sql.prepare(
      `UPDATE gateway_downlink SET attempts = ?, next_attempt_store_ms = ?, last_tx_wall_ms = ?, last_radio = ?, state = ?,
         reason = ?, report_pending = 1 WHERE id = ?`,
    ),
    end: sql.prepare(`UPDATE gateway_downlink SET state = ?, reason = ?, report_pending = 1 WHERE id = ?`),
    delete: sql.prepare('DELETE FROM gateway_downlink WHERE id = ?'),
    heard: sql.prepare(
      `UPDATE gateway_downlink SET next_attempt_store_ms = ? WHERE short_id = ? AND state IN ('queued', 'transmitted')
         AND next_attempt_store_ms > ?`,
    ),
    expire: sql.prepare(
      `UPDATE gateway_downlink SET state = 'expired', reason = NULL, report_pending = 1
         WHERE state IN ('queued', 'transmitted') AND expires_store_ms <= ?`,
    ),
    pending: sql.prepare(
      'SELECT * FROM gateway_downlink WHERE report_pending = 1 ORDER BY received_store_ms, id LIMIT ?',
    ),
    clearReport: sql.prepare(
      'UPDATE gateway_downlink SET report_pending = 0 WHERE id = ? AND state = ? AND attempts = ?',
    ),
    deleteTerminal: sql.prepare(
      `DELETE FROM gateway_downlink WHERE id = ? AND state IN ('expired', 'failed') AND report_pending = 0`,
    ),
    devices: sql.prepare(
      `SELECT DISTINCT short_id FROM gateway_downlink WHERE state IN ('queued', 'transmitted') ORDER BY short_id`,
    ),
    byState: sql.prepare('SELECT state, count(*) AS n FROM gateway_downlink GROUP BY state'),
    reportsPending: sql.prepare('SELECT count(*) FROM gateway_downlink WHERE report_pending = 1').pluck(),
  };

  return {
    add(input) {
      if (typeof input.id !== 'string' || !ID.test(input.id))
        throw invalid('downlink id must be 1..64 base64url characters');
      if (!SHORT_ID.test(input.shortIdHex)) throw invalid('short id must be 8 lowercase hex digits');
      if (!Number.isInteger(input.priority) || input.priority < 0 || input.priority > 7)
        throw invalid('priority is 0..7');
      if (input.frames.length < 1 || input.frames.length > MAX_DOWNLINK_FRAMES) throw invalid('1..16 frames');
      if (input.frames.some((f) => !(f instanceof Uint8Array) || f.length < 1 || f.length > 508)) {
        throw invalid('each frame is 1..508 bytes');
      }
      if (!Number.isSafeInteger(input.ttlMs) || input.ttlMs < 1) throw invalid('ttlMs must be a positive integer');
      if (!Number.isInteger(input.maxAttempts) || input.maxAttempts < 1 || input.maxAttempts > 100) {
        throw invalid('maxAttempts is 1..100');
      }
      const bytes = input.frames.reduce((n, f) => n + f.length, 0);
      return db.write(() => {
        const t = q.totals.get() as { n: number; b: number };
        if (t.n >= maxItems || t.b + bytes > maxBytes) {
          throw new GatewayError('DOWNLINK_INVALID', 'downlink queue is full', { details: { items: t.n, bytes: t.b } });
        }
        const now = db.time.nowMs();
        const r = q.insert.run(
          input.id,
          input.shortIdHex,
          input.priority,
          packFrames(input.frames),
          input.frames.length,
          bytes,
          now,
          now + input.ttlMs,
          input.maxAttempts,
          now,
        );
        return r.changes === 1 ? 'added' : 'duplicate';
      });
    },
    active: () => db.read(() => (q.active.all() as Row[]).map(toItem)),
    get(id) {
      const r = db.read(() => q.get.get(id) as Row | undefined);
      return r ? toItem(r) : undefined;
    },
    transmitted(id, radio, policy) {
      return db.write(() => {
        const r = q.get.get(id) as Row | undefined;
        if (!r || (r.state !== 'queued' && r.state !== 'transmitted')) return undefined;
        const attempts = r.attempts + 1;
        const now = db.time.nowMs();
        const backoff = Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** (attempts - 1));
        // ±20 % jitter so retries for several devices do not line up on the channel.
        const next = Math.round(now + backoff * (0.8 + 0.4 * random()));
        const failed = attempts >= r.max_attempts;
        q.update.run(
          attempts,
          next,
          Math.floor(db.clock.nowMs()),
          radio,
          failed ? 'failed' : 'transmitted',
          failed ? 'max_attempts' : null,
          id,
        );
        return toItem(q.get.get(id) as Row);
      });
    },
    fail(id, reason) {
      db.write(() => q.end.run('failed', reason, id));
    },
    cancel(ids) {
      return db.write(() => ids.reduce((n, id) => n + q.delete.run(id).changes, 0));
    },
    deviceHeard(shortIdHex) {
      const now = db.time.nowMs();
      return db.write(() => q.heard.run(now, shortIdHex, now).changes);
    },
    sweep() {
      const now = db.time.nowMs();
      return db.write(() => q.expire.run(now).changes);
    },
    pendingReports(max) {
      return db.read(() =>
        (q.pending.all(max) as Row[]).map((r) => ({
          id: r.id,
          state: r.state,
          attempts: r.attempts,
          ...(r.reason === null ? {} : { reason: r.reason }),
          ...(r.last_tx_wall_ms === null ? {} : { lastTxWallMs: r.last_tx_wall_ms }),
          ...(r.last_radio === null ? {} : { radio: r.last_radio }),
        })),
      );
    },
    reported(reports) {
      db.write(() => {
        for (const r of reports) {
          // Only when nothing changed since the report was read; else the newer state is still pending.
          q.clearReport.run(r.id, r.state, r.attempts);
          q.deleteTerminal.run(r.id);
        }
      });
    },
    pendingDevices: () => db.read(() => q.devices.all().map((r) => (r as { short_id: string }).short_id)),
    stats() {
      return db.read(() => {
        const t = q.totals.get() as { n: number; b: number };
        const byState: Record<DownlinkState, number> = { queued: 0, transmitted: 0, expired: 0, failed: 0 };
        for (const r of q.byState.all() as { state: DownlinkState; n: number }[]) byState[r.state] = r.n;
        return { items: t.n, bytes: t.b, byState, reportsPending: q.reportsPending.get() as number };
      });
    },
  };
}

/** The served-device list, persisted so a gateway that restarts without backhaul still knows whom it serves. */
export interface DeviceRegistry {
  standing(shortIdHex: string): DeviceStanding;
  /** Replaces the whole list with the control plane's. */
  replace(devices: readonly { shortIdHex: string; device: string; standing: 'served' | 'revoked' }[]): void;
  /** Marks one device revoked (adding it if unknown). */
  revoke(shortIdHex: string, device: string): void;
  list(): { shortIdHex: string; device: string; standing: 'served' | 'revoked' }[];
  counts(): { served: number; revoked: number };
}

export function createDeviceRegistry(db: StoreDatabase): DeviceRegistry {
  const sql = db.sqlite;
  const q = {
    all: sql.prepare('SELECT short_id AS shortIdHex, device, standing FROM gateway_devices ORDER BY short_id, device'),
    clear: sql.prepare('DELETE FROM gateway_devices'),
    put: sql.prepare(
      `INSERT INTO gateway_devices (short_id, device, standing) VALUES (?, ?, ?)
       ON CONFLICT (short_id, device) DO UPDATE SET standing = excluded.standing`,
    ),
  };
  // Lookups happen per received frame: keep a map, rebuilt on every change.
  let cache = new Map<string, DeviceStanding>();
  const rebuild = () => {
    const next = new Map<string, DeviceStanding>();
    for (const r of db.read(() => q.all.all()) as { shortIdHex: string; standing: 'served' | 'revoked' }[]) {
      // Two devices sharing a short id (a 32-bit hint, lora-frames.md §10.6): served wins, the control plane
      // tells them apart by which session authenticates.
      if (next.get(r.shortIdHex) !== 'served') next.set(r.shortIdHex, r.standing);
    }
    cache = next;
  };
  rebuild();
  const check = (shortIdHex: string, device: string) => {
    if (!SHORT_ID.test(shortIdHex)) throw invalid(`bad short id ${JSON.stringify(shortIdHex).slice(0, 20)}`);
    if (typeof device !== 'string' || device.length < 1 || device.length > 128) throw invalid('bad device id');
  };
  return {
    standing: (id) => cache.get(id) ?? 'unknown',
    replace(devices) {
      for (const d of devices) check(d.shortIdHex, d.device);
      db.write(() => {
        q.clear.run();
        for (const d of devices) q.put.run(d.shortIdHex, d.device, d.standing);
      });
      rebuild();
    },
    revoke(shortIdHex, device) {
      check(shortIdHex, device);
      db.write(() => q.put.run(shortIdHex, device, 'revoked'));
      rebuild();
    },
    list: () => db.read(() => q.all.all()) as { shortIdHex: string; device: string; standing: 'served' | 'revoked' }[],
    counts() {
      let served = 0;
      let revoked = 0;
      for (const s of cache.values()) {
        if (s === 'served') served++;
        else revoked++;
      }
      return { served, revoked };
    },
  };
}
