// Opens an Outpost SQLite file: WAL, synchronous=FULL, integrity check on start, forward-only
// migrations per component. Every other store module (and the control plane's tables) builds on it.

import { closeSync, constants, existsSync, fchmodSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { type Clock, systemClock } from '../protocol/clock.ts';
import { type Logger, silentLogger } from '../protocol/log.ts';
import { CORRUPT_ADVICE, StoreError, toStoreError } from './errors.ts';
import { createStoreTime, DEFAULT_PLAUSIBLE_WALL_MS, type StoreTime } from './store-time.ts';

export type SqliteDatabase = Database.Database;

/** One forward-only schema step. `up` runs inside the step's own transaction. */
export interface Migration {
  /** 1, 2, 3, … without gaps within a component. */
  readonly version: number;
  /** Recorded with the version; a recorded name that differs from the code's is refused. */
  readonly name: string;
  readonly up: string | ((db: SqliteDatabase) => void);
}

/** The migrations of one component (outbox, audit, a control plane's tables …), versioned independently. */
export interface MigrationSet {
  /** Lower-case name, e.g. `outbox`; also the prefix of the component's tables by convention. */
  readonly component: string;
  readonly migrations: readonly Migration[];
}

/** `full` = PRAGMA integrity_check, `quick` = PRAGMA quick_check, `auto` = full up to `fullCheckMaxBytes`. */
export type IntegrityCheckMode = 'full' | 'quick' | 'auto';

export interface OpenDatabaseOptions {
  /** Components to bring up to date, in order. The store's own core component is always applied first. */
  migrations: readonly MigrationSet[];
  /** better-sqlite3's `nativeBinding`: a path to the addon or the loaded addon (the single binary loads it itself). */
  nativeBinding?: string | object;
  /** Open read-only: no migration, no WAL switch; a database that needs migrating is refused. */
  readonly?: boolean;
  clock?: Clock;
  log?: Logger;
  /** How long a statement waits for another connection's lock before STORE_BUSY (default 5000). */
  busyTimeoutMs?: number;
  integrityCheck?: IntegrityCheckMode;
  /** `auto` runs the full check up to this many bytes of database + WAL, the quick check above (default 64 MiB). */
  fullCheckMaxBytes?: number;
  /** Permission bits of a newly created database file (default 0o600: it holds queued payloads and audit). */
  fileMode?: number;
  /** Wall times before this are treated as unsynchronised (see store-time.ts). */
  plausibleWallMs?: number;
  /** SQLite's own page cache for this connection, in KiB (default 2048; docs/store.md §Memory). */
  cacheKiB?: number;
}

/**
 * SQLite's page cache per connection. better-sqlite3 builds SQLite with 16 MiB; 2 MiB (SQLite's own default) holds
 * the right-hand edges of the B-trees that appends touch, and the kernel's page cache holds the file anyway, so a
 * larger one buys little on a Pi and costs resident memory that only fills up slowly (it looked like a leak in a soak).
 */
export const DEFAULT_CACHE_KIB = 2048;

/** An open store file. `sqlite` is the raw handle for a component's own prepared statements. */
export interface StoreDatabase {
  readonly path: string;
  readonly sqlite: SqliteDatabase;
  readonly readonly: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  /** Observed time for TTLs and ages; jump-proof (store-time.ts). */
  readonly time: StoreTime;
  /** Which check ran at open. */
  readonly integrityCheck: 'full' | 'quick';
  /** The version a component is at (0 when it has never been migrated). */
  schemaVersion(component: string): number;
  /**
   * Runs `fn` in one IMMEDIATE transaction (a savepoint when already inside one) and commits; with
   * synchronous=FULL the commit is on stable storage when this returns. Persists the store-time mark
   * in the same transaction. Throws StoreError (STORE_DISK_FULL, STORE_IO, …) or whatever `fn` throws.
   */
  write<T>(fn: () => T): T;
  /** Runs `fn` with SQLite errors mapped to StoreError. */
  read<T>(fn: () => T): T;
  /** Moves the WAL into the main file and truncates it (for backups and before shutdown). */
  checkpoint(): void;
  readonly isOpen: boolean;
  close(): void;
}

/** `PRAGMA application_id` of Outpost files ('OPST'), so a stray SQLite file is never migrated into ours. */
export const APPLICATION_ID = 0x4f505354;
/** `PRAGMA user_version`: the layout of the migration bookkeeping itself; per-component versions live in a table. */
export const LAYOUT_VERSION = 1;
const COMPONENT = /^[a-z][a-z0-9_]{0,62}$/;

const CORE_MIGRATIONS: MigrationSet = {
  component: 'store',
  migrations: [
    {
      version: 1,
      name: 'store time',
      up: `CREATE TABLE store_time (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             elapsed_ms INTEGER NOT NULL,  -- observed ms since creation, as of the last write
             wall_ms INTEGER NOT NULL      -- wall clock at that write (trusted only when plausible)
           ) STRICT;
           INSERT INTO store_time (id, elapsed_ms, wall_ms) VALUES (1, 0, 0);`,
    },
  ],
};

function validateMigrations(sets: readonly MigrationSet[]): void {
  const seen = new Set<string>();
  for (const set of sets) {
    const bad = (why: string) =>
      new StoreError('STORE_BAD_MIGRATIONS', `migrations of ${JSON.stringify(set?.component)}: ${why}`, {
        details: { component: set?.component },
      });
    if (typeof set?.component !== 'string' || !COMPONENT.test(set.component)) throw bad('bad component name');
    if (seen.has(set.component)) throw bad('component listed twice');
    seen.add(set.component);
    set.migrations.forEach((m, i) => {
      if (m.version !== i + 1) throw bad(`versions must run 1, 2, 3 … (position ${i} has ${m.version})`);
      if (typeof m.name !== 'string' || m.name.length === 0) throw bad(`version ${m.version} has no name`);
      if (typeof m.up !== 'string' && typeof m.up !== 'function') throw bad(`version ${m.version} has no up step`);
    });
  }
}

function fileBytes(path: string): number {
  let total = 0;
  for (const suffix of ['', '-wal']) {
    try {
      total += statSync(path + suffix).size;
    } catch {
      // absent companion file
    }
  }
  return total;
}

function runIntegrityCheck(sqlite: SqliteDatabase, path: string, mode: 'full' | 'quick'): void {
  const pragma = mode === 'full' ? 'integrity_check' : 'quick_check';
  let problems: string[];
  try {
    problems = (sqlite.pragma(`${pragma}(10)`) as Record<string, string>[]).map((r) => String(Object.values(r)[0]));
  } catch (e) {
    const mapped = toStoreError(e, path, pragma);
    if (mapped instanceof StoreError && mapped.code !== 'STORE_CORRUPT') throw mapped;
    throw new StoreError(
      'STORE_CORRUPT',
      `database file ${path} is corrupt (${pragma}: ${(e as Error).message}). ${CORRUPT_ADVICE}`,
      {
        cause: e,
        details: { path, check: pragma, problems: [(e as Error).message] },
      },
    );
  }
  if (problems.length === 1 && problems[0] === 'ok') return;
  throw new StoreError(
    'STORE_CORRUPT',
    `database file ${path} is corrupt (${pragma}: ${problems[0]}). ${CORRUPT_ADVICE}`,
    {
      details: { path, check: pragma, problems },
    },
  );
}

/** Refuses files that are not Outpost's, or whose bookkeeping layout is newer than this code. */
function checkOwnership(sqlite: SqliteDatabase, path: string, readonly: boolean): void {
  const appId = sqlite.pragma('application_id', { simple: true }) as number;
  const layout = sqlite.pragma('user_version', { simple: true }) as number;
  const tables = (sqlite.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number })
    .n;
  if (appId === 0 && layout === 0 && tables === 0) {
    if (readonly) {
      throw new StoreError('STORE_NEEDS_MIGRATION', `database file ${path} is empty; open it read-write once first`, {
        details: { path },
      });
    }
    sqlite.pragma(`application_id = ${APPLICATION_ID}`);
    sqlite.pragma(`user_version = ${LAYOUT_VERSION}`);
    return;
  }
  if (appId !== APPLICATION_ID) {
    throw new StoreError(
      'STORE_NOT_OURS',
      `${path} is an SQLite file not created by Outpost (application_id ${appId}); refusing to touch it`,
      {
        details: { path, applicationId: appId },
      },
    );
  }
  if (layout > LAYOUT_VERSION) {
    throw new StoreError(
      'STORE_TOO_NEW',
      `${path} was written by a newer Outpost (layout ${layout} > ${LAYOUT_VERSION}); upgrade Outpost`,
      {
        details: { path, layout, supported: LAYOUT_VERSION },
      },
    );
  }
}

function applyMigrations(
  sqlite: SqliteDatabase,
  path: string,
  sets: readonly MigrationSet[],
  readonly: boolean,
  clock: Clock,
  log: Logger,
): Map<string, number> {
  if (!readonly) {
    sqlite.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      component TEXT NOT NULL,
      version INTEGER NOT NULL,
      name TEXT NOT NULL,
      applied_wall_ms INTEGER NOT NULL,
      PRIMARY KEY (component, version)
    ) STRICT, WITHOUT ROWID`);
  }
  const applied = new Map<string, Map<number, string>>();
  const hasTable = sqlite
    .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (hasTable) {
    for (const r of sqlite.prepare('SELECT component, version, name FROM schema_migrations').all() as {
      component: string;
      version: number;
      name: string;
    }[]) {
      if (!applied.has(r.component)) applied.set(r.component, new Map());
      applied.get(r.component)!.set(r.version, r.name);
    }
  }
  const versions = new Map<string, number>();
  for (const [component, rows] of applied) versions.set(component, Math.max(...rows.keys()));
  const record = readonly
    ? undefined
    : sqlite.prepare('INSERT INTO schema_migrations (component, version, name, applied_wall_ms) VALUES (?, ?, ?, ?)');
  for (const set of sets) {
    const have = applied.get(set.component) ?? new Map<number, string>();
    const current = versions.get(set.component) ?? 0;
    if (current > set.migrations.length) {
      throw new StoreError(
        'STORE_TOO_NEW',
        `${path}: component ${set.component} is at schema version ${current}, this Outpost knows only up to ${set.migrations.length}; upgrade Outpost (downgrades are not supported)`,
        {
          details: { path, component: set.component, version: current, supported: set.migrations.length },
        },
      );
    }
    for (const m of set.migrations) {
      const recorded = have.get(m.version);
      if (recorded !== undefined) {
        if (recorded !== m.name) {
          throw new StoreError(
            'STORE_MIGRATION_MISMATCH',
            `${path}: ${set.component} v${m.version} was applied as ${JSON.stringify(recorded)} but this code calls it ${JSON.stringify(m.name)}`,
            {
              details: { path, component: set.component, version: m.version },
            },
          );
        }
        continue;
      }
      if (readonly) {
        throw new StoreError(
          'STORE_NEEDS_MIGRATION',
          `${path}: ${set.component} needs migration to v${set.migrations.length}; open it read-write once first`,
          {
            details: { path, component: set.component, version: current, wanted: set.migrations.length },
          },
        );
      }
      try {
        sqlite.exec('BEGIN IMMEDIATE');
        if (typeof m.up === 'string') sqlite.exec(m.up);
        else m.up(sqlite);
        const violations = sqlite.pragma('foreign_key_check') as unknown[];
        if (violations.length > 0) throw new Error(`${violations.length} foreign key violations after the step`);
        record!.run(set.component, m.version, m.name, Math.floor(clock.nowMs()));
        sqlite.exec('COMMIT');
      } catch (e) {
        if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
        const mapped = toStoreError(e, path, `migration ${set.component} v${m.version}`);
        if (mapped instanceof StoreError && mapped.code !== 'STORE_SQLITE' && mapped.code !== 'STORE_CONSTRAINT')
          throw mapped;
        throw new StoreError(
          'STORE_MIGRATION_FAILED',
          `${path}: migration ${set.component} v${m.version} (${m.name}) failed and was rolled back: ${(e as Error).message}`,
          {
            cause: e,
            details: { path, component: set.component, version: m.version },
          },
        );
      }
      log.notice('store.migrated', { path, component: set.component, version: m.version, name: m.name });
    }
    versions.set(set.component, set.migrations.length);
  }
  return versions;
}

/**
 * Creates `path` empty with exactly `mode`, refusing to follow a symlink; false when something is already there.
 * SQLite itself would create the file with the umask's mode (0644 under a usual umask) before any chmod, a window in
 * which another local user could open it and keep reading through that descriptor.
 */
function createPrivateFile(path: string, mode: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new StoreError('STORE_CANTOPEN', `cannot create database file ${path}: ${(e as Error).message}`, {
      cause: e,
      details: { path, errno: code },
    });
  }
  try {
    fchmodSync(fd, mode); // exact bits, whatever the umask
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Opens (creating when absent, unless read-only) the store file at `path`, checks its integrity,
 * and migrates it. Throws StoreError: STORE_CANTOPEN, STORE_CORRUPT (never repaired or replaced),
 * STORE_NOT_OURS, STORE_TOO_NEW, STORE_NEEDS_MIGRATION, STORE_MIGRATION_MISMATCH, STORE_MIGRATION_FAILED,
 * STORE_BAD_MIGRATIONS, STORE_BUSY, STORE_DISK_FULL, STORE_IO.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions): StoreDatabase {
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger).child({ store: path });
  const readonly = options.readonly ?? false;
  const sets = [CORE_MIGRATIONS, ...options.migrations];
  validateMigrations(sets);
  const cacheKiB = options.cacheKiB ?? DEFAULT_CACHE_KIB;
  if (!Number.isInteger(cacheKiB) || cacheKiB < 64 || cacheKiB > 1 << 20) {
    throw new StoreError('STORE_BAD_ARGUMENT', `cacheKiB must be an integer 64..1048576, got ${cacheKiB}`, {
      details: { path },
    });
  }
  const isNew = readonly ? !existsSync(path) : createPrivateFile(path, options.fileMode ?? 0o600);
  if (readonly && isNew) {
    throw new StoreError('STORE_CANTOPEN', `database file ${path} does not exist`, { details: { path } });
  }
  if (!isNew && !existsSync(path)) {
    throw new StoreError(
      'STORE_CANTOPEN',
      `database path ${path} is a symbolic link to nothing; refusing to create it`,
      {
        details: { path },
      },
    );
  }
  let sqlite: SqliteDatabase;
  try {
    const dbOptions: Database.Options = {
      readonly,
      fileMustExist: readonly,
      timeout: options.busyTimeoutMs ?? 5000,
    };
    // better-sqlite3 accepts a path or the loaded addon object; its type declaration lists only the path.
    if (options.nativeBinding !== undefined) dbOptions.nativeBinding = options.nativeBinding as string;
    sqlite = new Database(path, dbOptions);
  } catch (e) {
    const mapped = toStoreError(e, path, 'open');
    if (mapped instanceof StoreError) throw mapped;
    throw new StoreError('STORE_CANTOPEN', `cannot open database file ${path}: ${(e as Error).message}`, {
      cause: e,
      details: { path },
    });
  }
  try {
    const size = fileBytes(path);
    const mode = options.integrityCheck ?? 'auto';
    const check = mode === 'auto' ? (size <= (options.fullCheckMaxBytes ?? 64 << 20) ? 'full' : 'quick') : mode;
    const started = clock.monotonicMs();
    runIntegrityCheck(sqlite, path, check);
    checkOwnership(sqlite, path, readonly);
    if (!readonly) {
      const journal = sqlite.pragma('journal_mode = WAL', { simple: true });
      if (journal !== 'wal')
        throw new StoreError('STORE_IO', `${path}: cannot enable WAL (journal_mode is ${journal})`, {
          details: { path },
        });
    }
    // FULL: the WAL is fsynced at every commit, so an acknowledged append survives power loss, not only a
    // crash (docs/store.md §Durability). better-sqlite3 is built with WAL synchronous defaulting to NORMAL.
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('trusted_schema = OFF');
    // Negative: a size in KiB rather than in pages.
    sqlite.pragma(`cache_size = -${cacheKiB}`);
    sqlite.pragma('cell_size_check = ON');
    // Keep the WAL from staying huge on a small SD card after a burst.
    sqlite.pragma('journal_size_limit = 67108864');
    sqlite.pragma('foreign_keys = OFF'); // migrations follow SQLite's table-rebuild procedure; checked per step
    const versions = applyMigrations(sqlite, path, sets, readonly, clock, log);
    sqlite.pragma('foreign_keys = ON');
    const mark = sqlite
      .prepare('SELECT elapsed_ms AS elapsedMs, wall_ms AS wallMs FROM store_time WHERE id = 1')
      .get() as {
      elapsedMs: number;
      wallMs: number;
    };
    const time = createStoreTime(clock, mark, options.plausibleWallMs ?? DEFAULT_PLAUSIBLE_WALL_MS);
    log.info('store.opened', {
      path,
      check,
      bytes: size,
      checkMs: Math.round(clock.monotonicMs() - started),
      readonly,
    });
    return createHandle(path, sqlite, readonly, clock, log, time, check, versions);
  } catch (e) {
    sqlite.close();
    const mapped = toStoreError(e, path, 'open');
    if (mapped instanceof StoreError) throw mapped;
    throw new StoreError('STORE_CANTOPEN', `cannot open database file ${path}: ${(e as Error)?.message}`, {
      cause: e,
      details: { path },
    });
  }
}

function createHandle(
  path: string,
  sqlite: SqliteDatabase,
  readonly: boolean,
  clock: Clock,
  log: Logger,
  time: StoreTime,
  integrityCheck: 'full' | 'quick',
  versions: Map<string, number>,
): StoreDatabase {
  const persistTime = readonly
    ? undefined
    : sqlite.prepare('UPDATE store_time SET elapsed_ms = max(elapsed_ms, ?), wall_ms = ? WHERE id = 1');
  let depth = 0;
  // Transaction control as prepared statements: parsing BEGIN/COMMIT on every call costs more than the
  // insert itself. One set of savepoint statements per nesting depth.
  type Control = {
    begin: Database.Statement;
    end: Database.Statement;
    undo: Database.Statement;
    after?: Database.Statement;
  };
  const controls: Control[] = [];
  const control = (level: number): Control => {
    let c = controls[level];
    if (!c) {
      c =
        level === 0
          ? {
              begin: sqlite.prepare('BEGIN IMMEDIATE'),
              end: sqlite.prepare('COMMIT'),
              undo: sqlite.prepare('ROLLBACK'),
            }
          : {
              begin: sqlite.prepare(`SAVEPOINT sp${level}`),
              end: sqlite.prepare(`RELEASE sp${level}`),
              undo: sqlite.prepare(`ROLLBACK TO sp${level}`),
              after: sqlite.prepare(`RELEASE sp${level}`),
            };
      controls[level] = c;
    }
    return c;
  };
  const assertOpen = () => {
    if (!sqlite.open) throw new StoreError('STORE_CLOSED', `database ${path} is closed`, { details: { path } });
  };
  const write = <T>(fn: () => T): T => {
    assertOpen();
    if (readonly) throw new StoreError('STORE_READONLY', `database ${path} is open read-only`, { details: { path } });
    const nested = sqlite.inTransaction;
    const level = nested ? depth + 1 : 0;
    let c: Control;
    try {
      c = control(level);
      c.begin.run();
    } catch (e) {
      throw toStoreError(e, path, 'begin');
    }
    const outerDepth = depth;
    depth = level;
    try {
      const result = fn();
      if (result !== null && typeof (result as { then?: unknown })?.then === 'function') {
        throw new StoreError('STORE_BAD_ARGUMENT', 'a store transaction cannot await: pass a synchronous function');
      }
      if (!sqlite.inTransaction) {
        // SQLite rolled the whole transaction back after an error that `fn` caught and ignored.
        throw new StoreError('STORE_IO', `${path}: the transaction was rolled back by SQLite after an earlier error`, {
          details: { path },
        });
      }
      if (!nested) {
        const m = time.mark();
        persistTime!.run(m.elapsedMs, m.wallMs);
      }
      c.end.run();
      return result;
    } catch (e) {
      // SQLite may already have rolled back on SQLITE_FULL / IOERR; roll back only what is still open.
      try {
        if (sqlite.inTransaction) {
          c.undo.run();
          c.after?.run();
        }
      } catch (rollbackError) {
        log.error('store.rollback_failed', { path, error: rollbackError as Error });
      }
      throw toStoreError(e, path, 'write');
    } finally {
      depth = outerDepth;
    }
  };
  return {
    path,
    sqlite,
    readonly,
    clock,
    log,
    time,
    integrityCheck,
    schemaVersion: (component) => versions.get(component) ?? 0,
    write,
    read: <T>(fn: () => T): T => {
      assertOpen();
      try {
        return fn();
      } catch (e) {
        throw toStoreError(e, path, 'read');
      }
    },
    checkpoint: () => {
      assertOpen();
      try {
        sqlite.pragma('wal_checkpoint(TRUNCATE)');
      } catch (e) {
        throw toStoreError(e, path, 'checkpoint');
      }
    },
    get isOpen() {
      return sqlite.open;
    },
    close: () => {
      if (!sqlite.open) return;
      if (!readonly && !sqlite.inTransaction) {
        try {
          write(() => undefined); // persist the store-time mark
        } catch (e) {
          log.warning('store.close_mark_failed', { path, error: e as Error });
        }
      }
      sqlite.close();
      log.info('store.closed', { path });
    },
  };
}
