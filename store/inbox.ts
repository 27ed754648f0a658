// Inbox dedup for exactly-once ingestion: (source, seq) is claimed in the same transaction as the
// caller's write, so a redelivered record is recognised and the write happens once. Retention is
// bounded per source by a floor: seqs at or below it are refused as `stale` (too old to tell).

import type { MigrationSet, StoreDatabase } from './database.ts';
import { StoreError, shown } from './errors.ts';

export const INBOX_MIGRATIONS: MigrationSet = {
  component: 'inbox',
  migrations: [
    {
      version: 1,
      name: 'inbox sources and seen seqs',
      up: `
        CREATE TABLE inbox_sources (
          inbox TEXT NOT NULL,
          source TEXT NOT NULL,
          floor INTEGER NOT NULL,   -- every seq <= floor is refused as stale; only seqs above it are kept
          entries INTEGER NOT NULL, -- rows in inbox_seen for this source
          PRIMARY KEY (inbox, source)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE inbox_seen (
          inbox TEXT NOT NULL,
          source TEXT NOT NULL,
          seq INTEGER NOT NULL,
          seen_store_ms INTEGER NOT NULL,
          PRIMARY KEY (inbox, source, seq)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX inbox_seen_age ON inbox_seen (inbox, seen_store_ms);`,
    },
  ],
};

/** `new`: first time seen, the caller's write runs; `duplicate`: seen before; `stale`: at or below the floor. */
export type Admission = 'new' | 'duplicate' | 'stale';

export interface InboxOptions {
  /** Name of this inbox in the file (default `inbox`). */
  name?: string;
  /** Seqs remembered per source (default 65,536); beyond that the lowest are forgotten and the floor rises. */
  maxPerSource?: number;
  /** `prune()` forgets seqs seen longer ago than this, in store time (default 7 days). */
  retentionMs?: number;
}

export interface Inbox {
  /**
   * Claims (source, seq). Call it inside the transaction of the write it guards
   * (`db.write(() => inbox.claim(s, n) === 'new' && insert(...))`); alone it runs its own transaction.
   */
  claim(source: string, seq: number): Admission;
  /** Claims and, only when `new`, runs `write` — both in one durable transaction. */
  ingest<T>(
    source: string,
    seq: number,
    write: () => T,
  ): { admission: 'new'; value: T } | { admission: 'duplicate' | 'stale' };
  /** Forgets seqs older than the retention (raising floors); returns how many rows it removed. */
  prune(): number;
  /** The floor of `source` (−1 when nothing has been forgotten yet). */
  floor(source: string): number;
}

const NAME = /^[\x21-\x7e]{1,256}$/;

/** An inbox in `db`, which must include INBOX_MIGRATIONS. */
export function createInbox(db: StoreDatabase, options: InboxOptions = {}): Inbox {
  const inbox = options.name ?? 'inbox';
  if (!NAME.test(inbox)) throw new StoreError('STORE_BAD_ARGUMENT', 'inbox name must be printable ASCII');
  const maxPerSource = options.maxPerSource ?? 65_536;
  const retentionMs = options.retentionMs ?? 7 * 24 * 3600 * 1000;
  if (
    !Number.isSafeInteger(maxPerSource) ||
    maxPerSource < 1 ||
    !Number.isSafeInteger(retentionMs) ||
    retentionMs < 1
  ) {
    throw new StoreError('STORE_BAD_ARGUMENT', 'maxPerSource and retentionMs must be positive integers');
  }
  // Trim in batches so the cost of pruning is amortised over many claims.
  const slack = Math.max(1, maxPerSource >> 3);
  const sql = db.sqlite;
  const q = {
    source: sql.prepare('SELECT floor, entries FROM inbox_sources WHERE inbox = ? AND source = ?'),
    addSource: sql.prepare('INSERT INTO inbox_sources (inbox, source, floor, entries) VALUES (?, ?, -1, 0)'),
    insert: sql.prepare('INSERT OR IGNORE INTO inbox_seen (inbox, source, seq, seen_store_ms) VALUES (?, ?, ?, ?)'),
    setSource: sql.prepare('UPDATE inbox_sources SET floor = ?, entries = ? WHERE inbox = ? AND source = ?'),
    lowest: sql.prepare('SELECT seq FROM inbox_seen WHERE inbox = ? AND source = ? ORDER BY seq LIMIT ?').pluck(),
    deleteUpTo: sql.prepare('DELETE FROM inbox_seen WHERE inbox = ? AND source = ? AND seq <= ?'),
    deleteOld: sql.prepare('DELETE FROM inbox_seen WHERE inbox = ? AND seen_store_ms <= ? RETURNING source, seq'),
    count: sql.prepare('SELECT count(*) FROM inbox_seen WHERE inbox = ? AND source = ?').pluck(),
  };

  const checkInput = (source: string, seq: number) => {
    if (typeof source !== 'string' || !NAME.test(source)) {
      throw new StoreError('STORE_BAD_ARGUMENT', 'source must be 1–256 printable ASCII characters');
    }
    if (!Number.isSafeInteger(seq) || seq < 0)
      throw new StoreError('STORE_BAD_ARGUMENT', `seq must be a safe integer ≥ 0, got ${shown(seq)}`);
  };

  const claimInTx = (source: string, seq: number): Admission => {
    let row = q.source.get(inbox, source) as { floor: number; entries: number } | undefined;
    if (!row) {
      q.addSource.run(inbox, source);
      row = { floor: -1, entries: 0 };
    }
    if (seq <= row.floor) return 'stale';
    if (q.insert.run(inbox, source, seq, db.time.nowMs()).changes === 0) return 'duplicate';
    let { floor, entries } = row;
    entries++;
    if (entries > maxPerSource + slack) {
      const drop = q.lowest.all(inbox, source, entries - maxPerSource) as number[];
      floor = drop[drop.length - 1]!;
      entries -= q.deleteUpTo.run(inbox, source, floor).changes;
    }
    q.setSource.run(floor, entries, inbox, source);
    return 'new';
  };

  return {
    claim: (source, seq) => {
      checkInput(source, seq);
      return db.write(() => claimInTx(source, seq));
    },
    ingest: (source, seq, write) => {
      checkInput(source, seq);
      return db.write(() => {
        const admission = claimInTx(source, seq);
        return admission === 'new' ? { admission, value: write() } : { admission };
      });
    },
    prune: () =>
      db.write(() => {
        const removed = q.deleteOld.all(inbox, db.time.nowMs() - retentionMs) as { source: string; seq: number }[];
        const highest = new Map<string, number>();
        for (const r of removed) highest.set(r.source, Math.max(highest.get(r.source) ?? -1, r.seq));
        let total = removed.length;
        for (const [source, top] of highest) {
          const row = q.source.get(inbox, source) as { floor: number; entries: number };
          const floor = Math.max(row.floor, top);
          // Seqs kept below the new floor would be refused anyway; forget them so `entries` stays exact.
          total += q.deleteUpTo.run(inbox, source, floor).changes;
          q.setSource.run(floor, q.count.get(inbox, source) as number, inbox, source);
        }
        return total;
      }),
    floor: (source) => db.read(() => (q.source.get(inbox, source) as { floor: number } | undefined)?.floor ?? -1),
  };
}
