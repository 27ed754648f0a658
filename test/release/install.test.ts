// install.sh for real: a release built from the real binary and signed with the real release key, served over
// HTTP on 127.0.0.1, installed with the real minisign under dash and busybox sh into a temporary --root.
// Every failure must leave nothing installed and no temporary files behind.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { signFile, trustedComment, writeRelease } from '../../scripts/release-layout.ts';
import { ensureBinaries, REPO_ROOT, type TestBinaries } from '../support/binaries.ts';
import { releaseKeyPath, throwawayKeyPair } from '../support/release-key.ts';
import { type ReleaseServer, serveRelease } from '../support/release-server.ts';

const INSTALL_SH = join(REPO_ROOT, 'install.sh');
const MAX_LINES = 350;
const SHELLS: Record<string, string[]> = { dash: ['dash'], busybox: ['busybox', 'sh'] };

let bins: TestBinaries;
let next: TestBinaries;
let scratch: string;
let server: ReleaseServer;
/** Base URLs: the good release, and one signed with a throwaway key. */
let good: string;
let wrongKey: string;
let version: string;
let nextVersion: string;

before(async () => {
  const key = releaseKeyPath();
  bins = await ensureBinaries();
  version = bins.version;
  nextVersion = `${version}-next.1`;
  next = await ensureBinaries({ version: nextVersion, archs: ['x64'] });
  scratch = mkdtempSync(join(tmpdir(), 'outpost-install-test-'));
  const web = join(scratch, 'web');
  await writeRelease({
    root: REPO_ROOT,
    outDir: join(web, 'good'),
    version,
    binaries: { x64: bins.path.x64 },
    keyPath: key,
  });
  await writeRelease({
    root: REPO_ROOT,
    outDir: join(web, 'good'),
    version: nextVersion,
    binaries: { x64: next.path.x64 },
    keyPath: key,
    latest: false,
  });
  // The same files, signed by a key the installer does not trust (the binary hard-linked, not copied).
  const wrong = throwawayKeyPair(scratch);
  mkdirSync(join(web, 'wrong', version), { recursive: true });
  linkSync(join(web, 'good', version, 'outpost-linux-x64'), join(web, 'wrong', version, 'outpost-linux-x64'));
  copyFileSync(
    join(web, 'good', version, 'outpost-agent.service'),
    join(web, 'wrong', version, 'outpost-agent.service'),
  );
  copyFileSync(join(web, 'good', 'latest'), join(web, 'wrong', 'latest'));
  for (const name of ['latest', `${version}/outpost-linux-x64`, `${version}/outpost-agent.service`]) {
    await signFile(wrong.secretKeyFile, join(web, 'wrong', name), trustedComment(name.split('/').at(-1)!, version));
  }
  server = await serveRelease(web);
  good = `${server.origin}/good`;
  wrongKey = `${server.origin}/wrong`;
});

after(async () => {
  await server?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Roots and temp dirs of the current test: removed after each test, so ~110 MB copies never pile up on disk. */
const runDirs: string[] = [];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  root: string;
  tmp: string;
}

/** A directory of links to every command on PATH except `without` (so that, e.g., minisign is missing). */
function toolDir(without: readonly string[], extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(scratch, 'tools-'));
  for (const p of (process.env.PATH ?? '').split(delimiter)) {
    if (!p || !existsSync(p)) continue;
    for (const name of readdirSync(p)) {
      if (without.includes(name) || name in extra || existsSync(join(dir, name))) continue;
      symlinkSync(join(p, name), join(dir, name));
    }
  }
  for (const [name, target] of Object.entries(extra)) symlinkSync(target, join(dir, name));
  return dir;
}

function install(
  shell: string,
  args: readonly string[],
  options: { root?: string; path?: string; input?: string; traceExecve?: string } = {},
): Promise<Run> {
  const root = options.root ?? mkdtempSync(join(scratch, 'root-'));
  const tmp = mkdtempSync(join(scratch, 'tmp-'));
  runDirs.push(root, tmp);
  const argv = [...SHELLS[shell]!, INSTALL_SH, `--root=${root}`, ...args];
  if (options.traceExecve)
    argv.unshift('strace', '-f', '-qq', '-e', 'trace=execve', '-s', '4096', '-o', options.traceExecve);
  // Always asynchronous: the release server runs in this process and must keep answering.
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: options.path ?? process.env.PATH, TMPDIR: tmp, HOME: scratch },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr, root, tmp }));
    // The installer may exit (a usage error) before reading its standard input: EPIPE is expected then.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Every path under `dir`, relative, sorted. */
function tree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    out.push(rel);
    const st = lstatSync(join(dir, name));
    if (st.isDirectory()) out.push(...tree(join(dir, name), rel));
  }
  return out;
}

function assertFailedCleanly(r: Run, reason: RegExp): void {
  assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, reason);
  assert.deepEqual(tree(r.root), [], 'nothing installed under --root');
  assert.deepEqual(tree(r.tmp), [], 'no temporary files left');
}

function assertInstalled(r: Run, v: string): void {
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const opt = join(r.root, 'opt/outpost');
  assert.equal(readlinkSync(join(opt, 'current')), `versions/${v}/outpost`);
  assert.equal(readlinkSync(join(r.root, 'usr/local/bin/outpost')), '/opt/outpost/current');
  const binary = v === version ? bins.path.x64 : next.path.x64;
  assert.ok(readFileSync(join(opt, 'versions', v, 'outpost')).equals(readFileSync(binary)), 'the released binary');
  assert.equal(statSync(join(opt, 'versions', v, 'outpost')).mode & 0o777, 0o755);
  const unit = join(r.root, 'etc/systemd/system/outpost-agent.service');
  assert.equal(readFileSync(unit, 'utf8'), readFileSync(join(REPO_ROOT, 'systemd/outpost-agent.service'), 'utf8'));
  assert.equal(statSync(join(r.root, 'etc/outpost')).mode & 0o777, 0o750);
  assert.equal(statSync(join(r.root, 'etc/outpost/agent.toml')).mode & 0o777, 0o640);
  assert.deepEqual(tree(r.tmp), [], 'no temporary files left');
  const ran = spawnSync(join(opt, 'current'), ['version'], {
    encoding: 'utf8',
    env: { OUTPOST_NATIVE_CACHE: join(r.tmp, 'native') },
  });
  assert.match(ran.stdout, new RegExp(`^outpost ${v.replace(/[.+]/g, '\\$&')} `));
  rmSync(join(r.tmp, 'native'), { recursive: true, force: true });
}

describe('install.sh as a file', () => {
  it(`is at most ${MAX_LINES} lines, set -eu, with all code in main() and main "$@" last`, () => {
    const text = readFileSync(INSTALL_SH, 'utf8');
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    assert.ok(lines.length <= MAX_LINES, `${lines.length} lines`);
    assert.equal(lines[0], '#!/bin/sh');
    assert.equal(lines.at(-1), 'main "$@"');
    const code = lines.filter((l) => l.trim() !== '' && !l.startsWith('#'));
    assert.equal(code[0], 'set -eu');
    assert.equal(code[1], 'main() {');
    assert.equal(code.at(-2), '}', 'nothing between the end of main() and the call');
    for (const option of ['--enroll-token-file', '--enroll-token=-', '--version', '--base-url', '--role', '--root']) {
      assert.ok(
        lines.slice(0, 30).some((l) => l.startsWith('#') && l.includes(option)),
        `header documents ${option}`,
      );
    }
  });

  it('is shellcheck clean as POSIX sh', () => {
    const r = spawnSync('shellcheck', ['--shell=sh', '--severity=style', INSTALL_SH], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout);
  });

  for (const shell of Object.keys(SHELLS)) {
    it(`parses under ${shell} and prints its help`, async () => {
      const r = await install(shell, ['--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Outpost installer/);
      assert.match(r.stdout, /--enroll-token-file=PATH/);
    });
  }
});

for (const shell of Object.keys(SHELLS)) {
  describe(`install.sh under ${shell}`, () => {
    afterEach(() => {
      for (const dir of runDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    });

    it('installs the latest release, verified, into --root', async () => {
      const r = await install(shell, [`--base-url=${good}`]);
      assertInstalled(r, version);
      assert.match(r.stdout, /no enroll token given: enrollment skipped/);
      assert.match(r.stdout, /systemd is not in charge here/);
      assert.ok(!existsSync(join(r.root, 'opt/outpost/previous')));
      // systemd accepts the installed unit, its ExecStart resolving through the symlinks inside the root.
      mkdirSync(join(r.root, 'usr/lib/systemd'), { recursive: true });
      cpSync('/usr/lib/systemd/system', join(r.root, 'usr/lib/systemd/system'), { recursive: true });
      const verify = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${r.root}`, 'outpost-agent.service'], {
        encoding: 'utf8',
      });
      assert.equal(verify.status, 0, verify.stderr);
      assert.equal(verify.stderr, '');
    });

    it('re-running is idempotent and keeps the configuration', async () => {
      const first = await install(shell, [`--base-url=${good}`]);
      assertInstalled(first, version);
      const conf = join(first.root, 'etc/outpost/agent.toml');
      writeFileSync(conf, 'url = "https://cp.example"\n');
      const binary = join(first.root, 'opt/outpost/versions', version, 'outpost');
      const inode = statSync(binary).ino;
      const again = await install(shell, [`--base-url=${good}`, `--version=${version}`], { root: first.root });
      assertInstalled(again, version);
      assert.equal(statSync(binary).ino, inode, 'the identical binary is not rewritten');
      assert.equal(readFileSync(conf, 'utf8'), 'url = "https://cp.example"\n');
      assert.ok(!existsSync(join(first.root, 'opt/outpost/previous')), 'no version switch happened');
    });

    it('upgrades keeping state and config, rolls back, and rolls forward again', async () => {
      const first = await install(shell, [`--base-url=${good}`]);
      assertInstalled(first, version);
      const state = join(first.root, 'var/lib/outpost/agent');
      mkdirSync(state, { recursive: true });
      writeFileSync(join(state, 'outbox.db'), 'queued telemetry');
      writeFileSync(join(first.root, 'etc/outpost/agent.toml'), 'mine = true\n');
      const up = await install(shell, [`--base-url=${good}`, `--version=${nextVersion}`], { root: first.root });
      assertInstalled(up, nextVersion);
      const opt = join(first.root, 'opt/outpost');
      assert.equal(readlinkSync(join(opt, 'previous')), `versions/${version}/outpost`);
      assert.equal(readFileSync(join(state, 'outbox.db'), 'utf8'), 'queued telemetry');
      assert.equal(readFileSync(join(first.root, 'etc/outpost/agent.toml'), 'utf8'), 'mine = true\n');

      const back = await install(shell, ['--rollback'], { root: first.root });
      assert.equal(back.status, 0, back.stderr);
      assert.match(back.stdout, new RegExp(`rolled back to outpost ${version.replace(/\./g, '\\.')}`));
      assert.equal(readlinkSync(join(opt, 'current')), `versions/${version}/outpost`);
      assert.equal(readlinkSync(join(opt, 'previous')), `versions/${nextVersion}/outpost`);
      const forward = await install(shell, ['--rollback'], { root: first.root });
      assert.equal(forward.status, 0, forward.stderr);
      assert.equal(readlinkSync(join(opt, 'current')), `versions/${nextVersion}/outpost`);
      assert.equal(readFileSync(join(state, 'outbox.db'), 'utf8'), 'queued telemetry');
    });

    it('--rollback without a previous version fails and changes nothing', async () => {
      const first = await install(shell, [`--base-url=${good}`]);
      assertInstalled(first, version);
      const before = tree(first.root);
      const r = await install(shell, ['--rollback'], { root: first.root });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /no previous version/);
      assert.deepEqual(tree(first.root), before);
    });

    it('--uninstall removes Outpost but keeps config and state; --purge removes those too', async () => {
      const first = await install(shell, [`--base-url=${good}`]);
      assertInstalled(first, version);
      mkdirSync(join(first.root, 'var/lib/outpost/agent'), { recursive: true });
      const r = await install(shell, ['--uninstall'], { root: first.root });
      assert.equal(r.status, 0, r.stderr);
      for (const gone of ['opt/outpost', 'usr/local/bin/outpost', 'etc/systemd/system/outpost-agent.service']) {
        assert.ok(!existsSync(join(first.root, gone)), `${gone} removed`);
      }
      for (const kept of ['etc/outpost/agent.toml', 'var/lib/outpost/agent']) {
        assert.ok(existsSync(join(first.root, kept)), `${kept} kept`);
      }
      assert.match(r.stdout, /kept .*etc\/outpost/);
      const purge = await install(shell, ['--uninstall', '--purge'], { root: first.root });
      assert.equal(purge.status, 0, purge.stderr);
      assert.ok(!existsSync(join(first.root, 'etc/outpost')) && !existsSync(join(first.root, 'var/lib/outpost')));
    });

    it('refuses a tampered binary', async () => {
      const path = `/good/${version}/outpost-linux-x64`;
      const body = readFileSync(bins.path.x64);
      body[body.length >> 1]! ^= 0x01;
      server.faults.set(path, { kind: 'body', body });
      try {
        assertFailedCleanly(await install(shell, [`--base-url=${good}`]), /signature verification FAILED/);
      } finally {
        server.faults.delete(path);
      }
    });

    it('refuses a tampered upgrade and leaves the installed version untouched', async () => {
      const first = await install(shell, [`--base-url=${good}`]);
      assertInstalled(first, version);
      const before = tree(first.root);
      const path = `/good/${nextVersion}/outpost-linux-x64`;
      const body = readFileSync(next.path.x64);
      body[body.length - 100]! ^= 0x80;
      server.faults.set(path, { kind: 'body', body });
      try {
        const r = await install(shell, [`--base-url=${good}`, `--version=${nextVersion}`], { root: first.root });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /signature verification FAILED/);
        assert.deepEqual(tree(first.root), before);
        assert.equal(readlinkSync(join(first.root, 'opt/outpost/current')), `versions/${version}/outpost`);
        assert.deepEqual(tree(r.tmp), []);
      } finally {
        server.faults.delete(path);
      }
    });

    it('refuses a release signed with another key', async () => {
      assertFailedCleanly(
        await install(shell, [`--base-url=${wrongKey}`]),
        /signature verification FAILED for .*latest/,
      );
      assertFailedCleanly(
        await install(shell, [`--base-url=${wrongKey}`, `--version=${version}`]),
        /signature verification FAILED for .*outpost-linux-x64/,
      );
    });

    it('refuses a validly signed file served under another version (replay)', async () => {
      const path = `/good/${nextVersion}/outpost-linux-x64`;
      server.faults.set(path, { kind: 'body', body: readFileSync(bins.path.x64) });
      server.faults.set(`${path}.minisig`, {
        kind: 'body',
        body: readFileSync(join(scratch, 'web/good', version, 'outpost-linux-x64.minisig')),
      });
      try {
        assertFailedCleanly(
          await install(shell, [`--base-url=${good}`, `--version=${nextVersion}`]),
          new RegExp(
            `signature of .* is for "outpost file=outpost-linux-x64 version=${version.replace(/\./g, '\\.')}"`,
          ),
        );
      } finally {
        server.faults.delete(path);
        server.faults.delete(`${path}.minisig`);
      }
    });

    it('refuses a binary without its .minisig', async () => {
      const path = `/good/${version}/outpost-linux-x64.minisig`;
      server.faults.set(path, { kind: 'status', status: 404 });
      try {
        assertFailedCleanly(await install(shell, [`--base-url=${good}`]), /unsigned files are never installed/);
      } finally {
        server.faults.delete(path);
      }
    });

    it('refuses truncated downloads, announced or not', async () => {
      const path = `/good/${version}/outpost-linux-x64`;
      try {
        server.faults.set(path, { kind: 'truncate' });
        assertFailedCleanly(await install(shell, [`--base-url=${good}`]), /download failed: .*outpost-linux-x64/);
        server.faults.set(path, { kind: 'short' });
        assertFailedCleanly(await install(shell, [`--base-url=${good}`]), /signature verification FAILED/);
      } finally {
        server.faults.delete(path);
      }
    });

    it('fails on HTTP 404 and 500', async () => {
      assertFailedCleanly(
        await install(shell, [`--base-url=${good}`, '--version=9.9.9']),
        /download failed: .*9\.9\.9/,
      );
      server.faults.set('/good/latest', { kind: 'status', status: 500 });
      try {
        assertFailedCleanly(await install(shell, [`--base-url=${good}`]), /download failed: .*latest/);
      } finally {
        server.faults.delete('/good/latest');
      }
    });

    it('fails before downloading anything when minisign is missing, and says how to get it', async () => {
      const before = server.requests.length;
      const r = await install(shell, [`--base-url=${good}`], { path: toolDir(['minisign']) });
      assertFailedCleanly(r, /apt install minisign/);
      assert.equal(server.requests.length, before, 'no request was made');
    });

    it('downloads with wget when curl is absent', async () => {
      const extra: Record<string, string> = shell === 'busybox' ? { wget: '/usr/bin/busybox' } : {};
      const r = await install(shell, [`--base-url=${good}`], { path: toolDir(['curl'], extra) });
      assertInstalled(r, version);
    });

    it('rejects bad options with the usage exit code', async () => {
      for (const args of [['--role=toaster'], ['--bogus'], ['--version=../etc'], ['--prefix=relative'], ['--purge']]) {
        const r = await install(shell, args);
        assert.equal(r.status, 64, `${args.join(' ')}: ${r.stderr}`);
        assert.deepEqual(tree(r.root), []);
      }
    });

    const withToken = (token: string, traceExecve?: string) =>
      install(shell, [`--base-url=${good}`, '--url=http://127.0.0.1:9', '--enroll-token=-'], {
        input: `${token}\n`,
        ...(traceExecve ? { traceExecve } : {}),
      });

    it('hands an enroll token to `outpost enroll` and leaves it in no file', async () => {
      const token = `tok-${shell}-Zq8rN2vX`;
      const r = await withToken(token);
      // The binary was verified and installed before enrollment ran.
      assert.equal(readlinkSync(join(r.root, 'opt/outpost/current')), `versions/${version}/outpost`);
      if (spawnSync(join(r.root, 'opt/outpost/current'), ['enroll', '--help']).status !== 0) {
        // This build has no `outpost enroll` yet: the installer says enrollment failed and keeps the install.
        assert.equal(r.status, 1);
        assert.match(r.stderr, /enrollment with http:\/\/127\.0\.0\.1:9 failed \(outpost .* is installed/);
      }
      for (const file of tree(r.root)) {
        const full = join(r.root, file);
        if (lstatSync(full).isFile()) assert.ok(!readFileSync(full).includes(token), `${file} holds the token`);
      }
      assert.deepEqual(tree(r.tmp), [], 'no temporary files left');
    });

    const hasStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
    it('puts the enroll token on no command line: `outpost enroll --url URL --token-file -` reads it from a pipe', {
      skip: hasStrace ? false : 'strace is not installed',
    }, async () => {
      const token = `tok-${shell}-Lk3pW9sB`;
      const log = join(mkdtempSync(join(scratch, 'trace-')), 'execve.log');
      await withToken(token, log);
      const execs = readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => /execve\(/.test(l) && !/ENOENT/.test(l));
      assert.ok(
        execs.some((l) => l.includes('"enroll", "--url", "http://127.0.0.1:9", "--token-file", "-"')),
        'outpost enroll --url URL --token-file - was run',
      );
      assert.deepEqual(
        execs.filter((l) => l.includes(token)),
        [],
        'the token is on no command line',
      );
    });
  });
}
