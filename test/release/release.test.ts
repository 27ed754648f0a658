// Release signing: the committed install.sh.minisig verifies against install.sh (nothing is re-signed here, so
// editing install.sh without `npm run release -- --sign-installer` fails), the trust anchor is the same key
// everywhere, and writeRelease() lays out a release whose every signature and checksum verifies.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  publicKeyLine,
  ReleaseError,
  releasePublicKeyFile,
  trustedComment,
  UNIT_ROLES,
  verifyFile,
  writeRelease,
} from '../../scripts/release-layout.ts';
import { REPO_ROOT } from '../support/binaries.ts';
import { releaseKeyPath, throwawayKeyPair } from '../support/release-key.ts';

const PUB = releasePublicKeyFile(REPO_ROOT);
const INSTALL_SH = join(REPO_ROOT, 'install.sh');

describe('the committed installer signature', () => {
  it('install.sh.minisig verifies against install.sh with release/outpost-release.pub', () => {
    const r = spawnSync('minisign', ['-Vm', INSTALL_SH, '-p', PUB], { encoding: 'utf8' });
    assert.equal(
      r.status,
      0,
      `install.sh.minisig does not match install.sh: after editing install.sh, re-sign it with\n` +
        `  OUTPOST_RELEASE_KEY=/path/to/outpost-release.key npm run release -- --sign-installer\n${r.stderr}`,
    );
    assert.match(r.stdout, /Trusted comment: outpost file=install\.sh\n/);
  });

  it('install.sh embeds, and the README prints, the key in release/outpost-release.pub', async () => {
    const key = await publicKeyLine(PUB);
    assert.equal(key, 'RWRSBNmlJ7y+TIc4VMtYJ9ITJc9ZblYPND5uvLoh0Ji4DwY5Zt0umrtw');
    const script = readFileSync(INSTALL_SH, 'utf8');
    assert.ok(script.includes(`\n  PUBKEY=${key}\n`), 'install.sh PUBKEY=');
    assert.ok(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8').includes(key), 'README quick start');
    assert.ok(readFileSync(join(REPO_ROOT, 'docs/install.md'), 'utf8').includes(key), 'docs/install.md');
  });

  it('no secret key is committed (or about to be)', () => {
    // Built from parts so that this file does not match itself.
    const marker = ['minisign', 'encrypted secret key'].join(' ');
    const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    for (const file of r.stdout.split('\n').filter(Boolean)) {
      const full = join(REPO_ROOT, file);
      if (!existsSync(full) || lstatSync(full).isSymbolicLink() || statSync(full).size > 1_000_000) continue;
      assert.ok(!readFileSync(full, 'latin1').includes(marker), `${file} holds a minisign secret key`);
    }
  });
});

describe('writeRelease', () => {
  let scratch: string;
  let key: string;
  let fakeBinary: string;
  before(() => {
    key = releaseKeyPath();
    scratch = mkdtempSync(join(tmpdir(), 'outpost-release-test-'));
    // Any bytes stand in for the binary here: the layout and its signatures are under test, not the binary.
    fakeBinary = join(scratch, 'bin');
    writeFileSync(fakeBinary, Buffer.from('\x7fELF release layout test\n'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('signs every file with the release key, binding file name and version', async () => {
    const out = join(scratch, 'out');
    await writeRelease({
      root: REPO_ROOT,
      outDir: out,
      version: '1.2.3',
      binaries: { arm64: fakeBinary },
      keyPath: key,
    });
    const dir = join(out, '1.2.3');
    const names = ['outpost-linux-arm64', ...UNIT_ROLES.map((r) => `outpost-${r}.service`), 'SHA256SUMS'];
    assert.deepEqual(readdirSync(dir).sort(), [...names, ...names.map((n) => `${n}.minisig`)].sort());
    for (const n of names) assert.equal(await verifyFile(PUB, join(dir, n)), trustedComment(n, '1.2.3'));
    assert.equal(readFileSync(join(out, 'latest'), 'utf8'), '1.2.3\n');
    assert.equal(await verifyFile(PUB, join(out, 'latest')), 'outpost file=latest version=1.2.3');
    assert.equal(await verifyFile(PUB, join(out, 'install.sh')), 'outpost file=install.sh');
    assert.deepEqual(readFileSync(join(out, 'install.sh.minisig')), readFileSync(`${INSTALL_SH}.minisig`));
    const check = spawnSync('sha256sum', ['--check', '--strict', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  it('keeps older versions and moves latest only when asked', async () => {
    const out = join(scratch, 'two');
    await writeRelease({ root: REPO_ROOT, outDir: out, version: '1.0.0', binaries: { x64: fakeBinary }, keyPath: key });
    await writeRelease({
      root: REPO_ROOT,
      outDir: out,
      version: '1.1.0-rc.1',
      binaries: { x64: fakeBinary },
      keyPath: key,
      latest: false,
    });
    assert.deepEqual(
      readdirSync(out)
        .filter((n) => /^\d/.test(n))
        .sort(),
      ['1.0.0', '1.1.0-rc.1'],
    );
    assert.equal(readFileSync(join(out, 'latest'), 'utf8'), '1.0.0\n');
  });

  it('refuses a secret key whose signatures the committed public key does not accept', async () => {
    const wrong = throwawayKeyPair(scratch);
    await assert.rejects(
      writeRelease({
        root: REPO_ROOT,
        outDir: join(scratch, 'wrong'),
        version: '1.0.0',
        binaries: { x64: fakeBinary },
        keyPath: wrong.secretKeyFile,
      }),
      (e: unknown) => e instanceof ReleaseError && e.code === 'RELEASE_KEY_MISMATCH',
    );
  });

  it('refuses a missing key and a malformed version with typed errors', async () => {
    const base = { root: REPO_ROOT, outDir: join(scratch, 'x'), binaries: {} };
    await assert.rejects(
      writeRelease({ ...base, version: '1.0.0', keyPath: join(scratch, 'absent.key') }),
      (e: unknown) => e instanceof ReleaseError && e.code === 'RELEASE_NO_KEY',
    );
    for (const version of ['../1.0.0', '.hidden', '1.0/0', '']) {
      await assert.rejects(
        writeRelease({ ...base, version, keyPath: key }),
        (e: unknown) => e instanceof ReleaseError && e.code === 'RELEASE_BAD_VERSION',
      );
    }
  });
});
