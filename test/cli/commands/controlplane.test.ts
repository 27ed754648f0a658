// The control-plane CLI in process: operator commands against a real control plane, and the usage errors a user
// meets first. (The whole flow with real processes is test/e2e/controlplane-quickstart.test.ts.)

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { parseDurationSeconds } from '../../../cli/controlplane-setup.ts';
import { EXIT } from '../../../cli/exit.ts';
import type { CliIo } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import { startTestControlPlane, type TestControlPlane } from '../../support/controlplane.ts';

function capture(env: Record<string, string>, cwd: string) {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    env,
    stdin: Readable.from([]),
    isTty: false,
    cwd,
    stopSignal: new AbortController().signal,
  };
  return { io, out: () => out, err: () => err };
}

describe('outpost controlplane (CLI)', () => {
  let cp: TestControlPlane;
  let work: string;
  before(async () => {
    cp = await startTestControlPlane();
    work = mkdtempSync(join(tmpdir(), 'outpost-cli-cp-'));
  });
  after(async () => {
    await cp.close();
    rmSync(work, { recursive: true, force: true });
  });

  const run = async (args: string[], env: Record<string, string> = {}) => {
    const c = capture({ OUTPOST_CONTROLPLANE_DIR: cp.dir, ...env }, work);
    const code = await main(args, c.io);
    return { code, out: c.out(), err: c.err() };
  };

  it('mints an enroll token into a new 0600 file and refuses to overwrite one', async () => {
    const r = await run([
      'controlplane',
      'enroll-token',
      '--ttl',
      '15m',
      '--label',
      'site=north',
      '--out',
      'e.token',
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const file = join(work, 'e.token');
    assert.match(readFileSync(file, 'utf8'), /^oet_/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(JSON.parse(r.out).token, undefined, 'the token is not printed when written to a file');
    const again = await run(['controlplane', 'enroll-token', '--out', 'e.token']);
    assert.notEqual(again.code, 0);
  });

  it('edits the approver policy read-modify-write', async () => {
    const key = '-SNLx0P-KTlmRctIseFIhOesgNRI-IRHRNQt9JCwZn8'; // keys may begin with '-': the = form takes them
    assert.equal((await run(['controlplane', 'policy', 'add-approver', 'ann', `--public-key=${key}`])).code, 0);
    const set = await run([
      'controlplane',
      'policy',
      'set-rule',
      '--class',
      'physical_actuation',
      '--k',
      '1',
      '--json',
    ]);
    assert.notEqual(set.code, 0, 'physical_actuation needs k ≥ 2');
    assert.match(set.out, /POLICY_INVALID/);
    const shown = JSON.parse((await run(['controlplane', 'policy', 'show', '--json'])).out) as {
      policy: { approvers: { id: string }[] };
    };
    assert.deepEqual(
      shown.policy.approvers.map((a) => a.id),
      ['ann'],
    );
  });

  const usage: [string, string[]][] = [
    ['a label without =', ['controlplane', 'enroll-token', '--label', 'nolabel']],
    ['a bad duration', ['controlplane', 'enroll-token', '--ttl', 'soon']],
    ['a bad role', ['controlplane', 'enroll-token', '--role', 'printer']],
    [
      'a rule with both --tool and --class',
      ['controlplane', 'policy', 'set-rule', '--tool', 'a.b', '--class', 'reversible', '--k', '2'],
    ],
    ['approve without a key file', ['approve', 'x'.repeat(22), '--approver', 'ann']],
    ['an unknown option', ['controlplane', 'devices', '--colour']],
  ];
  for (const [name, args] of usage) {
    it(`exits ${EXIT.usage} on ${name}`, async () => {
      assert.equal((await run(args)).code, EXIT.usage);
    });
  }

  it('says where to find the operator key when there is none', async () => {
    const c = capture({ OUTPOST_CONTROLPLANE_URL: cp.url, HOME: work }, work);
    assert.equal(await main(['controlplane', 'devices'], c.io), EXIT.usage);
    assert.match(c.err(), /OUTPOST_OPERATOR_KEY_FILE/);
  });

  it('parses durations', () => {
    assert.equal(parseDurationSeconds('90'), 90);
    assert.equal(parseDurationSeconds('15m'), 900);
    assert.equal(parseDurationSeconds('2h'), 7200);
    assert.equal(parseDurationSeconds('7d'), 604_800);
    assert.throws(() => parseDurationSeconds('-1'));
  });
});
