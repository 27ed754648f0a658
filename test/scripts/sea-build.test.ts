// The binary build's pure parts and input checks: cache location, pinned Node bases, per-arch native assets that
// really are for their arch, and the esbuild bundle of the CLI (no stray node-gyp-build users, version inlined).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ARCHS,
  assertElfArch,
  BuildError,
  bundleCli,
  defaultBuildCacheDir,
  NODE_BASE,
  NODE_VERSION,
  nativeAssetPaths,
} from '../../scripts/sea-build.ts';
import { REPO_ROOT } from '../support/binaries.ts';

const scratch = mkdtempSync(join(tmpdir(), 'outpost-sea-build-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('defaultBuildCacheDir', () => {
  const table: Array<[string, Record<string, string>, string]> = [
    ['OUTPOST_BUILD_CACHE wins', { OUTPOST_BUILD_CACHE: '/c', HOME: '/h' }, '/c'],
    ['then XDG_CACHE_HOME', { XDG_CACHE_HOME: '/x', HOME: '/h' }, '/x/outpost-build'],
    ['then ~/.cache', { HOME: '/h' }, '/h/.cache/outpost-build'],
  ];
  for (const [name, env, want] of table) it(name, () => assert.equal(defaultBuildCacheDir(env), want));
});

describe('inputs', () => {
  it('pins one Node version for both arches, with sha512 integrity', () => {
    for (const arch of ARCHS) {
      assert.equal(NODE_BASE[arch].spec, `node-linux-${arch}@${NODE_VERSION}`);
      assert.match(NODE_BASE[arch].integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
    }
  });

  for (const arch of ARCHS) {
    it(`embeds linux-${arch} ELF prebuilds for linux-${arch}`, async () => {
      const assets = nativeAssetPaths(REPO_ROOT, arch);
      assert.deepEqual(Object.keys(assets).sort(), ['better_sqlite3.node', 'serialport.node']);
      for (const file of Object.values(assets)) {
        assert.ok(existsSync(file), file);
        await assertElfArch(file, arch);
        const other = arch === 'x64' ? 'arm64' : 'x64';
        await assert.rejects(
          assertElfArch(file, other),
          (e: unknown) => e instanceof BuildError && e.code === 'BUILD_BAD_INPUT',
        );
      }
    });
  }

  it('rejects a file that is not ELF at all', async () => {
    const file = join(scratch, 'not-elf');
    writeFileSync(file, '#!/bin/sh\n');
    await assert.rejects(
      assertElfArch(file, 'x64'),
      (e: unknown) => e instanceof BuildError && e.code === 'BUILD_BAD_INPUT',
    );
  });
});

describe('bundleCli', () => {
  it('produces one CommonJS file that runs the CLI with the version inlined', async () => {
    const out = join(scratch, 'outpost.cjs');
    const warnings: string[] = [];
    const bytes = await bundleCli(REPO_ROOT, out, '9.8.7-test', (l) => warnings.push(l));
    assert.deepEqual(warnings, []);
    assert.ok(bytes > 10_000);
    assert.ok(!readFileSync(out, 'utf8').includes('import.meta'), 'no import.meta left in CommonJS');
    const r = spawnSync(process.execPath, [out, 'version', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { version: string }).version, '9.8.7-test');
  });
});
