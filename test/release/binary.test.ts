// The single binaries: `version` and `selftest` on linux-x64 natively and on linux-arm64 under qemu as a Pi 4
// CPU (Cortex-A72), plus how the native-addon cache behaves inside the binary.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SelftestReport } from '../../cli/commands/selftest.ts';
import { RUNTIME_V8_FLAGS } from '../../cli/runtime-flags.ts';
import { NODE_VERSION } from '../../scripts/sea-build.ts';
import { ensureBinaries, runBinary, type TestBinaries } from '../support/binaries.ts';

/** Section names of an ELF64 little-endian file (System V ABI: section headers, then .shstrtab). */
function elfSectionNames(file: string): string[] {
  const b = readFileSync(file);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const strtab = Number(b.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18));
  const names: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const nameOff = b.readUInt32LE(shoff + i * shentsize);
    const end = b.indexOf(0, strtab + nameOff);
    names.push(b.toString('latin1', strtab + nameOff, end));
  }
  return names;
}

let bins: TestBinaries;
let scratch: string;

before(async () => {
  bins = await ensureBinaries();
  scratch = mkdtempSync(join(tmpdir(), 'outpost-bin-test-'));
  if (bins.built) process.stderr.write(`# built both binaries in ${((bins.buildMs ?? 0) / 1000).toFixed(1)} s\n`);
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function envWithCache(cache: string): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: scratch, OUTPOST_NATIVE_CACHE: cache, TMPDIR: scratch };
}

for (const arch of ['x64', 'arm64'] as const) {
  describe(`outpost-linux-${arch}`, () => {
    it('is a stripped ELF for its architecture', () => {
      const head = readFileSync(bins.path[arch]).subarray(0, 20);
      assert.equal(head.readUInt16LE(18), arch === 'x64' ? 62 : 183);
      assert.ok(statSync(bins.path[arch]).mode & 0o111, 'executable');
      const sections = elfSectionNames(bins.path[arch]);
      assert.ok(sections.includes('.text'), 'section headers parsed');
      assert.ok(!sections.includes('.symtab'), 'no symbol table: stripped');
    });

    it('prints its version', async () => {
      const r = await runBinary(arch, bins.path[arch], ['version', '--json'], {
        env: envWithCache(join(scratch, arch)),
      });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { version: bins.version, node: NODE_VERSION, platform: 'linux', arch });
      assert.equal(r.stderr, '', 'no SEA or code-cache warnings');
    });

    it('passes its self-test (SQLite, serial binding, signatures, WSS loopback)', async () => {
      const cache = join(scratch, `${arch}-selftest`);
      const r = await runBinary(arch, bins.path[arch], ['selftest', '--json'], { env: envWithCache(cache) });
      const report = JSON.parse(r.stdout) as SelftestReport;
      assert.deepEqual(
        report.checks.filter((c) => !c.ok),
        [],
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(report.mode, 'binary');
      assert.equal(report.arch, arch);
      assert.deepEqual(
        report.checks.map((c) => c.name),
        ['sqlite', 'serialport', 'signing', 'wss'],
      );
      assert.equal(report.nativeCache, cache);
      // The V8 flags the binary embeds (its SEA execArgv) are in force.
      for (const flag of RUNTIME_V8_FLAGS) assert.ok(report.execArgv.includes(flag), `${flag} in ${report.execArgv}`);
      // One content-hashed directory per addon, holding exactly the addon.
      const dirs = readdirSync(cache).sort();
      assert.equal(dirs.length, 2);
      assert.match(dirs[0]!, new RegExp(`^better-sqlite3-${arch}-[0-9a-f]{16}$`));
      assert.match(dirs[1]!, new RegExp(`^serialport-${arch}-[0-9a-f]{16}$`));
    });
  });
}

describe('native addon cache inside the binary', () => {
  it('reuses the extracted addons and replaces a corrupted one', async () => {
    const cache = join(scratch, 'reuse');
    const env = envWithCache(cache);
    const first = await runBinary('x64', bins.path.x64, ['selftest', '--json'], { env });
    assert.equal(first.status, 0, first.stderr);
    const dir = readdirSync(cache).find((d) => d.startsWith('better-sqlite3-'))!;
    const file = join(cache, dir, 'better_sqlite3.node');
    const inode = statSync(file).ino;
    const again = await runBinary('x64', bins.path.x64, ['selftest', '--json'], { env });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(statSync(file).ino, inode, 'an intact cached addon is not rewritten');

    chmodSync(file, 0o600);
    writeFileSync(file, 'not an ELF file');
    const repaired = await runBinary('x64', bins.path.x64, ['selftest', '--json'], { env });
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.notEqual(statSync(file).ino, inode, 'a corrupted addon is replaced');
    assert.equal(statSync(file).mode & 0o777, 0o500);
  });

  it('fails with a clear error when the cache directory cannot be written', async () => {
    const blocker = join(scratch, 'a-file');
    writeFileSync(blocker, '');
    const r = await runBinary('x64', bins.path.x64, ['selftest', '--json'], {
      env: envWithCache(join(blocker, 'sub')),
    });
    assert.equal(r.status, 1);
    const report = JSON.parse(r.stdout) as SelftestReport;
    const sqlite = report.checks.find((c) => c.name === 'sqlite')!;
    assert.equal(sqlite.ok, false);
    assert.equal(sqlite.code, 'NATIVE_CACHE_UNWRITABLE');
    assert.match(sqlite.detail, /OUTPOST_NATIVE_CACHE/);
  });

  it('`version` needs no native addon, so it works with no writable cache', async () => {
    const blocker = join(scratch, 'b-file');
    writeFileSync(blocker, '');
    const r = await runBinary('x64', bins.path.x64, ['version'], { env: envWithCache(join(blocker, 'sub')) });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^outpost ${bins.version.replace(/\./g, '\\.')} \\(node ${NODE_VERSION}, linux-x64\\)`),
    );
  });
});
