// Typed errors of store/: every failure a caller can act on carries a stable code (docs/store.md
// lists them). SQLite's own error codes are mapped here, in one place, by `toStoreError`.

import { readFileSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { OutpostError } from '../protocol/errors.ts';

export type StoreErrorCode =
  // opening and schema
  | 'STORE_CANTOPEN'
  | 'STORE_CORRUPT'
  | 'STORE_NOT_OURS'
  | 'STORE_TOO_NEW'
  | 'STORE_NEEDS_MIGRATION'
  | 'STORE_BAD_MIGRATIONS'
  | 'STORE_MIGRATION_MISMATCH'
  | 'STORE_MIGRATION_FAILED'
  // running
  | 'STORE_CLOSED'
  | 'STORE_DISK_FULL'
  | 'STORE_IO'
  | 'STORE_BUSY'
  | 'STORE_READONLY'
  | 'STORE_CONSTRAINT'
  | 'STORE_SQLITE'
  | 'STORE_BAD_ARGUMENT'
  | 'STORE_IN_TRANSACTION'
  // outbox, sequence
  | 'STORE_ITEM_TOO_LARGE'
  | 'STORE_KEY_MISMATCH'
  | 'STORE_SEQUENCE_EXHAUSTED'
  // audit
  | 'STORE_BAD_EXPORT'
  // key and atomic files
  | 'STORE_KEY_INVALID'
  | 'STORE_KEY_PERMISSIONS'
  | 'STORE_KEY_NOT_FOUND'
  | 'STORE_FILE_WRITE';

/** A store operation failed; `details` names the file and never holds secrets. */
export class StoreError extends OutpostError<StoreErrorCode> {
  constructor(
    code: StoreErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

/** True when `e` is a StoreError (optionally with one of `codes`). */
export function isStoreError(e: unknown, ...codes: StoreErrorCode[]): e is StoreError {
  return e instanceof StoreError && (codes.length === 0 || codes.includes(e.code));
}

/** A value for an error message that never throws (outside input may be an object with a hostile toString). */
export function shown(value: unknown): string {
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

interface SqliteLikeError {
  code: string;
  message: string;
}

function isSqliteError(e: unknown): e is SqliteLikeError {
  if (!(e instanceof Error) || e.name !== 'SqliteError') return false;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/** Bytes below which a filesystem counts as full when a write has failed. */
const FULL_MARGIN_BYTES = 1 << 20;

/** The soft RLIMIT_FSIZE of this process (bytes), or undefined when unlimited or unknown (non-Linux). */
function fileSizeLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max file size'));
    const soft = line?.slice('Max file size'.length).trim().split(/\s+/)[0];
    return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined; // no procfs: the limit cannot be read, so it is not blamed
  }
}

/**
 * Why a failed write failed, when it was for lack of space: SQLite reports ENOSPC as SQLITE_FULL, but a
 * file-size limit (RLIMIT_FSIZE, systemd's LimitFSIZE=) as a plain write error (EFBIG), so look.
 */
function spaceExhausted(path: string): { limit: 'filesystem' | 'file_size_limit'; freeBytes?: number } | undefined {
  try {
    const fs = statfsSync(dirname(path));
    const freeBytes = fs.bavail * fs.bsize;
    if (freeBytes < FULL_MARGIN_BYTES) return { limit: 'filesystem', freeBytes };
  } catch {
    // statfs unavailable: fall through to the size-limit check
  }
  const limit = fileSizeLimit();
  if (limit === undefined) return undefined;
  for (const suffix of ['', '-wal', '-journal']) {
    try {
      if (statSync(path + suffix).size + FULL_MARGIN_BYTES >= limit) return { limit: 'file_size_limit' };
    } catch {
      // that file does not exist
    }
  }
  return undefined;
}

const OPERATOR_FULL =
  'free space on that filesystem (or raise the file-size limit); records already stored are intact and still readable';

/**
 * Maps a better-sqlite3 SqliteError to a StoreError naming `path`; returns any other value unchanged
 * (StoreErrors and the caller's own errors pass through).
 */
export function toStoreError(e: unknown, path: string, operation: string): unknown {
  if (!isSqliteError(e)) return e;
  const sqlite = e.code;
  const details = { path, operation, sqlite };
  const base = `${operation} on ${path} failed: ${e.message}`;
  if (sqlite === 'SQLITE_FULL') {
    return new StoreError('STORE_DISK_FULL', `${operation} on ${path}: disk full; ${OPERATOR_FULL}`, {
      cause: e,
      details: { ...details, limit: 'filesystem' },
    });
  }
  if (sqlite.startsWith('SQLITE_IOERR')) {
    const full = spaceExhausted(path);
    if (full) {
      return new StoreError('STORE_DISK_FULL', `${operation} on ${path}: no space (${full.limit}); ${OPERATOR_FULL}`, {
        cause: e,
        details: { ...details, ...full },
      });
    }
    return new StoreError('STORE_IO', `${base} (the storage device reported an I/O error)`, { cause: e, details });
  }
  if (sqlite.startsWith('SQLITE_CORRUPT') || sqlite === 'SQLITE_NOTADB') {
    return new StoreError('STORE_CORRUPT', `${base}; ${CORRUPT_ADVICE}`, { cause: e, details });
  }
  if (sqlite.startsWith('SQLITE_BUSY') || sqlite.startsWith('SQLITE_LOCKED')) {
    return new StoreError('STORE_BUSY', `${base} (another process holds the database lock)`, { cause: e, details });
  }
  if (sqlite.startsWith('SQLITE_READONLY')) return new StoreError('STORE_READONLY', base, { cause: e, details });
  if (sqlite.startsWith('SQLITE_CANTOPEN')) return new StoreError('STORE_CANTOPEN', base, { cause: e, details });
  if (sqlite.startsWith('SQLITE_CONSTRAINT')) return new StoreError('STORE_CONSTRAINT', base, { cause: e, details });
  return new StoreError('STORE_SQLITE', base, { cause: e, details });
}

/** What an operator can do about a corrupt file; part of every STORE_CORRUPT message. */
export const CORRUPT_ADVICE =
  'Outpost will neither use nor replace this file. Stop the service, move the file and its -wal and -shm ' +
  'companions aside (keep them for diagnosis), then restore a backup or start with no file to begin empty; ' +
  '`sqlite3 FILE .recover` may salvage rows';
