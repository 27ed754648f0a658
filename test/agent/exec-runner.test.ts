import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { lookupUser, runExec } from '../../agent/exec-runner.ts';
import { systemClock } from '../../protocol/clock.ts';
import { isOutpostError } from '../../protocol/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-exec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = { timeoutMs: 10_000, killGraceMs: 200, maxOutputBytes: 1 << 20 };

/** True while `pid` exists and is not a zombie (a container's init may be slow to reap orphans). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e) => isOutpostError(e, code));
}

describe('runExec', () => {
  it('passes each argument as one argv element, shell metacharacters and all', async () => {
    const hostile = '$(touch pwned); `id` && echo no | cat > x; *';
    const r = await runExec({ ...base, argv: ['/usr/bin/printf', '%s\\n', hostile, 'a b'], cwd: dir }, systemClock);
    assert.equal(Buffer.from(r.stdout).toString(), `${hostile}\na b\n`);
    assert.throws(() => readFileSync(join(dir, 'pwned')));
  });

  it('scrubs the environment down to PATH, LANG, HOME and what the tool declares', async () => {
    const r = await runExec({ ...base, argv: ['/usr/bin/env'], env: { SENSOR: 'bme280' }, cwd: dir }, systemClock);
    const names = Buffer.from(r.stdout)
      .toString()
      .trim()
      .split('\n')
      .map((l) => l.split('=')[0])
      .sort();
    assert.deepEqual(names, ['HOME', 'LANG', 'PATH', 'SENSOR']);
  });

  it('writes stdin when asked', async () => {
    const r = await runExec({ ...base, argv: ['/bin/cat'], stdin: Buffer.from('{"a":1}') }, systemClock);
    assert.equal(Buffer.from(r.stdout).toString(), '{"a":1}');
  });

  it('reports a non-zero exit with the first line of stderr', async () => {
    const p = runExec({ ...base, argv: ['/bin/sh', '-c', 'echo "sensor missing" >&2; exit 3'] }, systemClock);
    await assert.rejects(p, (e) => isOutpostError(e, 'TOOL_EXIT_NONZERO') && /sensor missing/.test(e.message));
  });

  it('reports a program that does not exist', async () => {
    await rejectsWith(runExec({ ...base, argv: [join(dir, 'nope')] }, systemClock), 'TOOL_SPAWN_FAILED');
  });

  it('kills the whole process group with SIGKILL when SIGTERM is ignored after the timeout', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const script = `trap '' TERM; sleep 1000 & echo $! > ${pidFile}; while :; do sleep 1; done`;
    const p = runExec({ ...base, timeoutMs: 300, argv: ['/bin/sh', '-c', script] }, systemClock);
    await rejectsWith(p, 'TOOL_TIMEOUT');
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(grandchild > 0);
    // The group was SIGKILLed before the promise settled; the kernel may need a moment to reap it.
    for (let i = 0; i < 200 && isAlive(grandchild); i++) await new Promise((r) => setImmediate(r));
    assert.equal(isAlive(grandchild), false);
  });

  it('stops a program that writes more than the output cap', async () => {
    const p = runExec({ ...base, maxOutputBytes: 1000, argv: ['/bin/sh', '-c', 'yes outpost'] }, systemClock);
    await rejectsWith(p, 'TOOL_OUTPUT_TOO_LARGE');
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    const p = runExec({ ...base, argv: ['/bin/sleep', '1000'], signal: ac.signal }, systemClock);
    ac.abort();
    await rejectsWith(p, 'TOOL_ABORTED');
  });

  it('looks users up by name or uid', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/sh\nsensor:x:1001:1002::/home/sensor:/bin/false\n';
    assert.deepEqual(lookupUser('sensor', passwd), { uid: 1001, gid: 1002, home: '/home/sensor' });
    assert.deepEqual(lookupUser('1001', passwd), { uid: 1001, gid: 1002, home: '/home/sensor' });
    assert.throws(
      () => lookupUser('nobody-here', passwd),
      (e) => isOutpostError(e, 'TOOL_SPAWN_FAILED'),
    );
  });
});
