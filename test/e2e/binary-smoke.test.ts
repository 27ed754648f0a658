// End-to-end smoke of the shipped linux-x64 binary, run as an operator would run it.
// Extension point: the x64 scenario "control plane + agent enroll + tool call + telemetry" belongs here, driving
// `bins.path.x64` (from ensureBinaries(), built once per source) as separate processes on 127.0.0.1.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { helpText } from '../../cli/main.ts';
import { ensureBinaries, runBinary, type TestBinaries } from '../support/binaries.ts';

let bins: TestBinaries;
let scratch: string;

before(async () => {
  bins = await ensureBinaries();
  scratch = mkdtempSync(join(tmpdir(), 'outpost-e2e-bin-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('the linux-x64 binary as shipped', () => {
  it('carries every CLI command of the source tree', async () => {
    const r = await runBinary('x64', bins.path.x64, ['--help'], {
      env: { PATH: process.env.PATH, OUTPOST_NATIVE_CACHE: join(scratch, 'native') },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${helpText()}\n`);
  });

  it('maps an unknown command to the usage exit code', async () => {
    const r = await runBinary('x64', bins.path.x64, ['no-such-command'], {
      env: { PATH: process.env.PATH, OUTPOST_NATIVE_CACHE: join(scratch, 'native') },
    });
    assert.equal(r.status, 64);
    assert.match(r.stderr, /unknown command 'no-such-command'/);
  });
});
