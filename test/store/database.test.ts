import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, statSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FakeClock } from '../../protocol/clock.ts';
import { createMemoryLogger } from '../../protocol/log.ts';
import { APPLICATION_ID, type MigrationSet, openDatabase } from '../../store/database.ts';
import { isStoreError } from '../../store/errors.ts';
import { ALL_MIGRATIONS, openAll, tempDir, throwsStore } from './fixtures.ts';

const WIDGETS_V1 = {
  version: 1,
  name: 'widgets',
  up: 'CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT',
};
const WIDGETS_V2 = {
  version: 2,
  name: 'widget colour',
  up: "ALTER TABLE widgets ADD COLUMN colour TEXT NOT NULL DEFAULT 'red'",
};
const WIDGETS_V3 = {
  version: 3,
  name: 'widget index',
  up: (db: Database.Database) => {
    db.exec('CREATE INDEX widgets_name ON widgets (name)');
  },
};

function widgets(...migrations: MigrationSet['migrations']): MigrationSet {
  return { component: 'widgets', migrations };
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A closed database with enough rows to span many pages, all checkpointed into the main file. */
function populated(dir: string): string {
  const path = join(dir, 'big.db');
  const db = openDatabase(path, { migrations: [widgets(WIDGETS_V1)] });
  const insert = db.sqlite.prepare('INSERT INTO widgets (name) VALUES (?)');
  db.write(() => {
    for (let i = 0; i < 3000; i++) insert.run(`widget-${i}-${'x'.repeat(100)}`);
  });
  db.close();
  return path;
}

/** Overwrites page `page` (1-based) of the file with a fixed garbage pattern. */
function smashPage(path: string, page: number): void {
  const pageSize = 4096;
  const garbage = Buffer.alloc(pageSize);
  for (let i = 0; i < pageSize; i++) garbage[i] = (i * 131 + 17) & 0xff;
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, garbage, 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

describe('openDatabase', () => {
  it('creates a WAL file with synchronous=FULL, foreign keys on, 0600 and Outpost ids', (t) => {
    const path = join(tempDir(t), 'a.db');
    const db = openAll(t, path);
    assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.sqlite.pragma('synchronous', { simple: true }), 2);
    assert.equal(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.sqlite.pragma('application_id', { simple: true }), APPLICATION_ID);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    db.write(() => db.sqlite.prepare('INSERT INTO sequences VALUES (?, ?)').run('x', 1));
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600, 'the WAL inherits the mode');
    for (const set of ALL_MIGRATIONS) assert.equal(db.schemaVersion(set.component), set.migrations.length);
    assert.equal(db.schemaVersion('nothing'), 0);
    assert.equal(db.integrityCheck, 'full');
    // A bounded page cache (2 MiB), not better-sqlite3's 16 MiB: resident memory on a Pi.
    assert.equal(db.sqlite.pragma('cache_size', { simple: true }), -2048);
  });

  it('sizes the page cache as asked and refuses a size out of range before creating anything', (t) => {
    const dir = tempDir(t);
    const db = openDatabase(join(dir, 'c.db'), { migrations: [], cacheKiB: 512 });
    assert.equal(db.sqlite.pragma('cache_size', { simple: true }), -512);
    db.close();
    for (const cacheKiB of [0, 63, 1.5, (1 << 20) + 1, Number.NaN]) {
      throwsStore(() => openDatabase(join(dir, 'd.db'), { migrations: [], cacheKiB }), 'STORE_BAD_ARGUMENT');
    }
    assert.equal(existsSync(join(dir, 'd.db')), false);
  });

  it('symlink attack: a dangling symlink planted at the database path is refused, its target never created', (t) => {
    const dir = tempDir(t);
    const target = join(dir, 'elsewhere.db');
    const path = join(dir, 'a.db');
    symlinkSync(target, path);
    throwsStore(() => openAll(t, path), 'STORE_CANTOPEN');
    assert.equal(existsSync(target), false);
  });

  it('applies only pending migrations, each recorded, and logs them', (t) => {
    const path = join(tempDir(t), 'm.db');
    openDatabase(path, { migrations: [widgets(WIDGETS_V1)] }).close();
    const { logger, lines } = createMemoryLogger();
    const db = openDatabase(path, { migrations: [widgets(WIDGETS_V1, WIDGETS_V2, WIDGETS_V3)], log: logger });
    t.after(() => db.close());
    assert.equal(db.schemaVersion('widgets'), 3);
    const migrated = lines.filter((l) => l.includes('store.migrated')).map((l) => JSON.parse(l).version);
    assert.deepEqual(migrated, [2, 3]);
    db.write(() => db.sqlite.prepare("INSERT INTO widgets (name) VALUES ('a')").run());
    assert.equal((db.sqlite.prepare('SELECT colour FROM widgets').get() as { colour: string }).colour, 'red');
    const rows = db.sqlite
      .prepare("SELECT version, name FROM schema_migrations WHERE component = 'widgets' ORDER BY version")
      .all();
    assert.deepEqual(rows, [
      { version: 1, name: 'widgets' },
      { version: 2, name: 'widget colour' },
      { version: 3, name: 'widget index' },
    ]);
  });

  it('rolls back a failing migration step and reports it', (t) => {
    const path = join(tempDir(t), 'f.db');
    const broken = { version: 2, name: 'broken', up: 'CREATE TABLE half (a INTEGER); CREATE TABLE oops (' };
    const e = throwsStore(
      () => openDatabase(path, { migrations: [widgets(WIDGETS_V1, broken)] }),
      'STORE_MIGRATION_FAILED',
    );
    assert.match(e.message, /widgets v2 \(broken\)/);
    const raw = new Database(path);
    const tables = raw.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
    raw.close();
    assert.ok(tables.includes('widgets'), 'v1 stays applied');
    assert.ok(!tables.includes('half'), 'v2 left nothing behind');
    const db = openDatabase(path, { migrations: [widgets(WIDGETS_V1, WIDGETS_V2)] });
    assert.equal(db.schemaVersion('widgets'), 2);
    db.close();
  });

  it('rolls back a migration function that throws', (t) => {
    const path = join(tempDir(t), 'g.db');
    const throwing = {
      version: 1,
      name: 'throws',
      up: (db: Database.Database) => {
        db.exec('CREATE TABLE t (a INTEGER)');
        throw new Error('no');
      },
    };
    throwsStore(() => openDatabase(path, { migrations: [widgets(throwing)] }), 'STORE_MIGRATION_FAILED');
    const db = openDatabase(path, { migrations: [] });
    t.after(() => db.close());
    assert.equal(db.schemaVersion('widgets'), 0);
    assert.equal(db.sqlite.prepare("SELECT 1 FROM sqlite_schema WHERE name = 't'").get(), undefined);
  });

  it('refuses a database whose component is newer than the code', (t) => {
    const path = join(tempDir(t), 'n.db');
    openDatabase(path, { migrations: [widgets(WIDGETS_V1, WIDGETS_V2)] }).close();
    const e = throwsStore(() => openDatabase(path, { migrations: [widgets(WIDGETS_V1)] }), 'STORE_TOO_NEW');
    assert.match(e.message, /widgets is at schema version 2.*only up to 1/);
  });

  it('refuses a database whose bookkeeping layout is newer', (t) => {
    const path = join(tempDir(t), 'l.db');
    openDatabase(path, { migrations: [] }).close();
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    throwsStore(() => openDatabase(path, { migrations: [] }), 'STORE_TOO_NEW');
  });

  it('refuses a migration renamed after it was applied', (t) => {
    const path = join(tempDir(t), 'r.db');
    openDatabase(path, { migrations: [widgets(WIDGETS_V1)] }).close();
    throwsStore(
      () => openDatabase(path, { migrations: [widgets({ ...WIDGETS_V1, name: 'gadgets' })] }),
      'STORE_MIGRATION_MISMATCH',
    );
  });

  it('refuses malformed migration sets before touching the file', (t) => {
    const path = join(tempDir(t), 'b.db');
    throwsStore(() => openDatabase(path, { migrations: [widgets(WIDGETS_V2)] }), 'STORE_BAD_MIGRATIONS');
    throwsStore(
      () => openDatabase(path, { migrations: [widgets(WIDGETS_V1), widgets(WIDGETS_V1)] }),
      'STORE_BAD_MIGRATIONS',
    );
    throwsStore(
      () => openDatabase(path, { migrations: [{ component: 'Bad Name', migrations: [] }] }),
      'STORE_BAD_MIGRATIONS',
    );
    throwsStore(
      () => openDatabase(path, { migrations: [{ component: 'store', migrations: [] }] }),
      'STORE_BAD_MIGRATIONS',
    );
    assert.equal(existsSync(path), false);
  });

  it('refuses an SQLite file that Outpost did not create', (t) => {
    const path = join(tempDir(t), 'other.db');
    const raw = new Database(path);
    raw.exec('CREATE TABLE theirs (a INTEGER)');
    raw.close();
    const before = sha256(path);
    throwsStore(() => openDatabase(path, { migrations: [] }), 'STORE_NOT_OURS');
    assert.equal(sha256(path), before);
  });

  it('opens read-only only what is fully migrated, and refuses writes', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'ro.db');
    throwsStore(() => openDatabase(path, { migrations: [], readonly: true }), 'STORE_CANTOPEN');
    openDatabase(path, { migrations: [widgets(WIDGETS_V1)] }).close();
    throwsStore(
      () => openDatabase(path, { migrations: [widgets(WIDGETS_V1, WIDGETS_V2)], readonly: true }),
      'STORE_NEEDS_MIGRATION',
    );
    const db = openDatabase(path, { migrations: [widgets(WIDGETS_V1)], readonly: true });
    t.after(() => db.close());
    assert.equal(db.schemaVersion('widgets'), 1);
    throwsStore(() => db.write(() => 1), 'STORE_READONLY');
  });

  it('names a missing directory in STORE_CANTOPEN', (t) => {
    const path = join(tempDir(t), 'no', 'such', 'dir.db');
    const e = throwsStore(() => openDatabase(path, { migrations: [] }), 'STORE_CANTOPEN');
    assert.match(e.message, /dir\.db/);
  });

  it('accepts better-sqlite3 nativeBinding as a path to the addon', (t) => {
    const addon = join(
      import.meta.dirname,
      '../../node_modules/better-sqlite3/prebuilds',
      `${process.platform}-${process.arch}.node`,
    );
    if (!existsSync(addon)) {
      t.skip(`no prebuilt addon for ${process.platform}-${process.arch}`);
      return;
    }
    const db = openDatabase(join(tempDir(t), 'nb.db'), { migrations: [], nativeBinding: addon });
    assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
  });
});

describe('corrupt files', () => {
  for (const mode of ['full', 'quick'] as const) {
    it(`refuses a file with a smashed b-tree page (${mode} check) and leaves it untouched`, (t) => {
      const path = populated(tempDir(t));
      const pages = statSync(path).size / 4096;
      assert.ok(pages > 20, `test database spans ${pages} pages`);
      smashPage(path, Math.floor(pages / 2));
      const before = sha256(path);
      const e = throwsStore(
        () => openDatabase(path, { migrations: [widgets(WIDGETS_V1)], integrityCheck: mode }),
        'STORE_CORRUPT',
      );
      assert.ok(e.message.includes(path), 'the message names the file');
      assert.match(e.message, /move the file .* aside/);
      assert.match(e.message, /\.recover/);
      assert.equal(sha256(path), before, 'the corrupt file is neither repaired nor replaced');
      // Refused again on the next start: nothing was silently recreated.
      throwsStore(() => openDatabase(path, { migrations: [widgets(WIDGETS_V1)] }), 'STORE_CORRUPT');
    });
  }

  it('refuses a file whose header is destroyed', (t) => {
    const path = populated(tempDir(t));
    smashPage(path, 1);
    const e = throwsStore(() => openDatabase(path, { migrations: [] }), 'STORE_CORRUPT');
    assert.equal(e.details.path, path);
  });

  it('auto picks the quick check above fullCheckMaxBytes', (t) => {
    const path = populated(tempDir(t));
    const db = openDatabase(path, { migrations: [widgets(WIDGETS_V1)], fullCheckMaxBytes: 1024 });
    assert.equal(db.integrityCheck, 'quick');
    db.close();
  });
});

describe('StoreDatabase.write', () => {
  it('commits, rolls back on a throw, and nests as savepoints', (t) => {
    const db = openDatabase(join(tempDir(t), 'w.db'), { migrations: [widgets(WIDGETS_V1)] });
    t.after(() => db.close());
    const insert = db.sqlite.prepare('INSERT INTO widgets (name) VALUES (?)');
    const names = () => db.sqlite.prepare('SELECT name FROM widgets ORDER BY id').pluck().all();
    db.write(() => insert.run('a'));
    assert.throws(
      () =>
        db.write(() => {
          insert.run('b');
          throw new Error('caller failure');
        }),
      /caller failure/,
    );
    db.write(() => {
      insert.run('c');
      assert.throws(() =>
        db.write(() => {
          insert.run('d');
          throw new Error('inner');
        }),
      );
      insert.run('e');
    });
    assert.deepEqual(names(), ['a', 'c', 'e']);
    throwsStore(() => db.write(() => Promise.resolve(1)), 'STORE_BAD_ARGUMENT');
    assert.equal(db.sqlite.inTransaction, false);
    db.close();
    throwsStore(() => db.write(() => 1), 'STORE_CLOSED');
  });

  it('maps SQLite constraint errors to StoreError', (t) => {
    const db = openDatabase(join(tempDir(t), 'c.db'), { migrations: [widgets(WIDGETS_V1)] });
    t.after(() => db.close());
    const e = throwsStore(
      () => db.write(() => db.sqlite.prepare('INSERT INTO widgets (id, name) VALUES (1, NULL)').run()),
      'STORE_CONSTRAINT',
    );
    assert.ok(isStoreError(e));
    assert.equal(e.details.sqlite, 'SQLITE_CONSTRAINT_NOTNULL');
  });
});

describe('store time across restarts', () => {
  it('continues from the persisted mark and adds a plausible downtime', (t) => {
    const path = join(tempDir(t), 't.db');
    const clock = new FakeClock(Date.UTC(2026, 0, 1), 500);
    const db = openDatabase(path, { migrations: [], clock });
    clock.advance(10_000);
    assert.equal(db.time.nowMs(), 10_000);
    db.close();
    const later = new FakeClock(Date.UTC(2026, 0, 1) + 10_000 + 60_000, 3); // process restarted a minute later
    const db2 = openDatabase(path, { migrations: [], clock: later });
    t.after(() => db2.close());
    assert.equal(db2.time.nowMs(), 70_000);
  });

  it('counts no downtime when the wall clock went backwards or was never set', (t) => {
    const path = join(tempDir(t), 'j.db');
    const clock = new FakeClock(Date.UTC(2026, 0, 1), 0);
    const db = openDatabase(path, { migrations: [], clock });
    clock.advance(5_000);
    db.close();
    const rebootedIn1970 = new FakeClock(30_000, 0);
    const db2 = openDatabase(path, { migrations: [], clock: rebootedIn1970 });
    assert.equal(db2.time.nowMs(), 5_000);
    rebootedIn1970.jumpWallMs(Date.UTC(2026, 5, 1)); // NTP answers: wall jumps by decades
    assert.equal(db2.time.nowMs(), 5_000, 'a wall jump moves nothing');
    rebootedIn1970.advance(1_000);
    assert.equal(db2.time.nowMs(), 6_000);
    db2.close();
    const db3 = openDatabase(path, { migrations: [], clock: new FakeClock(Date.UTC(2025, 0, 1), 0) }); // behind the mark
    t.after(() => db3.close());
    assert.equal(db3.time.nowMs(), 6_000);
  });
});
