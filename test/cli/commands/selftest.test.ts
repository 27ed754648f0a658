// `outpost selftest` from source: every check passes on this machine, and a failing check is reported with its
// code while the others still run.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { runSelftest, type SelftestReport } from '../../../cli/commands/selftest.ts';
import type { CliIo } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import { createNativeAddonLoader, NativeAddonError } from '../../../cli/native-addons.ts';
import { systemClock } from '../../../protocol/clock.ts';

const scratch = mkdtempSync(join(tmpdir(), 'outpost-selftest-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function captureIo(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: { TMPDIR: scratch },
    stdin: new PassThrough(),
    isTty: false,
    cwd: scratch,
    stopSignal: new AbortController().signal,
  };
}

describe('outpost selftest (development)', () => {
  it('passes every check and removes its temporary database', async () => {
    const io = captureIo();
    const code = await main(['selftest', '--json'], io);
    const report = JSON.parse(io.out.join('')) as SelftestReport;
    assert.deepEqual(
      report.checks.filter((c) => !c.ok),
      [],
    );
    assert.equal(code, 0);
    assert.equal(report.mode, 'development');
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['sqlite', 'serialport', 'signing', 'wss'],
    );
    assert.deepEqual(readdirSync(scratch), [], 'the SQLite temp dir is gone');
  });

  it('prints one line per check for people', async () => {
    const io = captureIo();
    assert.equal(await main(['selftest'], io), 0);
    const text = io.out.join('');
    for (const name of ['sqlite', 'serialport', 'signing', 'wss']) assert.match(text, new RegExp(`ok\\s+${name}\\s`));
    assert.match(text, /all 4 checks passed/);
  });

  it('rejects a bad --timeout-ms as a usage error', async () => {
    const io = captureIo();
    assert.equal(await main(['selftest', '--timeout-ms=0'], io), 64);
  });

  it('reports a failing native addon with its code and still runs the other checks', async () => {
    const real = createNativeAddonLoader();
    const report = await runSelftest({
      loader: {
        cacheDir: () => undefined,
        load: (name) => {
          if (name === 'better-sqlite3')
            throw new NativeAddonError('NATIVE_CACHE_NOEXEC', 'cache is on a noexec mount');
          return real.load(name);
        },
      },
      clock: systemClock,
      tmpDir: scratch,
      timeoutMs: 60_000,
    });
    assert.equal(report.ok, false);
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    assert.equal(byName.sqlite!.ok, false);
    assert.equal(byName.sqlite!.code, 'NATIVE_CACHE_NOEXEC');
    assert.equal(byName.serialport!.ok, true);
    assert.equal(byName.signing!.ok, true);
    assert.equal(byName.wss!.ok, true);
  });
});
