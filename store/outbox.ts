// The durable outbox: append is on stable storage before it returns; items leave only by ack (after a
// lease, for at-least-once sending) or by a counted drop (TTL, age cap, byte/item cap, undecryptable).
// Payloads are sealed with ChaCha20-Poly1305 bound to (queue, stream, seq, row id). docs/store.md §Outbox.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { concatBytes, utf8 } from '../protocol/bytes.ts';
import type { MigrationSet, StoreDatabase } from './database.ts';
import { StoreError, shown } from './errors.ts';

export const OUTBOX_MIGRATIONS: MigrationSet = {
  component: 'outbox',
  migrations: [
    {
      version: 1,
      name: 'outbox queues, streams, items, drops',
      up: `
        CREATE TABLE outbox_queues (
          queue TEXT PRIMARY KEY,
          salt BLOB NOT NULL,       -- 16 random bytes: HKDF salt of this queue's sealing key
          key_check BLOB NOT NULL   -- a constant sealed at creation: a wrong key is refused at open
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE outbox_ids (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          next_id INTEGER NOT NULL  -- next row id; never decreases, so committed rows never share a nonce
        ) STRICT;
        INSERT INTO outbox_ids (id, next_id) VALUES (1, 1);
        CREATE TABLE outbox_streams (
          queue TEXT NOT NULL REFERENCES outbox_queues (queue),
          stream TEXT NOT NULL,
          next_seq INTEGER NOT NULL,  -- never decreases: a seq is never reused, even after its row left
          items INTEGER NOT NULL,     -- running totals, kept in the same transactions as the rows
          bytes INTEGER NOT NULL,
          PRIMARY KEY (queue, stream)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE outbox_items (
          id INTEGER PRIMARY KEY,           -- append order; first 8 bytes of the AEAD nonce
          queue TEXT NOT NULL,
          stream TEXT NOT NULL,
          seq INTEGER NOT NULL,
          priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 7),
          created_store_ms INTEGER NOT NULL,
          created_wall_ms INTEGER NOT NULL,
          expires_store_ms INTEGER,         -- NULL: no TTL
          bytes INTEGER NOT NULL,           -- plaintext payload length
          sealed BLOB NOT NULL,             -- nonce tail (4 B) || ciphertext || tag (16 B)
          FOREIGN KEY (queue, stream) REFERENCES outbox_streams (queue, stream)
        ) STRICT;
        CREATE UNIQUE INDEX outbox_items_seq ON outbox_items (queue, stream, seq);
        CREATE INDEX outbox_items_order ON outbox_items (queue, priority, id);
        CREATE INDEX outbox_items_created ON outbox_items (queue, created_store_ms);
        CREATE INDEX outbox_items_expiry ON outbox_items (queue, expires_store_ms) WHERE expires_store_ms IS NOT NULL;
        CREATE TABLE outbox_drops (
          queue TEXT NOT NULL,
          stream TEXT NOT NULL,
          reason TEXT NOT NULL,
          items INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          PRIMARY KEY (queue, stream, reason)
        ) STRICT, WITHOUT ROWID;`,
    },
  ],
};

/** Per-stream policy. Priority 0 is the most urgent: leased first, dropped last; 7 the least. */
export interface StreamPolicy {
  priority?: number;
  /** Items older than this (in store time) are dropped with reason `ttl`; absent = no TTL. */
  ttlMs?: number;
}

export interface OutboxOptions {
  /** Sealing key from the caller (32 bytes; the agent derives it from its identity with HKDF). */
  key: Uint8Array;
  /** Name of this queue in the file (default `outbox`); a gateway keeps `uplink` and `downlink` side by side. */
  queue?: string;
  streams?: Readonly<Record<string, StreamPolicy>>;
  /** Policy of streams not named in `streams` (default priority 4, no TTL). */
  defaultPolicy?: StreamPolicy;
  /** Cap on the sum of payload bytes (default 64 MiB). */
  maxBytes?: number;
  /** Cap on the number of items (default 1,000,000). */
  maxItems?: number;
  /** Items older than this (store time) are dropped with reason `max_age` (default 30 days). */
  maxAgeMs?: number;
  /** Largest single payload (default 256 KiB). */
  maxItemBytes?: number;
  /** Group commit: at most this many items per coalesced transaction (default 4096). */
  maxBatchItems?: number;
  /** Called after each transaction that dropped items, once per (stream, reason). */
  onDrop?: (drop: DropCount) => void;
}

/** An item to append: the payload, or a function that builds it from the seq it is given (to sign the seq in). */
export type OutboxInput =
  | { readonly stream: string; readonly payload: Uint8Array }
  | { readonly stream: string; readonly build: (seq: number) => Uint8Array };

export interface AppendedItem {
  readonly stream: string;
  /** Assigned by the outbox: 1, 2, 3 … per stream, never reused. */
  readonly seq: number;
  readonly bytes: number;
}

export interface OutboxItem {
  readonly stream: string;
  readonly seq: number;
  readonly priority: number;
  readonly payload: Uint8Array;
  readonly createdWallMs: number;
  /** Observed age in ms (store time, jump-proof). */
  readonly ageMs: number;
}

export interface Lease {
  readonly id: number;
  readonly items: readonly OutboxItem[];
  /** Store time at which the lease lapses and its items can be leased again. */
  readonly expiresAtStoreMs: number;
}

/** An inclusive range of seqs of one stream. */
export interface SeqRange {
  readonly stream: string;
  readonly from: number;
  readonly to: number;
}

export type DropReason = 'ttl' | 'max_age' | 'max_bytes' | 'max_items' | 'undecryptable';
export const DROP_REASONS: readonly DropReason[] = ['ttl', 'max_age', 'max_bytes', 'max_items', 'undecryptable'];

export interface DropCount {
  readonly stream: string;
  readonly reason: DropReason;
  readonly items: number;
  readonly bytes: number;
}

export interface OutboxStats {
  readonly queue: string;
  readonly items: number;
  readonly bytes: number;
  readonly leasedItems: number;
  /** Age of the oldest item (store time), or null when empty. */
  readonly oldestAgeMs: number | null;
  readonly streams: Readonly<Record<string, { items: number; bytes: number; nextSeq: number }>>;
  /** Persisted drop counters since the queue was created. */
  readonly drops: readonly DropCount[];
  readonly dropsByReason: Readonly<Record<DropReason, number>>;
}

export interface Outbox {
  readonly queue: string;
  /**
   * Appends `items` in one transaction, durable (fsynced) before it returns; then enforces the caps,
   * which may drop older lower-priority items — or a new item itself when it is the lowest. Throws
   * STORE_BAD_ARGUMENT, STORE_ITEM_TOO_LARGE, STORE_DISK_FULL, STORE_IO, or what a `build` throws;
   * on a throw nothing of the call is stored and payloads it built must be discarded.
   */
  append(items: readonly OutboxInput[]): AppendedItem[];
  /** Like `append`, but coalesces the calls made in one event-loop turn into one transaction (group commit). */
  appendGrouped(items: readonly OutboxInput[]): Promise<AppendedItem[]>;
  /** Commits pending grouped appends now. */
  flush(): void;
  /**
   * Leases up to `maxItems` items / `maxBytes` payload bytes (at least one item when any is free) in
   * priority then append order, skipping items held by unexpired leases, for `leaseMs` of store time.
   */
  lease(maxItems: number, maxBytes: number, leaseMs: number): Lease;
  /** Deletes the items in `ranges` (leased or not); durable before it returns. */
  ack(ranges: readonly SeqRange[]): { items: number; bytes: number };
  /** Returns leased items in `ranges` to the queue at once; returns how many were released. */
  nack(ranges: readonly SeqRange[]): number;
  /** Returns every item of a lease to the queue; returns how many were released. */
  release(leaseId: number): number;
  /** Drops items past their TTL or the age cap now; returns how many. (append and lease also do this.) */
  sweep(): number;
  stats(): OutboxStats;
  /** Commits pending grouped appends and forgets leases. The database stays open. */
  close(): void;
}

export const OUTBOX_KEY_BYTES = 32;
export const MAX_ACK_RANGES = 4096;
const HKDF_INFO = utf8('outpost/outbox-at-rest/v1');
const AAD_LABEL = utf8('outpost/outbox-row/v1\u0000');
const KEY_CHECK_PLAINTEXT = utf8('outpost outbox key check v1');
const TAG_BYTES = 16;
const NONCE_TAIL_BYTES = 4;
const NAME = /^[\x21-\x7e]{1,128}$/;
const APPEND_SWEEP_EVERY_MS = 1000;

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new StoreError('STORE_BAD_ARGUMENT', `${what} must be 1–128 printable ASCII characters`);
  }
  return value;
}

function checkCount(value: number, what: string, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new StoreError('STORE_BAD_ARGUMENT', `${what} must be an integer ≥ ${min}, got ${shown(value)}`);
  }
  return value;
}

function checkPolicy(p: StreamPolicy, what: string): { priority: number; ttlMs: number | undefined } {
  const priority = p.priority ?? 4;
  if (!Number.isInteger(priority) || priority < 0 || priority > 7) {
    throw new StoreError('STORE_BAD_ARGUMENT', `${what}: priority must be 0..7`);
  }
  if (p.ttlMs !== undefined) checkCount(p.ttlMs, `${what}: ttlMs`);
  return { priority, ttlMs: p.ttlMs };
}

/** Writes `n` (a safe integer ≥ 0) big-endian into 8 bytes of `out` at `at`. */
function putU64(out: Uint8Array, at: number, n: number): void {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n >>> 0;
  out[at] = hi >>> 24;
  out[at + 1] = (hi >>> 16) & 0xff;
  out[at + 2] = (hi >>> 8) & 0xff;
  out[at + 3] = hi & 0xff;
  out[at + 4] = lo >>> 24;
  out[at + 5] = (lo >>> 16) & 0xff;
  out[at + 6] = (lo >>> 8) & 0xff;
  out[at + 7] = lo & 0xff;
}

function u16(n: number): Uint8Array {
  return new Uint8Array([n >> 8, n & 0xff]);
}

/** The part of a row's associated data that only depends on its queue and stream. */
function placeBytes(queue: string, stream: string): Uint8Array {
  const q = utf8(queue);
  const s = utf8(stream);
  return concatBytes(u16(q.length), q, u16(s.length), s);
}

/**
 * Associated data of a row: label || id (u64) || seq (u64) || u16 len || queue || u16 len || stream.
 * Binds the ciphertext to where it sits, so rows cannot be swapped or moved.
 */
export function rowAssociatedData(
  queue: string,
  stream: string,
  seq: number,
  id: number,
  place = placeBytes(queue, stream),
): Uint8Array {
  const out = new Uint8Array(AAD_LABEL.length + 16 + place.length);
  out.set(AAD_LABEL, 0);
  putU64(out, AAD_LABEL.length, id);
  putU64(out, AAD_LABEL.length + 8, seq);
  out.set(place, AAD_LABEL.length + 16);
  return out;
}

function nonceFor(id: number, tail: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(8 + NONCE_TAIL_BYTES);
  putU64(nonce, 0, id);
  nonce.set(tail, 8);
  return nonce;
}

function seal(key: Uint8Array, id: number, aad: Uint8Array, plaintext: Uint8Array, tail: Uint8Array): Uint8Array {
  const nonce = nonceFor(id, tail);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const ct = cipher.update(plaintext);
  cipher.final();
  return concatBytes(tail, ct, cipher.getAuthTag());
}

/** The plaintext, or undefined when the row fails authentication. */
function open(key: Uint8Array, id: number, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < NONCE_TAIL_BYTES + TAG_BYTES) return undefined;
  const nonce = nonceFor(id, sealed.subarray(0, NONCE_TAIL_BYTES));
  const ct = sealed.subarray(NONCE_TAIL_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad, { plaintextLength: ct.length });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const pt = decipher.update(ct);
    decipher.final();
    return new Uint8Array(pt);
  } catch {
    return undefined; // authentication failed: the caller counts and drops the row
  }
}

interface Row {
  id: number;
  stream: string;
  seq: number;
  priority: number;
  bytes: number;
  created_store_ms: number;
  created_wall_ms: number;
  sealed: Uint8Array;
}

interface Dropped {
  id: number;
  stream: string;
  bytes: number;
}

/** Creates (or reopens) the queue `options.queue` in `db`, which must include OUTBOX_MIGRATIONS. */
export function createOutbox(db: StoreDatabase, options: OutboxOptions): Outbox {
  const queue = checkName(options.queue ?? 'outbox', 'queue');
  if (!(options.key instanceof Uint8Array) || options.key.length !== OUTBOX_KEY_BYTES) {
    throw new StoreError('STORE_KEY_INVALID', `outbox key must be ${OUTBOX_KEY_BYTES} bytes`);
  }
  const defaultPolicy = checkPolicy(options.defaultPolicy ?? {}, 'defaultPolicy');
  const policies = new Map<string, { priority: number; ttlMs: number | undefined }>();
  for (const [stream, p] of Object.entries(options.streams ?? {})) {
    policies.set(checkName(stream, 'stream'), checkPolicy(p, `stream ${stream}`));
  }
  const maxBytes = checkCount(options.maxBytes ?? 64 << 20, 'maxBytes');
  const maxItems = checkCount(options.maxItems ?? 1_000_000, 'maxItems');
  const maxAgeMs = checkCount(options.maxAgeMs ?? 30 * 24 * 3600 * 1000, 'maxAgeMs');
  const maxItemBytes = Math.min(checkCount(options.maxItemBytes ?? 256 << 10, 'maxItemBytes'), maxBytes);
  const maxBatchItems = checkCount(options.maxBatchItems ?? 4096, 'maxBatchItems');
  const sql = db.sqlite;
  const log = db.log.child({ queue });

  const q = {
    queueRow: sql.prepare('SELECT salt, key_check AS keyCheck FROM outbox_queues WHERE queue = ?'),
    insertQueue: sql.prepare('INSERT INTO outbox_queues (queue, salt, key_check) VALUES (?, ?, ?)'),
    nextId: sql.prepare('SELECT next_id AS n FROM outbox_ids WHERE id = 1').pluck(),
    setNextId: sql.prepare('UPDATE outbox_ids SET next_id = ? WHERE id = 1'),
    stream: sql.prepare('SELECT next_seq AS nextSeq FROM outbox_streams WHERE queue = ? AND stream = ?'),
    insertStream: sql.prepare(
      'INSERT INTO outbox_streams (queue, stream, next_seq, items, bytes) VALUES (?, ?, 1, 0, 0)',
    ),
    bumpStream: sql.prepare(
      'UPDATE outbox_streams SET next_seq = ?, items = items + ?, bytes = bytes + ? WHERE queue = ? AND stream = ?',
    ),
    shrinkStream: sql.prepare(
      'UPDATE outbox_streams SET items = items - ?, bytes = bytes - ? WHERE queue = ? AND stream = ?',
    ),
    insertItem: sql.prepare(
      `INSERT INTO outbox_items (id, queue, stream, seq, priority, created_store_ms, created_wall_ms, expires_store_ms, bytes, sealed)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    totals: sql.prepare(
      'SELECT coalesce(sum(items), 0) AS items, coalesce(sum(bytes), 0) AS bytes FROM outbox_streams WHERE queue = ?',
    ),
    victims: sql.prepare('SELECT id, stream, bytes FROM outbox_items WHERE queue = ? AND priority = ? ORDER BY id'),
    deleteId: sql.prepare('DELETE FROM outbox_items WHERE id = ?'),
    anyExpired: sql.prepare('SELECT 1 FROM outbox_items WHERE queue = ? AND expires_store_ms <= ? LIMIT 1'),
    oldest: sql.prepare('SELECT min(created_store_ms) FROM outbox_items WHERE queue = ?').pluck(),
    deleteExpired: sql.prepare(
      'DELETE FROM outbox_items WHERE queue = ? AND expires_store_ms <= ? RETURNING id, stream, bytes',
    ),
    deleteAged: sql.prepare(
      'DELETE FROM outbox_items WHERE queue = ? AND created_store_ms <= ? RETURNING id, stream, bytes',
    ),
    deleteRange: sql.prepare(
      'DELETE FROM outbox_items WHERE queue = ? AND stream = ? AND seq BETWEEN ? AND ? RETURNING id, stream, bytes',
    ),
    rangeIds: sql.prepare('SELECT id FROM outbox_items WHERE queue = ? AND stream = ? AND seq BETWEEN ? AND ?').pluck(),
    countDrop: sql.prepare(
      `INSERT INTO outbox_drops (queue, stream, reason, items, bytes) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (queue, stream, reason) DO UPDATE SET items = items + excluded.items, bytes = bytes + excluded.bytes`,
    ),
    inOrder: sql.prepare(
      `SELECT id, stream, seq, priority, bytes, created_store_ms, created_wall_ms, sealed
       FROM outbox_items WHERE queue = ? ORDER BY priority, id`,
    ),
    streams: sql.prepare('SELECT stream, items, bytes, next_seq AS nextSeq FROM outbox_streams WHERE queue = ?'),
    drops: sql.prepare('SELECT stream, reason, items, bytes FROM outbox_drops WHERE queue = ? ORDER BY stream, reason'),
  };

  // The sealing key: HKDF of the caller's key with this queue's random salt, so a recreated file never
  // reuses (key, nonce) pairs of an older one.
  const checkAad = rowAssociatedData(queue, '', 0, 0);
  const readQueue = () => q.queueRow.get(queue) as { salt: Uint8Array; keyCheck: Uint8Array } | undefined;
  // Read first, so that a read-only handle (stats from the CLI) can open an existing queue.
  let row = db.read(readQueue);
  if (!row) {
    row = db.write(() => {
      const existing = readQueue(); // another process may have created it meanwhile
      if (existing) return existing;
      const salt = randomBytes(16);
      const k = new Uint8Array(hkdfSync('sha256', options.key, salt, HKDF_INFO, 32));
      const keyCheck = seal(k, 0, checkAad, KEY_CHECK_PLAINTEXT, randomBytes(NONCE_TAIL_BYTES));
      q.insertQueue.run(queue, salt, keyCheck);
      return { salt, keyCheck };
    });
  }
  const key = new Uint8Array(hkdfSync('sha256', options.key, row.salt, HKDF_INFO, 32));
  if (open(key, 0, checkAad, row.keyCheck) === undefined) {
    throw new StoreError(
      'STORE_KEY_MISMATCH',
      `outbox ${queue} in ${db.path} was sealed with a different key (did the identity change?); its items cannot be read. Move the file aside to start empty.`,
      { details: { path: db.path, queue } },
    );
  }

  // Per-stream constant part of the associated data (bounded: streams are few, and capped here anyway).
  const places = new Map<string, Uint8Array>();
  const place = (stream: string): Uint8Array => {
    let p = places.get(stream);
    if (!p) {
      if (places.size >= 1024) places.clear();
      p = placeBytes(queue, stream);
      places.set(stream, p);
    }
    return p;
  };

  // Nonce tails come from a pool refilled from the CSPRNG: one syscall per 1024 rows instead of per row.
  let pool = new Uint8Array(0);
  let poolAt = 0;
  const nonceTail = (): Uint8Array => {
    if (poolAt + NONCE_TAIL_BYTES > pool.length) {
      pool = new Uint8Array(randomBytes(NONCE_TAIL_BYTES * 1024));
      poolAt = 0;
    }
    poolAt += NONCE_TAIL_BYTES;
    return pool.subarray(poolAt - NONCE_TAIL_BYTES, poolAt);
  };

  // Leases live in memory: a crashed sender's leases die with it and its items are free again at restart.
  const leasedBy = new Map<number, number>(); // row id → lease id
  const leases = new Map<number, { ids: Set<number>; expiresAt: number }>();
  let nextLeaseId = 1;

  const forget = (ids: Iterable<number>) => {
    for (const id of ids) {
      const leaseId = leasedBy.get(id);
      if (leaseId === undefined) continue;
      leasedBy.delete(id);
      leases.get(leaseId)?.ids.delete(id);
    }
  };

  const expireLeases = (now: number) => {
    for (const [leaseId, lease] of leases) {
      if (lease.expiresAt > now) continue;
      for (const id of lease.ids) leasedBy.delete(id);
      leases.delete(leaseId);
    }
  };

  /** Accounts removed rows: stream totals, persisted drop counters, leases. Inside a transaction. */
  const account = (rows: readonly Dropped[], reason: DropReason | undefined, drops: DropCount[]) => {
    const perStream = new Map<string, { items: number; bytes: number }>();
    for (const r of rows) {
      const s = perStream.get(r.stream) ?? { items: 0, bytes: 0 };
      s.items++;
      s.bytes += r.bytes;
      perStream.set(r.stream, s);
    }
    for (const [stream, s] of perStream) {
      q.shrinkStream.run(s.items, s.bytes, queue, stream);
      if (reason) {
        q.countDrop.run(queue, stream, reason, s.items, s.bytes);
        drops.push({ stream, reason, items: s.items, bytes: s.bytes });
      }
    }
    forget(rows.map((r) => r.id));
  };

  const sweepInTx = (now: number, drops: DropCount[]): number => {
    const expired = q.deleteExpired.all(queue, now) as Dropped[];
    account(expired, 'ttl', drops);
    const aged = q.deleteAged.all(queue, now - maxAgeMs) as Dropped[];
    account(aged, 'max_age', drops);
    return expired.length + aged.length;
  };

  // Appends sweep at most once per second of store time (lease always sweeps, so nothing expired is
  // ever handed out); the sweep on append only frees space a little earlier.
  let lastAppendSweep = Number.NEGATIVE_INFINITY;
  const sweepOnAppend = (now: number, drops: DropCount[]) => {
    if (now - lastAppendSweep < APPEND_SWEEP_EVERY_MS) return;
    sweepInTx(now, drops);
    lastAppendSweep = now;
  };

  const needsSweep = (now: number): boolean => {
    if (q.anyExpired.get(queue, now)) return true;
    const oldest = q.oldest.get(queue) as number | null;
    return oldest !== null && oldest <= now - maxAgeMs;
  };

  /** Drops lowest-priority, oldest items until the caps hold. Inside a transaction. */
  const enforceCaps = (drops: DropCount[]) => {
    const totals = q.totals.get(queue) as { items: number; bytes: number };
    let overBytes = totals.bytes - maxBytes;
    let overItems = totals.items - maxItems;
    if (overBytes <= 0 && overItems <= 0) return;
    const byBytes: Dropped[] = [];
    const byItems: Dropped[] = [];
    for (let priority = 7; priority >= 0 && (overBytes > 0 || overItems > 0); priority--) {
      for (const v of q.victims.iterate(queue, priority) as IterableIterator<Dropped>) {
        (overBytes > 0 ? byBytes : byItems).push(v);
        overBytes -= v.bytes;
        overItems--;
        if (overBytes <= 0 && overItems <= 0) break;
      }
    }
    for (const v of [...byBytes, ...byItems]) q.deleteId.run(v.id);
    account(byBytes, 'max_bytes', drops);
    account(byItems, 'max_items', drops);
  };

  const notify = (drops: readonly DropCount[]) => {
    for (const d of drops) {
      log.debug('outbox.dropped', { ...d });
      options.onDrop?.(d);
    }
  };

  const validate = (items: readonly OutboxInput[]) => {
    if (!Array.isArray(items)) throw new StoreError('STORE_BAD_ARGUMENT', 'append takes an array of items');
    for (const item of items) {
      checkName(item?.stream, 'stream');
      if ('payload' in item) {
        if (!(item.payload instanceof Uint8Array))
          throw new StoreError('STORE_BAD_ARGUMENT', 'payload must be a Uint8Array');
        checkSize(item.payload.length, item.stream);
      } else if (typeof (item as { build?: unknown }).build !== 'function') {
        throw new StoreError('STORE_BAD_ARGUMENT', 'an item needs a payload or a build function');
      }
    }
  };

  const checkSize = (bytes: number, stream: string) => {
    if (bytes > maxItemBytes) {
      throw new StoreError(
        'STORE_ITEM_TOO_LARGE',
        `item of ${bytes} bytes on stream ${stream} exceeds ${maxItemBytes}`,
        {
          details: { stream, bytes, maxItemBytes },
        },
      );
    }
  };

  /** Inserts validated items. Inside a transaction. */
  const insertInTx = (items: readonly OutboxInput[], now: number, wall: number, drops: DropCount[]): AppendedItem[] => {
    const out: AppendedItem[] = [];
    let nextId = q.nextId.get() as number;
    const streamState = new Map<string, { nextSeq: number; items: number; bytes: number }>();
    for (const item of items) {
      let s = streamState.get(item.stream);
      if (!s) {
        let row = q.stream.get(queue, item.stream) as { nextSeq: number } | undefined;
        if (!row) {
          q.insertStream.run(queue, item.stream);
          row = { nextSeq: 1 };
        }
        s = { nextSeq: row.nextSeq, items: 0, bytes: 0 };
        streamState.set(item.stream, s);
      }
      const seq = s.nextSeq++;
      const payload = 'payload' in item ? item.payload : item.build(seq);
      if (!(payload instanceof Uint8Array))
        throw new StoreError('STORE_BAD_ARGUMENT', 'build must return a Uint8Array');
      checkSize(payload.length, item.stream);
      const policy = policies.get(item.stream) ?? defaultPolicy;
      const id = nextId++;
      const sealed = seal(
        key,
        id,
        rowAssociatedData(queue, item.stream, seq, id, place(item.stream)),
        payload,
        nonceTail(),
      );
      const expires = policy.ttlMs === undefined ? null : now + policy.ttlMs;
      q.insertItem.run(id, queue, item.stream, seq, policy.priority, now, wall, expires, payload.length, sealed);
      s.items++;
      s.bytes += payload.length;
      out.push({ stream: item.stream, seq, bytes: payload.length });
    }
    q.setNextId.run(nextId);
    for (const [stream, s] of streamState) q.bumpStream.run(s.nextSeq, s.items, s.bytes, queue, stream);
    enforceCaps(drops);
    return out;
  };

  const append = (items: readonly OutboxInput[]): AppendedItem[] => {
    validate(items);
    const drops: DropCount[] = [];
    const out = db.write(() => {
      const now = db.time.nowMs();
      sweepOnAppend(now, drops);
      return insertInTx(items, now, Math.floor(db.clock.nowMs()), drops);
    });
    notify(drops);
    return out;
  };

  // Group commit: calls made in one event-loop turn share one transaction (one fsync); each call runs
  // in its own savepoint so one bad call fails alone.
  let pending: { items: readonly OutboxInput[]; resolve: (v: AppendedItem[]) => void; reject: (e: unknown) => void }[] =
    [];
  let scheduled = false;

  const flush = () => {
    while (pending.length > 0) {
      let count = 0;
      let take = 0;
      while (take < pending.length && (take === 0 || count + pending[take]!.items.length <= maxBatchItems)) {
        count += pending[take]!.items.length;
        take++;
      }
      const batch = pending.slice(0, take);
      pending = pending.slice(take);
      const results: (AppendedItem[] | undefined)[] = [];
      const errors: unknown[] = [];
      const drops: DropCount[] = [];
      try {
        db.write(() => {
          const now = db.time.nowMs();
          const wall = Math.floor(db.clock.nowMs());
          sweepOnAppend(now, drops);
          // Fast path: the whole batch in one savepoint. Only if some call fails are the calls replayed
          // one savepoint each, so that the failing call fails alone.
          const swept = drops.length;
          try {
            const all = db.write(() =>
              insertInTx(
                batch.flatMap((entry) => entry.items),
                now,
                wall,
                drops,
              ),
            );
            let at = 0;
            batch.forEach((entry, i) => {
              results[i] = all.slice(at, at + entry.items.length);
              at += entry.items.length;
            });
            return;
          } catch (e) {
            if (!db.sqlite.inTransaction) throw e;
            drops.length = swept; // the savepoint rolled back whatever the batch dropped
          }
          batch.forEach((entry, i) => {
            const mark = drops.length;
            try {
              results[i] = db.write(() => insertInTx(entry.items, now, wall, drops));
            } catch (e) {
              // After SQLITE_FULL or an I/O error SQLite may have rolled back the whole transaction: then
              // every call of the batch fails, rather than later calls running outside a transaction.
              if (!db.sqlite.inTransaction) throw e;
              drops.length = mark; // the savepoint rolled those drops back
              errors[i] = e;
            }
          });
        });
      } catch (e) {
        for (const entry of batch) entry.reject(e);
        continue;
      }
      notify(drops);
      batch.forEach((entry, i) => {
        const r = results[i];
        if (r) entry.resolve(r);
        else entry.reject(errors[i]);
      });
    }
  };

  const appendGrouped = (items: readonly OutboxInput[]): Promise<AppendedItem[]> => {
    try {
      validate(items);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      pending.push({ items, resolve, reject });
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        flush();
      });
    });
  };

  const sweep = (): number => {
    const now = db.time.nowMs();
    if (!db.read(() => needsSweep(now))) return 0;
    const drops: DropCount[] = [];
    const n = db.write(() => sweepInTx(now, drops));
    notify(drops);
    return n;
  };

  const checkRanges = (ranges: readonly SeqRange[]) => {
    if (!Array.isArray(ranges) || ranges.length > MAX_ACK_RANGES) {
      throw new StoreError('STORE_BAD_ARGUMENT', `ranges must be an array of at most ${MAX_ACK_RANGES}`);
    }
    for (const r of ranges) {
      checkName(r?.stream, 'stream');
      checkCount(r.from, 'range.from', 0);
      checkCount(r.to, 'range.to', 0);
      if (r.from > r.to) throw new StoreError('STORE_BAD_ARGUMENT', `range ${r.from}..${r.to} is reversed`);
    }
  };

  return {
    queue,
    append,
    appendGrouped,
    flush,
    lease: (maxLeaseItems, maxLeaseBytes, leaseMs) => {
      checkCount(maxLeaseItems, 'maxItems');
      checkCount(maxLeaseBytes, 'maxBytes');
      checkCount(leaseMs, 'leaseMs');
      sweep();
      const now = db.time.nowMs();
      expireLeases(now);
      const picked: Row[] = [];
      let bytes = 0;
      db.read(() => {
        for (const row of q.inOrder.iterate(queue) as IterableIterator<Row>) {
          if (leasedBy.has(row.id)) continue;
          if (picked.length > 0 && bytes + row.bytes > maxLeaseBytes) break;
          picked.push(row);
          bytes += row.bytes;
          if (picked.length >= maxLeaseItems || bytes >= maxLeaseBytes) break;
        }
      });
      const items: OutboxItem[] = [];
      const bad: Dropped[] = [];
      for (const row of picked) {
        const payload = open(
          key,
          row.id,
          rowAssociatedData(queue, row.stream, row.seq, row.id, place(row.stream)),
          row.sealed,
        );
        if (payload === undefined) {
          bad.push(row);
          continue;
        }
        items.push({
          stream: row.stream,
          seq: row.seq,
          priority: row.priority,
          payload,
          createdWallMs: row.created_wall_ms,
          ageMs: Math.max(0, now - row.created_store_ms),
        });
      }
      if (bad.length > 0) {
        log.error('outbox.undecryptable', { rows: bad.length, first: `${bad[0]!.stream}#${(bad[0] as Row).seq}` });
        const drops: DropCount[] = [];
        db.write(() => {
          for (const b of bad) q.deleteId.run(b.id);
          account(bad, 'undecryptable', drops);
        });
        notify(drops);
      }
      const id = nextLeaseId++;
      const expiresAt = now + leaseMs;
      const ids = new Set<number>();
      for (const row of picked) {
        if (bad.includes(row)) continue;
        ids.add(row.id);
        leasedBy.set(row.id, id);
      }
      if (ids.size > 0) leases.set(id, { ids, expiresAt });
      return { id, items, expiresAtStoreMs: expiresAt };
    },
    ack: (ranges) => {
      checkRanges(ranges);
      const removed: Dropped[] = [];
      db.write(() => {
        for (const r of ranges) removed.push(...(q.deleteRange.all(queue, r.stream, r.from, r.to) as Dropped[]));
        account(removed, undefined, []);
      });
      return { items: removed.length, bytes: removed.reduce((n, r) => n + r.bytes, 0) };
    },
    nack: (ranges) => {
      checkRanges(ranges);
      const ids: number[] = [];
      db.read(() => {
        for (const r of ranges) {
          for (const id of q.rangeIds.all(queue, r.stream, r.from, r.to) as number[])
            if (leasedBy.has(id)) ids.push(id);
        }
      });
      forget(ids);
      return ids.length;
    },
    release: (leaseId) => {
      const lease = leases.get(leaseId);
      if (!lease) return 0;
      leases.delete(leaseId);
      for (const id of lease.ids) leasedBy.delete(id);
      return lease.ids.size;
    },
    sweep,
    stats: () =>
      db.read(() => {
        const now = db.time.nowMs();
        expireLeases(now);
        const streams: Record<string, { items: number; bytes: number; nextSeq: number }> = {};
        let items = 0;
        let bytes = 0;
        for (const s of q.streams.all(queue) as { stream: string; items: number; bytes: number; nextSeq: number }[]) {
          streams[s.stream] = { items: s.items, bytes: s.bytes, nextSeq: s.nextSeq };
          items += s.items;
          bytes += s.bytes;
        }
        const drops = q.drops.all(queue) as DropCount[];
        const dropsByReason = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
        for (const d of drops) dropsByReason[d.reason] += d.items;
        const oldest = q.oldest.get(queue) as number | null;
        return {
          queue,
          items,
          bytes,
          leasedItems: leasedBy.size,
          oldestAgeMs: oldest === null ? null : Math.max(0, now - oldest),
          streams,
          drops,
          dropsByReason,
        };
      }),
    close: () => {
      flush();
      leases.clear();
      leasedBy.clear();
    },
  };
}
