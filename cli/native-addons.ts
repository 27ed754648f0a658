// Loads the native addons (better-sqlite3, @serialport/bindings-cpp): from node_modules in development,
// and inside the single binary from its SEA assets, written once to a content-hashed cache directory
// and loaded with process.dlopen (dlopen needs a real file on an exec-permitted mount).

import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import * as sea from 'node:sea';
import { OutpostError } from '../protocol/errors.ts';

export type NativeAddonErrorCode =
  | 'NATIVE_ASSET_MISSING'
  | 'NATIVE_CACHE_UNSET'
  | 'NATIVE_CACHE_UNWRITABLE'
  | 'NATIVE_CACHE_NOEXEC'
  | 'NATIVE_CACHE_UNSAFE'
  | 'NATIVE_LOAD_FAILED';

/** A native addon could not be located, extracted or loaded. */
export class NativeAddonError extends OutpostError<NativeAddonErrorCode> {
  constructor(
    code: NativeAddonErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'NativeAddonError';
  }
}

export type NativeAddonName = 'better-sqlite3' | 'serialport';

/** SEA asset key of each addon; scripts/build-binary.ts embeds the per-arch prebuild under this key. */
export const NATIVE_ASSETS: Readonly<Record<NativeAddonName, string>> = Object.freeze({
  'better-sqlite3': 'better_sqlite3.node',
  serialport: 'serialport.node',
});

/** Where the embedded assets come from; the real one is node:sea, tests pass their own. */
export interface AssetSource {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer;
}

export interface NativeAddonLoaderOptions {
  env?: Readonly<Record<string, string | undefined>>;
  assets?: AssetSource;
  /** Effective uid (for the fallback cache directory); defaults to process.geteuid(). */
  uid?: number;
  arch?: string;
  /** Text of /proc/self/mountinfo (for the noexec check); defaults to reading it. */
  readMountInfo?: () => string;
}

export interface NativeAddonLoader {
  /** Returns the addon's exports object. Throws NativeAddonError. Loads each addon at most once per loader. */
  load(name: NativeAddonName): object;
  /** The directory addons are extracted to inside the binary (undefined in development). */
  cacheDir(): string | undefined;
}

/**
 * Picks the extraction directory: $OUTPOST_NATIVE_CACHE, else systemd's $CACHE_DIRECTORY (first entry) + /native,
 * else /var/cache/outpost/native for root, else $XDG_CACHE_HOME (or ~/.cache) + /outpost/native.
 * Throws NATIVE_CACHE_UNSET when none applies (no HOME for a non-root user).
 */
export function nativeCacheDir(env: Readonly<Record<string, string | undefined>>, uid: number): string {
  const explicit = env.OUTPOST_NATIVE_CACHE;
  if (explicit) return resolve(explicit);
  const systemd = env.CACHE_DIRECTORY?.split(':')[0];
  if (systemd) return join(systemd, 'native');
  if (uid === 0) return '/var/cache/outpost/native';
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'outpost', 'native');
  if (env.HOME && isAbsolute(env.HOME)) return join(env.HOME, '.cache', 'outpost', 'native');
  throw new NativeAddonError(
    'NATIVE_CACHE_UNSET',
    'no directory for native addons: set OUTPOST_NATIVE_CACHE (or run under systemd with CacheDirectory=)',
  );
}

/**
 * Returns the mount options of the mount that holds `path`, from /proc/self/mountinfo text
 * (proc(5): field 5 is the mount point, field 6 the per-mount options). Undefined when nothing matches.
 */
export function mountOptionsFor(mountInfo: string, path: string): string[] | undefined {
  let best: { point: string; options: string[] } | undefined;
  for (const line of mountInfo.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 6) continue;
    const point = fields[4]!.replace(/\\([0-7]{3})/g, (_m, oct: string) =>
      String.fromCharCode(Number.parseInt(oct, 8)),
    );
    const inside = point === '/' || path === point || path.startsWith(`${point}/`);
    // Later lines win on equal length: they are mounted on top of earlier ones.
    if (inside && (!best || point.length >= best.point.length)) best = { point, options: fields[5]!.split(',') };
  }
  return best?.options;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function fileHashMatches(file: string, wantHex: string): boolean {
  try {
    return sha256Hex(readFileSync(file)) === wantHex;
  } catch {
    return false; // absent or unreadable: it will be (re)written
  }
}

/** Writes `bytes` to `file` atomically (temp file in the same directory, fsync, rename). */
function writeAtomic(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o500);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

function devAddonPath(name: NativeAddonName, arch: string, requireFrom: NodeJS.Require): string {
  if (name === 'serialport') {
    // node-gyp-build knows the prebuild naming (armv8, glibc/musl tags) of @serialport/bindings-cpp.
    const nodeGypBuild = requireFrom('node-gyp-build') as { path(dir: string): string };
    return nodeGypBuild.path(dirname(requireFrom.resolve('@serialport/bindings-cpp/package.json')));
  }
  const dir = dirname(requireFrom.resolve('better-sqlite3/package.json'));
  let musl = false;
  try {
    musl = /\/ld-musl-[^/\s]*\.so/.test(readFileSync('/proc/self/maps', 'latin1'));
  } catch {
    // No /proc: assume glibc, the only libc the binary supports.
  }
  return join(dir, 'prebuilds', `${musl ? 'linuxmusl' : process.platform}-${arch}.node`);
}

/** Creates a loader; inside the binary it extracts to nativeCacheDir() and refuses noexec mounts. */
export function createNativeAddonLoader(options: NativeAddonLoaderOptions = {}): NativeAddonLoader {
  const env = options.env ?? process.env;
  const assets: AssetSource = options.assets ?? sea;
  const arch = options.arch ?? process.arch;
  const uid = options.uid ?? process.geteuid?.() ?? -1;
  const readMountInfo = options.readMountInfo ?? (() => readFileSync('/proc/self/mountinfo', 'utf8'));
  const loaded = new Map<NativeAddonName, object>();
  const inSea = assets.isSea();

  const unwritable = (root: string, cause: unknown): NativeAddonError =>
    new NativeAddonError(
      'NATIVE_CACHE_UNWRITABLE',
      `cannot write native addon cache ${root} (${(cause as NodeJS.ErrnoException).code ?? 'error'}); ` +
        'set OUTPOST_NATIVE_CACHE to a writable directory on a mount without noexec',
      { cause, details: { dir: root } },
    );

  const extract = (name: NativeAddonName): string => {
    const key = NATIVE_ASSETS[name];
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(assets.getRawAsset(key));
    } catch (cause) {
      throw new NativeAddonError('NATIVE_ASSET_MISSING', `this binary has no embedded ${key}`, { cause });
    }
    const hash = sha256Hex(bytes);
    const root = nativeCacheDir(env, uid);
    const dir = join(root, `${name}-${arch}-${hash.slice(0, 16)}`);
    const file = join(dir, key);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw unwritable(root, cause);
    }
    // Code is loaded from here: anyone else able to write these directories could swap it after the hash check.
    for (const d of [root, dir]) {
      const st = lstatSync(d);
      if (!st.isDirectory() || (uid >= 0 && st.uid !== uid) || (st.mode & 0o022) !== 0) {
        throw new NativeAddonError(
          'NATIVE_CACHE_UNSAFE',
          `native addon cache ${d} must be a directory owned by uid ${uid} and writable by no one else; ` +
            'fix its owner and mode or set OUTPOST_NATIVE_CACHE to a private directory',
          { details: { dir: d, owner: st.uid, mode: (st.mode & 0o777).toString(8) } },
        );
      }
    }
    if (fileHashMatches(file, hash)) return file;
    try {
      writeAtomic(file, bytes);
    } catch (cause) {
      throw unwritable(root, cause);
    }
    return file;
  };

  const checkExecutable = (file: string): void => {
    let mountInfo: string;
    try {
      mountInfo = readMountInfo();
    } catch {
      return; // no /proc: dlopen itself will report a noexec mount
    }
    const opts = mountOptionsFor(mountInfo, file);
    if (opts?.includes('noexec')) {
      throw new NativeAddonError(
        'NATIVE_CACHE_NOEXEC',
        `native addon cache ${dirname(dirname(file))} is on a noexec mount; set OUTPOST_NATIVE_CACHE to a directory ` +
          'on a mount that allows executables (under systemd: CacheDirectory=)',
        { details: { file } },
      );
    }
  };

  return {
    cacheDir: () => (inSea ? nativeCacheDir(env, uid) : undefined),
    load(name) {
      const done = loaded.get(name);
      if (done) return done;
      let exportsObject: object;
      if (inSea) {
        const file = extract(name);
        checkExecutable(file);
        const mod = { exports: {} };
        try {
          process.dlopen(mod, file);
        } catch (cause) {
          throw new NativeAddonError('NATIVE_LOAD_FAILED', `cannot load ${file}: ${(cause as Error).message}`, {
            cause,
          });
        }
        exportsObject = mod.exports;
      } else {
        const requireFrom = createRequire(import.meta.url);
        const path = devAddonPath(name, arch, requireFrom);
        try {
          statSync(path);
          exportsObject = requireFrom(path) as object;
        } catch (cause) {
          throw new NativeAddonError('NATIVE_LOAD_FAILED', `cannot load ${path}: ${(cause as Error).message}`, {
            cause,
          });
        }
      }
      loaded.set(name, exportsObject);
      return exportsObject;
    },
  };
}

/** Loads one addon with a fresh loader over process.env; daemons that load several should keep one loader. */
export function loadNativeAddon(name: NativeAddonName): object {
  return createNativeAddonLoader().load(name);
}
