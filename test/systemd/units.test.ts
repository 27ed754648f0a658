// The systemd units: required directives, `systemd-analyze verify` against a root holding the real binary,
// `systemd-analyze security --offline` exposure <= 2.0, every system call the binary makes allowed by the units'
// SystemCallFilter=, and why MemoryDenyWriteExecute= stays off (V8's JIT aborts under it).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureBinaries, REPO_ROOT, type TestBinaries } from '../support/binaries.ts';
import { openNotifySocket } from '../support/notify-socket.ts';

const ROLES = ['agent', 'gateway', 'controlplane'] as const;
/** The exposure score the project promises for every unit (docs/operations.md). */
const MAX_EXPOSURE = 2.0;

type UnitFile = Map<string, Map<string, string[]>>;

/** Parses a unit file into section → key → values (repeated keys accumulate, as systemd does for lists). */
function parseUnit(text: string): UnitFile {
  const unit: UnitFile = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `bad line ${JSON.stringify(raw)}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

function unitPath(role: string): string {
  return join(REPO_ROOT, 'systemd', `outpost-${role}.service`);
}

function service(role: string): Map<string, string[]> {
  return parseUnit(readFileSync(unitPath(role), 'utf8')).get('Service')!;
}

function run(cmd: string, args: string[], env?: Record<string, string | undefined>) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return r;
}

let bins: TestBinaries;
let scratch: string;
before(async () => {
  bins = await ensureBinaries();
  scratch = mkdtempSync(join(tmpdir(), 'outpost-units-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('unit files', () => {
  for (const role of ROLES) {
    it(`outpost-${role}.service has the readiness, restart, directory and sandbox settings`, () => {
      const s = service(role);
      const one = (key: string) => {
        const v = s.get(key);
        assert.ok(v, `${key}= is missing`);
        return v[v.length - 1];
      };
      assert.equal(one('Type'), 'notify');
      assert.equal(one('NotifyAccess'), 'all', 'systemd-notify, a child of the daemon, relays READY/WATCHDOG');
      assert.equal(one('ExecStart'), `/usr/local/bin/outpost ${role} run`);
      assert.equal(one('Restart'), 'on-failure');
      assert.match(one('WatchdogSec')!, /^[0-9]+s$/);
      assert.equal(one('StateDirectory'), `outpost/${role}`);
      assert.equal(one('CacheDirectory'), `outpost/${role}`);
      assert.equal(one('ConfigurationDirectory'), 'outpost');
      assert.equal(one('RuntimeDirectory'), `outpost-${role}`);
      assert.match(one('MemoryMax')!, /^[0-9]+M$/);
      assert.equal(one('LoadCredentialEncrypted'), `outpost-${role}-identity`);
      assert.equal(one('User'), 'outpost');
      for (const [key, want] of [
        ['NoNewPrivileges', 'yes'],
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'yes'],
        ['PrivateTmp', 'yes'],
        ['CapabilityBoundingSet', ''],
        ['ProtectKernelTunables', 'yes'],
        ['ProtectKernelModules', 'yes'],
        ['ProtectKernelLogs', 'yes'],
        ['ProtectControlGroups', 'yes'],
        ['LockPersonality', 'yes'],
        ['RestrictNamespaces', 'yes'],
        ['RestrictSUIDSGID', 'yes'],
        ['SystemCallArchitectures', 'native'],
        ['MemoryDenyWriteExecute', 'no'],
      ] as const) {
        assert.equal(one(key), want, `${key}=`);
      }
      assert.deepEqual(s.get('SystemCallFilter'), ['@system-service', '~@privileged @resources']);
      assert.ok(
        one('RestrictAddressFamilies')!
          .split(' ')
          .every((f) => /^AF_(UNIX|INET|INET6|NETLINK)$/.test(f)),
      );
      if (role === 'gateway') {
        assert.equal(one('PrivateDevices'), 'no');
        assert.equal(one('DevicePolicy'), 'closed');
        assert.deepEqual(s.get('DeviceAllow'), ['char-ttyUSB rw', 'char-ttyACM rw']);
        assert.equal(one('SupplementaryGroups'), 'dialout');
      } else {
        assert.equal(one('PrivateDevices'), 'yes');
        assert.equal(s.get('DeviceAllow'), undefined);
      }
    });
  }
});

describe('systemd-analyze', () => {
  let root: string;
  before(() => {
    // An offline root: the units, the real binary at ExecStart's path, and the host's systemd units
    // (targets such as sysinit.target that every service depends on).
    root = join(scratch, 'root');
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    copyFileSync(bins.path.x64, join(root, 'usr/local/bin/outpost'));
    for (const role of ROLES) copyFileSync(unitPath(role), join(root, `etc/systemd/system/outpost-${role}.service`));
  });

  for (const role of ROLES) {
    it(`verify passes for outpost-${role}.service with no warnings`, () => {
      const r = run('systemd-analyze', ['verify', '--man=no', `--root=${root}`, `outpost-${role}.service`]);
      assert.equal(r.stderr, '');
      assert.equal(r.status, 0);
    });

    it(`security --offline rates outpost-${role}.service at most ${MAX_EXPOSURE}`, () => {
      const r = run('systemd-analyze', ['security', '--offline=yes', '--no-pager', unitPath(role)]);
      const m = /Overall exposure level for outpost-[a-z]+\.service: ([0-9.]+)/.exec(r.stdout);
      assert.ok(m, r.stdout + r.stderr);
      assert.ok(Number(m[1]) <= MAX_EXPOSURE, `exposure ${m[1]} > ${MAX_EXPOSURE}`);
    });
  }

  it('verify fails when the ExecStart binary is missing (the check is real)', () => {
    const bare = join(scratch, 'bare');
    mkdirSync(join(bare, 'etc/systemd/system'), { recursive: true });
    mkdirSync(join(bare, 'usr/lib/systemd'), { recursive: true });
    cpSync('/usr/lib/systemd/system', join(bare, 'usr/lib/systemd/system'), { recursive: true });
    copyFileSync(unitPath('agent'), join(bare, 'etc/systemd/system/outpost-agent.service'));
    const r = run('systemd-analyze', ['verify', '--man=no', `--root=${bare}`, 'outpost-agent.service']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /\/usr\/local\/bin\/outpost is not executable/);
  });
});

/** Expands a systemd syscall set (e.g. @system-service) to syscall names, following nested @sets. */
function syscallSet(name: string, groups: Map<string, string[]>, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  if (seen.has(name)) return out;
  seen.add(name);
  for (const entry of groups.get(name) ?? assert.fail(`unknown syscall set ${name}`)) {
    if (entry.startsWith('@')) for (const s of syscallSet(entry, groups, seen)) out.add(s);
    else out.add(entry);
  }
  return out;
}

function syscallGroups(): Map<string, string[]> {
  const text = run('systemd-analyze', ['syscall-filter', '--no-pager']).stdout;
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    if (/^@[a-z-]+$/.test(line)) {
      current = [];
      groups.set(line, current);
    } else if (current && /^ {4}[@a-z0-9_-]+$/.test(line)) current.push(line.trim());
  }
  return groups;
}

/** System call names in an `strace -f -o` log. */
function tracedSyscalls(log: string): Set<string> {
  return new Set([...log.matchAll(/^\d+ +([a-z0-9_]+)\(/gm)].map((m) => m[1]!));
}

describe('SystemCallFilter= against the system calls the binary really makes', () => {
  const hasStrace = run('sh', ['-c', 'command -v strace']).status === 0;
  const allowed = () => {
    const groups = syscallGroups();
    const allow = syscallSet('@system-service', groups);
    for (const denied of ['@privileged', '@resources']) for (const s of syscallSet(denied, groups)) allow.delete(s);
    return allow;
  };

  it('outpost selftest, run as an unprivileged user like the units, uses only allowed system calls', {
    skip: hasStrace ? false : 'strace is not installed',
  }, () => {
    // As root, SQLite would fchown(2) its journal files to the database owner (@chown is in @privileged);
    // under User=outpost it does not. So run as nobody, with a copy of the binary nobody can reach.
    const dir = join(scratch, 'unprivileged');
    mkdirSync(dir, { recursive: true });
    const binary = join(dir, 'outpost');
    copyFileSync(bins.path.x64, binary);
    chmodSync(scratch, 0o755);
    chmodSync(dir, 0o777);
    const log = join(dir, 'selftest.strace');
    const asUser =
      process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : [];
    const argv = [...asUser, 'strace', '-f', '-qq', '-o', log, binary, 'selftest', '--json'];
    const r = run(argv[0]!, argv.slice(1), {
      PATH: process.env.PATH,
      OUTPOST_NATIVE_CACHE: join(dir, 'native'),
      TMPDIR: dir,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const used = tracedSyscalls(readFileSync(log, 'utf8'));
    assert.ok(used.has('openat') && used.has('connect') && used.has('ioctl'), 'the trace is populated');
    const allow = allowed();
    assert.deepEqual(
      [...used].filter((s) => !allow.has(s)),
      [],
    );
  });

  it('systemd-notify uses only allowed system calls', {
    skip: hasStrace ? false : 'strace is not installed',
  }, async () => {
    const sock = await openNotifySocket(join(scratch, 'notify'));
    try {
      const log = join(scratch, 'notify.strace');
      const r = run('strace', ['-f', '-qq', '-o', log, '/usr/bin/systemd-notify', 'READY=1'], {
        NOTIFY_SOCKET: sock.path,
      });
      assert.equal(r.status, 0, r.stderr);
      await sock.waitFor((m) => m === 'READY=1');
      const allow = allowed();
      assert.deepEqual(
        [...tracedSyscalls(readFileSync(log, 'utf8'))].filter((s) => !allow.has(s)),
        [],
      );
    } finally {
      await sock.close();
    }
  });
});

describe('MemoryDenyWriteExecute= and V8', () => {
  // prctl(PR_SET_MDWE = 65, PR_MDWE_REFUSE_EXEC_GAIN = 1): the kernel's own write-xor-execute (Linux >= 6.3),
  // as strict as systemd's seccomp version for what V8 does; inherited across execve.
  const prctl = process.arch === 'arm64' ? 167 : 157;
  const wrapper = `my $r = syscall(${prctl}, 65, 1, 0, 0, 0); if ($r != 0) { print STDERR "MDWE unsupported: $!\\n"; exit 77 } exec @ARGV or die "exec: $!";`;
  const probe = run('perl', ['-e', wrapper, '/bin/true']);
  const skip = probe.status === 77 ? `kernel lacks PR_SET_MDWE (${probe.stderr.trim()})` : false;

  it('V8 aborts under memory-deny-write-execute, and runs with NODE_OPTIONS=--jitless', { skip }, () => {
    const env = { PATH: process.env.PATH, OUTPOST_NATIVE_CACHE: join(scratch, 'mdwe-native'), TMPDIR: scratch };
    const jit = run('perl', ['-e', wrapper, bins.path.x64, 'selftest'], env);
    assert.notEqual(jit.status, 0);
    assert.match(jit.stderr, /SetPermissions/);
    const jitless = run('perl', ['-e', wrapper, bins.path.x64, 'selftest', '--json'], {
      ...env,
      NODE_OPTIONS: '--jitless',
    });
    assert.equal(jitless.status, 0, jitless.stderr);
    assert.equal((JSON.parse(jitless.stdout) as { ok: boolean }).ok, true);
  });
});
