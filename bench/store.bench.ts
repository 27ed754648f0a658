// Store benchmark: durable encrypted outbox appends (single, batched, group-commit) against a bare
// better-sqlite3 insert loop measured in the same run, synchronous FULL vs NORMAL, and the cost of
// the start-up integrity check. Run: `npx node bench/store.bench.ts [--repeats N] [--json]`.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase, type StoreDatabase } from '../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS, type Outbox } from '../store/outbox.ts';

const args = process.argv.slice(2);
const repeats = Number(args[args.indexOf('--repeats') + 1]) || 5;
const asJson = args.includes('--json');
const PAYLOAD_BYTES = 200;
const KEY = randomBytes(32);
const root = mkdtempSync(join(tmpdir(), 'outpost-bench-store-'));
let fileNo = 0;

interface Result {
  name: string;
  unit: string;
  samples: number[];
  median: number;
  min: number;
  max: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function freshPath(): string {
  return join(root, `b${fileNo++}.db`);
}

/** Runs `once` `repeats` times on fresh files; each returns records per second. */
async function measure(
  name: string,
  once: (path: string) => Promise<number> | number,
  unit = 'records/s',
): Promise<Result> {
  await once(freshPath()); // warm-up: JIT, page cache, addon load
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) samples.push(await once(freshPath()));
  const r = { name, unit, samples, median: median(samples), min: Math.min(...samples), max: Math.max(...samples) };
  if (!asJson) {
    process.stdout.write(`${name.padEnd(52)} ${fmt(r.median).padStart(9)} ${unit}  (${fmt(r.min)}–${fmt(r.max)})\n`);
  }
  return r;
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);
}

function rate(count: number, startNs: bigint): number {
  return count / (Number(process.hrtime.bigint() - startNs) / 1e9);
}

/** Machine load when the bench started: figures from a busy machine are noisier. */
const load = loadavg()[0]!;

function bare(path: string, synchronous: 'FULL' | 'NORMAL', perTx: number, total: number): number {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, stream TEXT, seq INTEGER, body BLOB)');
  const insert = db.prepare('INSERT INTO q (stream, seq, body) VALUES (?, ?, ?)');
  const tx = db.transaction((from: number) => {
    for (let i = 0; i < perTx; i++) insert.run('telemetry', from + i, randomBytes(PAYLOAD_BYTES));
  });
  const t0 = process.hrtime.bigint();
  for (let n = 0; n < total; n += perTx) tx(n);
  const r = rate(total, t0);
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
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < total; i++) outbox.append([item()]);
      return rate(total, t0);
    },
    synchronous,
  );
}

function batched(path: string, perCall: number, total: number): number {
  return withOutbox(path, (outbox) => {
    const t0 = process.hrtime.bigint();
    for (let n = 0; n < total; n += perCall) outbox.append(Array.from({ length: perCall }, item));
    return rate(total, t0);
  });
}

async function grouped(path: string, producers: number, total: number): Promise<number> {
  const db = openDatabase(path, { migrations: [OUTBOX_MIGRATIONS] });
  const outbox = createOutbox(db, { key: KEY, maxItems: 10_000_000, maxBytes: 1 << 30 });
  let left = total;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (left > 0) {
        left--;
        await outbox.appendGrouped([item()]);
      }
    }),
  );
  const r = rate(total, t0);
  db.close();
  return r;
}

/** WAL frames (pages) written per record: deterministic, and what wears an SD card. */
async function walPagesPerRecord(how: 'single' | 'batched' | 'grouped'): Promise<number> {
  const db = openDatabase(freshPath(), { migrations: [OUTBOX_MIGRATIONS] });
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
function integrity(mode: 'full' | 'quick', mib: number): { msPerMib: number; bytes: number } {
  const path = freshPath();
  withOutbox(path, (outbox) => {
    const per = 1000;
    for (let n = 0; n < (mib * 1024 * 1024) / (PAYLOAD_BYTES * 5); n += per) {
      outbox.append(
        Array.from({ length: per }, () => ({ stream: `s${n % 7}`, payload: randomBytes(PAYLOAD_BYTES * 5) })),
      );
    }
  });
  const bytes = statSync(path).size;
  const t0 = process.hrtime.bigint();
  openDatabase(path, { migrations: [OUTBOX_MIGRATIONS], integrityCheck: mode }).close();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { msPerMib: ms / (bytes / (1024 * 1024)), bytes };
}

const results: Result[] = [];
if (!asJson) {
  process.stdout.write(
    `store bench: ${PAYLOAD_BYTES}-byte payloads, WAL, median of ${repeats} (min–max), ${process.platform}-${process.arch}, Node ${process.version}, load ${load.toFixed(1)}\n\n`,
  );
}
const N1 = 2000;
const NB = 50_000;
results.push(await measure('baseline: bare insert, 1 per tx, FULL', (p) => bare(p, 'FULL', 1, N1)));
results.push(await measure('baseline: bare insert, 1 per tx, NORMAL', (p) => bare(p, 'NORMAL', 1, N1 * 5)));
results.push(await measure('baseline: bare insert, 100 per tx, FULL', (p) => bare(p, 'FULL', 100, NB)));
results.push(await measure('outbox.append, 1 item per call (FULL)', (p) => single(p, N1)));
results.push(await measure('outbox.append, 1 item per call, NORMAL (not used)', (p) => single(p, N1 * 5, 'NORMAL')));
results.push(await measure('outbox.append, 100 items per call', (p) => batched(p, 100, NB)));
results.push(await measure('outbox.appendGrouped, 16 concurrent producers', (p) => grouped(p, 16, N1 * 5)));
results.push(await measure('outbox.appendGrouped, 256 concurrent producers', (p) => grouped(p, 256, NB)));

const by = (name: string) => results.find((r) => r.name.startsWith(name))!.median;
const ratios = {
  'single / bare single (encryption + bookkeeping cost)':
    by('outbox.append, 1 item per call (FULL)') / by('baseline: bare insert, 1 per tx, FULL'),
  'batched / bare batched': by('outbox.append, 100 items') / by('baseline: bare insert, 100 per tx'),
  'batched / single': by('outbox.append, 100 items') / by('outbox.append, 1 item per call (FULL)'),
  'group-commit 16 / single': by('outbox.appendGrouped, 16') / by('outbox.append, 1 item per call (FULL)'),
  'group-commit 256 / single': by('outbox.appendGrouped, 256') / by('outbox.append, 1 item per call (FULL)'),
  'NORMAL / FULL (single outbox append)':
    by('outbox.append, 1 item per call, NORMAL') / by('outbox.append, 1 item per call (FULL)'),
};
const walPages = {
  'outbox.append, 1 item per call': await walPagesPerRecord('single'),
  'outbox.append, 100 items per call': await walPagesPerRecord('batched'),
  'outbox.appendGrouped, 16 concurrent producers': await walPagesPerRecord('grouped'),
};
const checks = {
  full: integrity('full', 32),
  quick: integrity('quick', 32),
};
if (asJson) {
  process.stdout.write(
    `${JSON.stringify({ payloadBytes: PAYLOAD_BYTES, repeats, load, results, ratios, walPages, integrityCheck: checks }, null, 2)}\n`,
  );
} else {
  process.stdout.write('\nratios of medians\n');
  for (const [k, v] of Object.entries(ratios)) process.stdout.write(`  ${k.padEnd(54)} ${v.toFixed(2)}×\n`);
  process.stdout.write('\nWAL pages (4 KiB) written per record\n');
  for (const [k, v] of Object.entries(walPages)) process.stdout.write(`  ${k.padEnd(54)} ${v.toFixed(2)}\n`);
  process.stdout.write('\nintegrity check at open (one run each)\n');
  for (const [k, v] of Object.entries(checks)) {
    process.stdout.write(`  ${k.padEnd(6)} ${v.msPerMib.toFixed(1)} ms/MiB on ${(v.bytes / 1048576).toFixed(1)} MiB\n`);
  }
}
rmSync(root, { recursive: true, force: true });
