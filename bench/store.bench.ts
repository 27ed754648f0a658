// Store benchmark: durable encrypted outbox appends (single, batched, group-commit) against a bare
// better-sqlite3 insert loop measured in the same run, synchronous FULL vs NORMAL, WAL pages written per
// record, and the cost of the start-up integrity check. Run: `npm run bench -- store` (bench/README.md).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase, type StoreDatabase } from '../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS, type Outbox } from '../store/outbox.ts';
import { type BenchContext, elapsedMs, now, ratePerSecond, runBench } from './harness.ts';

const PAYLOAD_BYTES = 200;
const KEY = randomBytes(32);

function bare(path: string, synchronous: 'FULL' | 'NORMAL', perTx: number, total: number): number {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, stream TEXT, seq INTEGER, body BLOB)');
  const insert = db.prepare('INSERT INTO q (stream, seq, body) VALUES (?, ?, ?)');
  const tx = db.transaction((from: number) => {
    for (let i = 0; i < perTx; i++) insert.run('telemetry', from + i, randomBytes(PAYLOAD_BYTES));
  });
  const t0 = now();
  for (let n = 0; n < total; n += perTx) tx(n);
  const r = ratePerSecond(total, t0);
  db.close();
  return r;
}

function withOutbox<T>(path: string, fn: (outbox: Outbox, db: StoreDatabase) => T, synchronous?: 'NORMAL'): T {
  const db = openDatabase(path, { migrations: [OUTBOX_MIGRATIONS] });
  // Only for this comparison: the store always runs FULL (docs/store.md §Durability).
  if (synchronous) db.sqlite.pragma(`synchronous = ${synchronous}`);
  try {
    return fn(createOutbox(db, { key: KEY, maxItems: 10_000_000, maxBytes: 1 << 30 }), db);
  } finally {
    db.close();
  }
}

const item = () => ({ stream: 'telemetry', payload: randomBytes(PAYLOAD_BYTES) });

function single(path: string, total: number, synchronous?: 'NORMAL'): number {
  return withOutbox(
    path,
    (outbox) => {
      const t0 = now();
      for (let i = 0; i < total; i++) outbox.append([item()]);
      return ratePerSecond(total, t0);
    },
    synchronous,
  );
}

function batched(path: string, perCall: number, total: number): number {
  return withOutbox(path, (outbox) => {
    const t0 = now();
    for (let n = 0; n < total; n += perCall) outbox.append(Array.from({ length: perCall }, item));
    return ratePerSecond(total, t0);
  });
}

async function grouped(path: string, producers: number, total: number): Promise<number> {
  const db = openDatabase(path, { migrations: [OUTBOX_MIGRATIONS] });
  const outbox = createOutbox(db, { key: KEY, maxItems: 10_000_000, maxBytes: 1 << 30 });
  let left = total;
  const t0 = now();
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (left > 0) {
        left--;
        await outbox.appendGrouped([item()]);
      }
    }),
  );
  const r = ratePerSecond(total, t0);
  db.close();
  return r;
}

/** WAL frames (pages) written per record: deterministic, and what wears an SD card. */
async function walPagesPerRecord(path: string, how: 'single' | 'batched' | 'grouped'): Promise<number> {
  const db = openDatabase(path, { migrations: [OUTBOX_MIGRATIONS] });
  db.checkpoint();
  db.sqlite.pragma('wal_autocheckpoint = 0');
  const outbox = createOutbox(db, { key: KEY, maxItems: 10_000_000, maxBytes: 1 << 30 });
  const total = 1600;
  if (how === 'single') for (let i = 0; i < total; i++) outbox.append([item()]);
  if (how === 'batched') for (let i = 0; i < total; i += 100) outbox.append(Array.from({ length: 100 }, item));
  if (how === 'grouped') {
    for (let i = 0; i < total; i += 16)
      await Promise.all(Array.from({ length: 16 }, () => outbox.appendGrouped([item()])));
  }
  const [row] = db.sqlite.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
  db.close();
  return row!.log / total;
}

/** Milliseconds per MiB for the integrity check at open, on a file of about `mib` MiB. */
function integrity(path: string, mode: 'full' | 'quick', mib: number): number {
  withOutbox(path, (outbox) => {
    const per = 1000;
    for (let n = 0; n < (mib * 1024 * 1024) / (PAYLOAD_BYTES * 5); n += per) {
      outbox.append(
        Array.from({ length: per }, () => ({ stream: `s${n % 7}`, payload: randomBytes(PAYLOAD_BYTES * 5) })),
      );
    }
  });
  const bytes = statSync(path).size;
  const t0 = now();
  openDatabase(path, { migrations: [OUTBOX_MIGRATIONS], integrityCheck: mode }).close();
  return elapsedMs(t0) / (bytes / (1024 * 1024));
}

async function run(ctx: BenchContext): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'outpost-bench-store-'));
  let fileNo = 0;
  const fresh = () => join(root, `b${fileNo++}.db`);
  try {
    const N1 = ctx.size(2000, 100);
    const NB = ctx.size(50_000, 1000);
    const rates = async (label: string, once: (path: string) => Promise<number> | number) =>
      ctx.repeat(label, () => once(fresh()));
    const rec = { unit: 'records/s', better: 'higher' as const };

    ctx.figure({
      id: 'bare.single.full',
      label: 'baseline: bare insert, 1 per tx, FULL',
      ...rec,
      samples: await rates('bare single FULL', (p) => bare(p, 'FULL', 1, N1)),
    });
    ctx.figure({
      id: 'bare.single.normal',
      label: 'baseline: bare insert, 1 per tx, NORMAL',
      ...rec,
      samples: await rates('bare single NORMAL', (p) => bare(p, 'NORMAL', 1, N1 * 5)),
    });
    ctx.figure({
      id: 'bare.batched.full',
      label: 'baseline: bare insert, 100 per tx, FULL',
      ...rec,
      samples: await rates('bare batched FULL', (p) => bare(p, 'FULL', 100, NB)),
    });
    ctx.figure({
      id: 'outbox.single',
      label: 'outbox.append, 1 item per call (FULL)',
      ...rec,
      baseline: 'bare.single.full',
      samples: await rates('outbox single', (p) => single(p, N1)),
    });
    ctx.figure({
      id: 'outbox.single.normal',
      label: 'outbox.append, 1 item per call, NORMAL (not used)',
      ...rec,
      baseline: 'outbox.single',
      samples: await rates('outbox single NORMAL', (p) => single(p, N1 * 5, 'NORMAL')),
    });
    ctx.figure({
      id: 'outbox.batched',
      label: 'outbox.append, 100 items per call',
      ...rec,
      baseline: 'bare.batched.full',
      samples: await rates('outbox batched', (p) => batched(p, 100, NB)),
    });
    ctx.figure({
      id: 'outbox.grouped16',
      label: 'outbox.appendGrouped, 16 concurrent producers',
      ...rec,
      baseline: 'outbox.single',
      samples: await rates('outbox grouped 16', (p) => grouped(p, 16, N1 * 5)),
    });
    ctx.figure({
      id: 'outbox.grouped256',
      label: 'outbox.appendGrouped, 256 concurrent producers',
      ...rec,
      baseline: 'outbox.single',
      samples: await rates('outbox grouped 256', (p) => grouped(p, 256, NB)),
    });

    ctx.exact(
      'wal.single',
      'WAL pages (4 KiB) per record, 1 item per call',
      'pages',
      await walPagesPerRecord(fresh(), 'single'),
    );
    ctx.exact(
      'wal.batched',
      'WAL pages per record, 100 items per call',
      'pages',
      await walPagesPerRecord(fresh(), 'batched'),
    );
    ctx.exact(
      'wal.grouped16',
      'WAL pages per record, 16 grouped producers',
      'pages',
      await walPagesPerRecord(fresh(), 'grouped'),
    );

    const mib = ctx.quick ? 1 : 32;
    for (const mode of ['full', 'quick'] as const) {
      ctx.figure({
        id: `integrity.${mode}`,
        label: `integrity check at open (${mode}), ${mib} MiB file`,
        unit: 'ms/MiB',
        better: 'lower',
        samples: await ctx.repeat(`integrity ${mode}`, () => integrity(fresh(), mode, mib), {
          repeats: Math.min(3, ctx.repeats),
          warmup: 0,
        }),
      });
    }
    ctx.note(`${PAYLOAD_BYTES}-byte payloads, WAL; every run on a fresh file in ${tmpdir()}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await runBench({ name: 'store', title: 'Store: durable outbox appends against bare better-sqlite3', run });
