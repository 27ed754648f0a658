// Secret key files: a 32-byte seed read from a systemd credential when the service has one
// ($CREDENTIALS_DIRECTORY/<name>, from LoadCredential= or LoadCredentialEncrypted=), else from a 0600
// file in the state directory, created atomically on first start. docs/store.md §Keys at rest.

import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from './atomic-file.ts';
import { StoreError } from './errors.ts';

export const KEY_SEED_BYTES = 32;

export interface LoadedKey {
  /** The 32-byte seed. Never log it. */
  readonly seed: Uint8Array;
  readonly source: 'credential' | 'file';
  readonly path: string;
  /** True when this call generated the seed and wrote the file. */
  readonly created: boolean;
}

export interface LoadKeyFileOptions {
  /** Generate and write a new seed when the file does not exist (default true). */
  create?: boolean;
  /** Source of new seeds (default the OS CSPRNG). */
  generate?: () => Uint8Array;
}

function readExact(path: string, fd: number, what: string): Uint8Array {
  const st = fstatSync(fd);
  if (!st.isFile())
    throw new StoreError('STORE_KEY_INVALID', `${what} ${path} is not a regular file`, { details: { path } });
  if (st.size !== KEY_SEED_BYTES) {
    throw new StoreError(
      'STORE_KEY_INVALID',
      `${what} ${path} holds ${st.size} bytes; a key is exactly ${KEY_SEED_BYTES} raw bytes`,
      {
        details: { path, bytes: st.size },
      },
    );
  }
  const seed = new Uint8Array(KEY_SEED_BYTES);
  let at = 0;
  while (at < KEY_SEED_BYTES) {
    const n = readSync(fd, seed, at, KEY_SEED_BYTES - at, at);
    if (n === 0) break;
    at += n;
  }
  if (at !== KEY_SEED_BYTES)
    throw new StoreError('STORE_KEY_INVALID', `${what} ${path} was truncated while reading`, { details: { path } });
  return seed;
}

/** Checks that only the owner can read the key file, and that the owner is this process's user. */
function checkPrivate(path: string, fd: number): void {
  const st = fstatSync(fd);
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new StoreError(
      'STORE_KEY_PERMISSIONS',
      `key file ${path} has mode ${mode.toString(8).padStart(4, '0')}: group or others can reach it. Refusing to use it. ` +
        `Run \`chmod 600 ${path}\`, and treat the key as exposed if anyone else could have read it (re-enroll with a new one).`,
      { details: { path, mode: `0${mode.toString(8)}` } },
    );
  }
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new StoreError(
      'STORE_KEY_PERMISSIONS',
      `key file ${path} is owned by uid ${st.uid}, not by this process's uid ${uid}; refusing to use it`,
      {
        details: { path, owner: st.uid, uid },
      },
    );
  }
}

function openKey(path: string): number | undefined {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw new StoreError('STORE_KEY_PERMISSIONS', `key file ${path} is a symbolic link; refusing to follow it`, {
        details: { path },
      });
    }
    throw new StoreError('STORE_KEY_INVALID', `cannot read key file ${path}: ${(e as Error).message}`, {
      cause: e,
      details: { path },
    });
  }
}

/**
 * Loads the seed from `path` (0600, owned by this user, exactly 32 bytes), creating it when absent.
 * Throws StoreError STORE_KEY_PERMISSIONS (group/world access, other owner, symlink), STORE_KEY_INVALID
 * (wrong size, not a file), STORE_KEY_NOT_FOUND (absent and `create` is false), STORE_FILE_WRITE, STORE_DISK_FULL.
 */
export function loadOrCreateKeyFile(path: string, options: LoadKeyFileOptions = {}): LoadedKey {
  for (let attempt = 0; attempt < 2; attempt++) {
    const fd = openKey(path);
    if (fd !== undefined) {
      try {
        checkPrivate(path, fd);
        return { seed: readExact(path, fd, 'key file'), source: 'file', path, created: false };
      } finally {
        closeSync(fd);
      }
    }
    if (!(options.create ?? true)) {
      throw new StoreError('STORE_KEY_NOT_FOUND', `key file ${path} does not exist`, { details: { path } });
    }
    const seed = (options.generate ?? (() => new Uint8Array(randomBytes(KEY_SEED_BYTES))))();
    if (!(seed instanceof Uint8Array) || seed.length !== KEY_SEED_BYTES) {
      throw new StoreError('STORE_KEY_INVALID', `generated key must be ${KEY_SEED_BYTES} bytes`);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Never clobber: when another process created the file meanwhile, loop once and read theirs.
    if (writeFileAtomic(path, seed, { mode: 0o600, overwrite: false }))
      return { seed, source: 'file', path, created: true };
  }
  throw new StoreError('STORE_KEY_INVALID', `key file ${path} appeared and vanished while loading`, {
    details: { path },
  });
}

export interface LoadKeyOptions extends LoadKeyFileOptions {
  /** Credential name (`LoadCredentialEncrypted=<name>:…`): letters, digits, `.`, `_`, `-`. */
  credential: string;
  /** The key file used when there is no such credential, e.g. `$STATE_DIRECTORY/identity.key`. */
  filePath: string;
  /** The environment to read CREDENTIALS_DIRECTORY from (pass `process.env`; tests pass their own). */
  env: Readonly<Record<string, string | undefined>>;
}

const CREDENTIAL = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/**
 * The seed from the systemd credential `credential` when $CREDENTIALS_DIRECTORY holds it (read-only:
 * systemd owns its protection), else from `filePath` via loadOrCreateKeyFile.
 */
export function loadKey(options: LoadKeyOptions): LoadedKey {
  if (!CREDENTIAL.test(options.credential)) {
    throw new StoreError('STORE_BAD_ARGUMENT', `bad credential name ${JSON.stringify(options.credential)}`);
  }
  const dir = options.env.CREDENTIALS_DIRECTORY;
  if (dir) {
    const path = join(dir, options.credential);
    const fd = openKey(path);
    if (fd !== undefined) {
      try {
        return { seed: readExact(path, fd, 'credential'), source: 'credential', path, created: false };
      } finally {
        closeSync(fd);
      }
    }
  }
  return loadOrCreateKeyFile(options.filePath, options);
}
