import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { openDatabase, type StoreDatabase } from '../../store/database.ts';
import { createSequence, SEQUENCE_MIGRATIONS, type Sequence } from '../../store/sequence.ts';
import { tempDir, throwsStore } from './fixtures.ts';

type Op = { op: 'next' } | { op: 'take'; n: number } | { op: 'crash' } | { op: 'reopen' } | { op: 'twin' };

const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: fc.constant({ op: 'next' as const }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('take' as const), n: fc.integer({ min: 1, max: 40 }) }) },
    { weight: 1, arbitrary: fc.constant({ op: 'crash' as const }) },
    { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
    { weight: 1, arbitrary: fc.constant({ op: 'twin' as const }) },
  ),
  { maxLength: 120 },
);

describe('sequence', () => {
  it('never repeats a number across crashes, reopens and concurrent instances (property)', (t) => {
    const dir = tempDir(t);
    let run = 0;
    fc.assert(
      fc.property(
        ops,
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 1000 }),
        (script, blockSize, start) => {
          const path = join(dir, `seq-${run++}.db`);
          let db: StoreDatabase = openDatabase(path, { migrations: [SEQUENCE_MIGRATIONS] });
          const make = () => createSequence(db, 'lora/uplink', { blockSize, start });
          let seqs: Sequence[] = [make()];
          const issued: number[] = [];
          try {
            for (const step of script) {
              const s = seqs[issued.length % seqs.length]!;
              switch (step.op) {
                case 'next':
                  issued.push(s.next());
                  break;
                case 'take': {
                  const r = s.take(step.n);
                  assert.equal(r.count, step.n);
                  for (let i = 0; i < r.count; i++) issued.push(r.first + i);
                  break;
                }
                case 'crash': {
                  // The process dies: in-memory blocks are lost, the file is not closed cleanly.
                  const before = issued.length > 0 ? Math.max(...issued) : undefined;
                  seqs = [make()];
                  const after = seqs[0]!.next();
                  issued.push(after);
                  if (before !== undefined) {
                    assert.ok(after > before, 'resumes above anything handed out');
                    assert.ok(after - before <= blockSize, 'the gap is at most one block');
                  }
                  break;
                }
                case 'reopen':
                  db.close();
                  db = openDatabase(path, { migrations: [SEQUENCE_MIGRATIONS] });
                  seqs = [make()];
                  break;
                case 'twin':
                  seqs.push(make()); // a second instance on the same name reserves its own blocks
                  break;
              }
            }
            assert.equal(new Set(issued).size, issued.length, 'no number handed out twice');
            assert.ok(issued.every((n) => n >= start));
            const hw = seqs[0]!.highWater();
            assert.ok(
              issued.every((n) => n < hw),
              'every number is below the persisted high-water mark',
            );
          } finally {
            db.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('hands out consecutive runs and respects max', (t) => {
    const db = openDatabase(join(tempDir(t), 'max.db'), { migrations: [SEQUENCE_MIGRATIONS] });
    t.after(() => db.close());
    const s = createSequence(db, 'nonce32', { blockSize: 4, max: 10 });
    assert.deepEqual(s.take(3), { first: 1, count: 3 });
    assert.deepEqual(s.take(3), { first: 5, count: 3 }, 'a run that does not fit gets a fresh block');
    assert.equal(s.next(), 8);
    assert.equal(s.next(), 9);
    assert.equal(s.next(), 10);
    const e = throwsStore(() => s.next(), 'STORE_SEQUENCE_EXHAUSTED');
    assert.equal(e.details.sequence, 'nonce32');
    throwsStore(() => createSequence(db, 'nonce32', { max: 10 }).next(), 'STORE_SEQUENCE_EXHAUSTED');
  });

  it('refuses to reserve inside a transaction, where a rollback could let numbers repeat', (t) => {
    const db = openDatabase(join(tempDir(t), 'tx.db'), { migrations: [SEQUENCE_MIGRATIONS] });
    t.after(() => db.close());
    const s = createSequence(db, 'a');
    s.next();
    throwsStore(() => db.write(() => s.next()), 'STORE_IN_TRANSACTION');
  });

  it('persists the block before handing out its first number', (t) => {
    const db = openDatabase(join(tempDir(t), 'hw.db'), { migrations: [SEQUENCE_MIGRATIONS] });
    t.after(() => db.close());
    const s = createSequence(db, 'a', { blockSize: 100 });
    assert.equal(s.highWater(), 1);
    assert.equal(s.next(), 1);
    assert.equal(s.highWater(), 101);
    const independent = createSequence(db, 'b', { blockSize: 100 });
    assert.equal(independent.next(), 1, 'names are independent');
  });

  it('rejects bad names and options', (t) => {
    const db = openDatabase(join(tempDir(t), 'bad.db'), { migrations: [SEQUENCE_MIGRATIONS] });
    t.after(() => db.close());
    throwsStore(() => createSequence(db, ''), 'STORE_BAD_ARGUMENT');
    throwsStore(() => createSequence(db, 'a', { blockSize: 0 }), 'STORE_BAD_ARGUMENT');
    throwsStore(() => createSequence(db, 'a').take(0), 'STORE_BAD_ARGUMENT');
  });
});

describe('sequence reservation that fails to commit', () => {
  it('hands out no number of a block whose COMMIT failed, before or after a restart', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'seq.db');
    const db = openDatabase(path, { migrations: [SEQUENCE_MIGRATIONS] });
    let failCommit = false;
    // The reservation runs and is rolled back, then the write reports the failure: what SQLite does when COMMIT
    // meets a full disk.
    const flaky: StoreDatabase = Object.create(db, {
      write: {
        value: <T>(fn: () => T): T => {
          if (!failCommit) return db.write(fn);
          db.sqlite.exec('BEGIN IMMEDIATE');
          try {
            fn();
          } finally {
            db.sqlite.exec('ROLLBACK');
          }
          throw new Error('SQLITE_FULL: database or disk is full');
        },
      },
    });
    const seq = createSequence(flaky, 'lora/uplink', { blockSize: 1 });
    const handed = [seq.next()];
    failCommit = true;
    assert.throws(() => seq.next(), /SQLITE_FULL/);
    failCommit = false;
    handed.push(seq.next());
    db.close();
    const again = openDatabase(path, { migrations: [SEQUENCE_MIGRATIONS] });
    handed.push(createSequence(again, 'lora/uplink', { blockSize: 1 }).next());
    again.close();
    assert.equal(new Set(handed).size, handed.length, `numbers handed out: ${handed.join(', ')}`);
  });
});
