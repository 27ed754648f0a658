// The native addon loader: cache directory choice, the noexec check, and extraction from (test-supplied)
// SEA assets to a content-hashed directory, loaded with process.dlopen exactly as inside the binary.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type AssetSource,
  createNativeAddonLoader,
  mountOptionsFor,
  NATIVE_ASSETS,
  NativeAddonError,
  nativeCacheDir,
} from '../../cli/native-addons.ts';
import { nativeAssetPaths } from '../../scripts/sea-build.ts';
import { REPO_ROOT } from '../support/binaries.ts';

const scratch = mkdtempSync(join(tmpdir(), 'outpost-native-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const arch = process.arch as 'x64' | 'arm64';

/** The real prebuilds for this machine, served the way node:sea serves assets inside the binary. */
function realAssets(): AssetSource & { reads: string[] } {
  const files = nativeAssetPaths(REPO_ROOT, arch);
  const reads: string[] = [];
  return {
    reads,
    isSea: () => true,
    getRawAsset(key) {
      reads.push(key);
      const path = files[key];
      if (!path) throw new Error(`no asset ${key}`);
      const b = readFileSync(path);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  };
}

const noMounts = () => '';

describe('nativeCacheDir', () => {
  const table: Array<[string, Record<string, string | undefined>, number, string]> = [
    ['OUTPOST_NATIVE_CACHE wins', { OUTPOST_NATIVE_CACHE: '/x/y', CACHE_DIRECTORY: '/var/cache/outpost' }, 0, '/x/y'],
    ['systemd CacheDirectory= next', { CACHE_DIRECTORY: '/var/cache/outpost' }, 998, '/var/cache/outpost/native'],
    [
      'first of several CacheDirectory entries',
      { CACHE_DIRECTORY: '/var/cache/a:/var/cache/b' },
      998,
      '/var/cache/a/native',
    ],
    ['root falls back to /var/cache', { HOME: '/root' }, 0, '/var/cache/outpost/native'],
    [
      'a user falls back to XDG_CACHE_HOME',
      { HOME: '/home/u', XDG_CACHE_HOME: '/home/u/.c' },
      1000,
      '/home/u/.c/outpost/native',
    ],
    ['then to ~/.cache', { HOME: '/home/u' }, 1000, '/home/u/.cache/outpost/native'],
    [
      'a relative XDG_CACHE_HOME is ignored',
      { HOME: '/home/u', XDG_CACHE_HOME: 'rel' },
      1000,
      '/home/u/.cache/outpost/native',
    ],
  ];
  for (const [name, env, uid, want] of table) {
    it(name, () => assert.equal(nativeCacheDir(env, uid), want));
  }

  it('throws NATIVE_CACHE_UNSET for a user without HOME', () => {
    assert.throws(
      () => nativeCacheDir({}, 1000),
      (e: unknown) => e instanceof NativeAddonError && e.code === 'NATIVE_CACHE_UNSET',
    );
  });
});

describe('mountOptionsFor', () => {
  const mountInfo = [
    '22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw',
    '30 22 0:26 / /tmp rw,nosuid,nodev,noexec shared:5 - tmpfs tmpfs rw',
    '31 22 0:27 / /var/cache rw,nosuid shared:6 - tmpfs tmpfs rw',
    '32 22 0:28 / /mnt/with\\040space rw,noexec shared:7 - tmpfs tmpfs rw',
    '33 31 0:29 / /var/cache/outpost rw,noexec shared:8 - tmpfs tmpfs rw',
  ].join('\n');
  const table: Array<[string, string, boolean]> = [
    ['/tmp/x/a.node', '/tmp/x/a.node', true],
    ['/tmpfoo is not under /tmp', '/tmpfoo/a.node', false],
    ['the longest mount point wins', '/var/cache/outpost/native/a.node', true],
    ['its parent mount allows exec', '/var/cache/other/a.node', false],
    ['octal escapes in mount points', '/mnt/with space/a.node', true],
    ['the root mount', '/opt/a.node', false],
  ];
  for (const [name, path, noexec] of table) {
    it(name, () => assert.equal(mountOptionsFor(mountInfo, path)?.includes('noexec'), noexec));
  }
  it('returns undefined for empty mount info', () => assert.equal(mountOptionsFor('', '/x'), undefined));
});

describe('createNativeAddonLoader (as inside the binary)', () => {
  it('extracts each addon once to <cache>/<name>-<arch>-<hash16>/ and loads it with dlopen', () => {
    const cache = join(scratch, 'extract');
    const assets = realAssets();
    const loader = createNativeAddonLoader({ env: { OUTPOST_NATIVE_CACHE: cache }, assets, readMountInfo: noMounts });
    const sqlite = loader.load('better-sqlite3') as { Database?: unknown };
    assert.equal(typeof sqlite.Database, 'function', 'the better-sqlite3 addon exports its Database class');
    assert.equal(loader.load('better-sqlite3'), sqlite, 'memoised per loader');
    const serial = loader.load('serialport') as { open?: unknown };
    assert.equal(typeof serial.open, 'function');
    assert.deepEqual(assets.reads, [NATIVE_ASSETS['better-sqlite3'], NATIVE_ASSETS.serialport]);
    const dirs = readdirSync(cache).sort();
    assert.match(dirs[0]!, new RegExp(`^better-sqlite3-${arch}-[0-9a-f]{16}$`));
    assert.match(dirs[1]!, new RegExp(`^serialport-${arch}-[0-9a-f]{16}$`));
    assert.equal(statSync(join(cache, dirs[0]!)).mode & 0o777, 0o700);
    assert.equal(loader.cacheDir(), cache);
  });

  it('refuses a cache on a noexec mount with NATIVE_CACHE_NOEXEC', () => {
    const cache = join(scratch, 'noexec');
    const loader = createNativeAddonLoader({
      env: { OUTPOST_NATIVE_CACHE: cache },
      assets: realAssets(),
      readMountInfo: () => `1 0 0:1 / / rw - ext4 x rw\n2 1 0:2 / ${scratch} rw,noexec - tmpfs t rw`,
    });
    assert.throws(
      () => loader.load('better-sqlite3'),
      (e: unknown) => e instanceof NativeAddonError && e.code === 'NATIVE_CACHE_NOEXEC' && /noexec/.test(e.message),
    );
  });

  it('reports NATIVE_CACHE_UNWRITABLE naming OUTPOST_NATIVE_CACHE', () => {
    const file = join(scratch, 'plain-file');
    writeFileSync(file, '');
    const loader = createNativeAddonLoader({
      env: { OUTPOST_NATIVE_CACHE: join(file, 'below') },
      assets: realAssets(),
      readMountInfo: noMounts,
    });
    assert.throws(
      () => loader.load('serialport'),
      (e: unknown) =>
        e instanceof NativeAddonError && e.code === 'NATIVE_CACHE_UNWRITABLE' && /OUTPOST_NATIVE_CACHE/.test(e.message),
    );
  });

  it('refuses a cache directory others can write (NATIVE_CACHE_UNSAFE)', () => {
    const cache = join(scratch, 'shared');
    mkdirSync(cache, { mode: 0o777 });
    chmodSync(cache, 0o777);
    const loader = createNativeAddonLoader({
      env: { OUTPOST_NATIVE_CACHE: cache },
      assets: realAssets(),
      readMountInfo: noMounts,
    });
    assert.throws(
      () => loader.load('better-sqlite3'),
      (e: unknown) => e instanceof NativeAddonError && e.code === 'NATIVE_CACHE_UNSAFE' && e.message.includes(cache),
    );
    const foreign = createNativeAddonLoader({
      env: { OUTPOST_NATIVE_CACHE: join(scratch, 'foreign') },
      assets: realAssets(),
      uid: 4242,
      readMountInfo: noMounts,
    });
    assert.throws(
      () => foreign.load('serialport'),
      (e: unknown) => e instanceof NativeAddonError && e.code === 'NATIVE_CACHE_UNSAFE',
    );
  });

  it('reports NATIVE_ASSET_MISSING for a binary built without the asset', () => {
    const loader = createNativeAddonLoader({
      env: { OUTPOST_NATIVE_CACHE: join(scratch, 'missing') },
      assets: {
        isSea: () => true,
        getRawAsset: () => {
          throw new Error('no such asset');
        },
      },
      readMountInfo: noMounts,
    });
    assert.throws(
      () => loader.load('better-sqlite3'),
      (e: unknown) => e instanceof NativeAddonError && e.code === 'NATIVE_ASSET_MISSING',
    );
  });

  it('reports NATIVE_LOAD_FAILED when the asset is not a loadable library', () => {
    const loader = createNativeAddonLoader({
      env: { OUTPOST_NATIVE_CACHE: join(scratch, 'junk') },
      assets: { isSea: () => true, getRawAsset: () => new TextEncoder().encode('not ELF').buffer as ArrayBuffer },
      readMountInfo: noMounts,
    });
    assert.throws(
      () => loader.load('serialport'),
      (e: unknown) => e instanceof NativeAddonError && e.code === 'NATIVE_LOAD_FAILED',
    );
  });
});

describe('createNativeAddonLoader (development)', () => {
  it('loads the prebuilds from node_modules and has no cache directory', () => {
    const loader = createNativeAddonLoader({ env: {} });
    assert.equal(typeof (loader.load('better-sqlite3') as { Database?: unknown }).Database, 'function');
    assert.equal(typeof (loader.load('serialport') as { open?: unknown }).open, 'function');
    assert.equal(loader.cacheDir(), undefined);
  });
});
