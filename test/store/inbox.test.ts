import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../protocol/clock.ts';
import { createInbox, type InboxOptions } from '../../store/inbox.ts';
import { openAll, tempDir, throwsStore } from './fixtures.ts';

function setup(t: TestContext, options: InboxOptions = {}, clock = new FakeClock()) {
  const db = openAll(t, join(tempDir(t), 'inbox.db'), clock);
  db.sqlite.exec('CREATE TABLE telemetry (source TEXT, seq INTEGER, body TEXT)');
  const insert = db.sqlite.prepare('INSERT INTO telemetry VALUES (?, ?, ?)');
  const rows = () => db.sqlite.prepare('SELECT source, seq FROM telemetry ORDER BY source, seq').all();
  return { db, inbox: createInbox(db, options), insert, rows, clock };
}

describe('inbox', () => {
  it('runs the write once per (source, seq)', (t) => {
    const { inbox, insert, rows } = setup(t);
    assert.deepEqual(
      inbox.ingest('dev-a', 1, () => insert.run('dev-a', 1, 'x').changes),
      { admission: 'new', value: 1 },
    );
    assert.deepEqual(
      inbox.ingest('dev-a', 1, () => insert.run('dev-a', 1, 'x')),
      { admission: 'duplicate' },
    );
    assert.equal(inbox.ingest('dev-b', 1, () => insert.run('dev-b', 1, 'x')).admission, 'new');
    assert.equal(inbox.claim('dev-a', 0), 'new');
    assert.equal(inbox.claim('dev-a', 0), 'duplicate');
    assert.deepEqual(rows(), [
      { source: 'dev-a', seq: 1 },
      { source: 'dev-b', seq: 1 },
    ]);
  });

  it("claims in the caller's transaction: a failed write leaves the seq unclaimed", (t) => {
    const { db, inbox, insert, rows } = setup(t);
    assert.throws(() =>
      db.write(() => {
        assert.equal(inbox.claim('dev', 7), 'new');
        insert.run('dev', 7, 'x');
        throw new Error('handler failed after the insert');
      }),
    );
    assert.deepEqual(rows(), []);
    db.write(() => {
      if (inbox.claim('dev', 7) === 'new') insert.run('dev', 7, 'x');
    });
    assert.deepEqual(rows(), [{ source: 'dev', seq: 7 }]);
  });

  it('bounds memory per source with a floor, refusing seqs below it as stale', (t) => {
    const { db, inbox } = setup(t, { maxPerSource: 8 });
    for (let seq = 1; seq <= 30; seq++) assert.equal(inbox.claim('d', seq), 'new');
    const kept = db.sqlite.prepare("SELECT count(*) FROM inbox_seen WHERE source = 'd'").pluck().get() as number;
    assert.ok(kept <= 8 + 1, `kept ${kept}`);
    const floor = inbox.floor('d');
    assert.ok(floor >= 30 - 9 && floor < 30);
    assert.equal(inbox.claim('d', floor), 'stale');
    assert.equal(inbox.claim('d', 30), 'duplicate');
    assert.equal(inbox.claim('d', 31), 'new');
    assert.equal(inbox.floor('other'), -1);
  });

  it('prunes by age in store time and raises the floor', (t) => {
    const { inbox, clock } = setup(t, { retentionMs: 60_000 });
    inbox.claim('d', 5);
    inbox.claim('d', 9);
    clock.advance(30_000);
    inbox.claim('d', 7);
    clock.jumpWallMs(-10 * 86_400_000); // wall jumps change nothing
    clock.advance(30_000);
    assert.equal(inbox.prune(), 3, '5 and 9 aged out; 7 fell below the new floor');
    assert.equal(inbox.floor('d'), 9);
    assert.equal(inbox.claim('d', 7), 'stale');
    assert.equal(inbox.claim('d', 10), 'new');
  });

  it('never admits a (source, seq) twice (property)', (t) => {
    const { inbox } = setup(t, { maxPerSource: 16 });
    const admitted = new Set<string>();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 60 })), { maxLength: 80 }),
        (claims) => {
          for (const [source, seq] of claims) {
            const r = inbox.claim(source, seq);
            const key = `${source}:${seq}`;
            if (r === 'new') {
              assert.ok(!admitted.has(key), `${key} admitted twice`);
              admitted.add(key);
            } else if (r === 'duplicate') assert.ok(admitted.has(key));
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('validates its input', (t) => {
    const { inbox } = setup(t);
    throwsStore(() => inbox.claim('', 1), 'STORE_BAD_ARGUMENT');
    throwsStore(() => inbox.claim('d', -1), 'STORE_BAD_ARGUMENT');
    throwsStore(() => inbox.claim('d', 1.5), 'STORE_BAD_ARGUMENT');
  });
});
