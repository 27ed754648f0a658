// Atomic file writes: a reader (or a reboot) sees the old content or the new, never a torn mix.
// Temp file in the same directory, write, fsync, rename (or link, to never clobber), fsync the directory.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  linkSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { StoreError } from './errors.ts';

export interface WriteFileAtomicOptions {
  /** Permission bits, set exactly (not filtered by the umask). Default 0o600. */
  mode?: number;
  /** When false, an existing file is left alone and the call returns false (default true). */
  overwrite?: boolean;
}

/** fsyncs a directory so a rename or link in it survives power loss. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fileError(path: string, e: unknown): StoreError {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT') {
    return new StoreError('STORE_DISK_FULL', `cannot write ${path}: no space (${code})`, {
      cause: e,
      details: { path, errno: code },
    });
  }
  return new StoreError('STORE_FILE_WRITE', `cannot write ${path}: ${(e as Error)?.message}`, {
    cause: e,
    details: { path, errno: code },
  });
}

/**
 * Writes `data` to `path` atomically and durably. Returns true when written, false when `overwrite`
 * is false and `path` already existed (then nothing changed). Throws StoreError STORE_FILE_WRITE or STORE_DISK_FULL.
 */
export function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: WriteFileAtomicOptions = {},
): boolean {
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number | undefined;
  try {
    fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    fchmodSync(fd, mode);
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (options.overwrite ?? true) {
      renameSync(temp, path);
    } else {
      try {
        linkSync(temp, path); // fails with EEXIST instead of replacing: create-if-absent, race-free
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          unlinkSync(temp);
          return false;
        }
        throw e;
      }
      unlinkSync(temp);
    }
    fsyncDirectory(dir);
    return true;
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // already renamed or never created
    }
    throw fileError(path, e);
  }
}
