// Durable signed telemetry enqueue: number from the device sequence, sign the unit (Ed25519, canonical JSON),
// seal and append to the SQLite outbox (synchronous=FULL) — single records and batches of 256 — against a
// bare better-sqlite3 insert loop of the same records measured in the same run.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { utf8 } from '../protocol/bytes.ts';
import {
  encodeTelemetryUnit,
  MAX_UNIT_RECORDS,
  signTelemetryUnit,
  type TelemetryRecord,
} from '../protocol/telemetry.ts';
import { openDatabase } from '../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS, type Outbox } from '../store/outbox.ts';
import { createSequence, SEQUENCE_MIGRATIONS, type Sequence } from '../store/sequence.ts';
import { type BenchContext, now, ratePerSecond, runBench } from './harness.ts';

const SEED = randomBytes(32);
const STREAM = 'air.temperature';
const T0 = Date.UTC(2026, 0, 1);

interface Pipeline {
  /** Sign and durably append `values` as one stream's records; resolves after the commit. */
  ingest(values: readonly number[]): Promise<void>;
  close(): void;
}

/**
 * The agent's ingest path, from the parts on main: numbers from the persisted sequence, one signed unit per
 * ≤ 256 records, appended with group commit (agent/telemetry-ingest.ts does the same with validation on top).
 */
function pipeline(path: string): Pipeline {
  const db = openDatabase(path, { migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS] });
  const outbox: Outbox = createOutbox(db, { key: randomBytes(32), maxItems: 10_000_000, maxBytes: 1 << 30 });
  const sequence: Sequence = createSequence(db, 'telemetry');
  return {
    async ingest(values) {
      const items = [];
      for (let at = 0; at < values.length; at += MAX_UNIT_RECORDS) {
        const chunk = values.slice(at, at + MAX_UNIT_RECORDS);
        const { first } = sequence.take(chunk.length);
        const records: TelemetryRecord[] = chunk.map((value, k) => ({
          seq: first + k,
          stream: STREAM,
          ts: T0 + (first + k) * 1000,
          value,
        }));
        items.push({ stream: STREAM, payload: utf8(encodeTelemetryUnit(signTelemetryUnit(SEED, records))) });
      }
      await outbox.appendGrouped(items);
    },
    close: () => db.close(),
  };
}

/** Baseline: the same number of rows, each the size of one signed single-record unit, inserted bare. */
function bare(path: string, perTx: number, total: number, rowBytes: number): number {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, stream TEXT, seq INTEGER, body BLOB)');
  const insert = db.prepare('INSERT INTO q (stream, seq, body) VALUES (?, ?, ?)');
  const tx = db.transaction((from: number) => {
    for (let i = 0; i < perTx; i++) insert.run(STREAM, from + i, randomBytes(rowBytes));
  });
  const t0 = now();
  for (let n = 0; n < total; n += perTx) tx(n);
  const r = ratePerSecond(total, t0);
  db.close();
  return r;
}

async function run(ctx: BenchContext): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'outpost-bench-enqueue-'));
  let fileNo = 0;
  const fresh = () => join(root, `e${fileNo++}.db`);
  const value = (i: number) => 21.5 + (i % 17) / 10;
  const oneUnitBytes = encodeTelemetryUnit(
    signTelemetryUnit(SEED, [{ seq: 1, stream: STREAM, ts: T0, value: 21.5 }]),
  ).length;
  const singles = ctx.size(1_000, 50);
  const concurrent = ctx.size(20_000, 500);
  const batched = ctx.size(200_000, 2_560);
  const rec = { unit: 'records/s', better: 'higher' as const };
  try {
    ctx.figure({
      id: 'bare.single',
      label: `baseline: bare insert, 1 row (${oneUnitBytes} B) per transaction, FULL`,
      ...rec,
      samples: await ctx.repeat('bare single', () => bare(fresh(), 1, singles, oneUnitBytes)),
    });
    ctx.figure({
      id: 'bare.batched',
      label: `baseline: bare insert, ${MAX_UNIT_RECORDS} rows per transaction, FULL`,
      ...rec,
      samples: await ctx.repeat('bare batched', () => bare(fresh(), MAX_UNIT_RECORDS, batched, oneUnitBytes)),
    });
    ctx.figure({
      id: 'enqueue.single',
      label: 'signed enqueue, 1 record per call, one caller',
      ...rec,
      baseline: 'bare.single',
      samples: await ctx.repeat('signed single', async () => {
        const p = pipeline(fresh());
        const t0 = now();
        for (let i = 0; i < singles; i++) await p.ingest([value(i)]);
        const r = ratePerSecond(singles, t0);
        p.close();
        return r;
      }),
    });
    ctx.figure({
      id: 'enqueue.single.concurrent',
      label: 'signed enqueue, 1 record per call, 64 concurrent callers (group commit)',
      ...rec,
      baseline: 'bare.single',
      samples: await ctx.repeat('signed single ×64', async () => {
        const p = pipeline(fresh());
        let left = concurrent;
        const t0 = now();
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (left > 0) await p.ingest([value(left--)]);
          }),
        );
        const r = ratePerSecond(concurrent, t0);
        p.close();
        return r;
      }),
    });
    ctx.figure({
      id: 'enqueue.batched',
      label: `signed enqueue, ${MAX_UNIT_RECORDS} records per call (one signed unit)`,
      ...rec,
      baseline: 'bare.batched',
      samples: await ctx.repeat('signed batched', async () => {
        const p = pipeline(fresh());
        const batch = Array.from({ length: MAX_UNIT_RECORDS }, (_, i) => value(i));
        const t0 = now();
        for (let n = 0; n < batched; n += MAX_UNIT_RECORDS) await p.ingest(batch);
        const r = ratePerSecond(batched, t0);
        p.close();
        return r;
      }),
    });
    ctx.note(
      `Pipeline: persisted sequence → Ed25519-signed canonical-JSON unit → sealed outbox row, synchronous=FULL, in ${tmpdir()}. Single-record calls pay one fsync each unless callers overlap (group commit).`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await runBench({ name: 'telemetry-enqueue', title: 'Durable signed telemetry enqueue', run });
