// The long-run fuzz runner (npm run fuzz) on decoders that misbehave on purpose: crashes are counted and their
// inputs saved, a case that never returns is caught by the watchdog and its worker replaced, and the run fails.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '../..');

async function run(args: string[]): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'test/fuzz/run.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout };
}

const row = (stdout: string, name: string) => {
  const line = stdout.split('\n').find((l) => l.startsWith(name));
  assert.ok(line, `no row for ${name} in:\n${stdout}`);
  const [, cases, accepted, rejected, crashes, hangs] = line.trim().split(/\s{2,}/);
  const n = (s: string | undefined) => Number(s!.replace(/,/g, ''));
  return { cases: n(cases), accepted: n(accepted), rejected: n(rejected), crashes: n(crashes), hangs: n(hangs) };
};

describe('npm run fuzz', () => {
  const registry = ['--registry', join(ROOT, 'test/fuzz/fixtures/misbehaving-decoders.ts')];

  it('a well-behaved decoder passes, sharded over two workers', async () => {
    const r = await run([...registry, '--only', 'fixture.total', '--cases', '4000', '--workers', '2']);
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(row(r.stdout, 'fixture.total').cases, 4000);
    assert.equal(row(r.stdout, 'fixture.total').crashes, 0);
  });

  it('counts crashes, saves their inputs, keeps going and fails the run', async () => {
    const r = await run([...registry, '--only', 'fixture.crashes', '--cases', '4000', '--workers', '2']);
    assert.equal(r.code, 1);
    const x = row(r.stdout, 'fixture.crashes');
    assert.equal(x.cases, 4000);
    assert.ok(x.crashes > 0 && x.accepted > 0 && x.rejected > 0);
    assert.equal(x.accepted + x.rejected + x.crashes, 4000);
    const dir = join(ROOT, 'test-artifacts/fuzz');
    const saved = readdirSync(dir).filter((f) => f.startsWith('fixture.crashes-crash-'));
    assert.ok(saved.length > 0);
    assert.match(readFileSync(join(dir, saved[0]!), 'utf8'), /TypeError: byte 7 is not handled\nhex:07/);
  });

  it('a case that never returns is caught by the watchdog, named, and its worker replaced', async () => {
    const r = await run([
      ...registry,
      '--only',
      'fixture.hangs,fixture.total',
      '--cases',
      '3000',
      '--workers',
      '1',
      '--hang-ms',
      '1500',
    ]);
    assert.equal(r.code, 1);
    assert.ok(row(r.stdout, 'fixture.hangs').hangs >= 1);
    // The replacement worker went on to run the next decoder completely.
    assert.equal(row(r.stdout, 'fixture.total').cases, 3000);
    const file = join(ROOT, 'test-artifacts/fuzz/fixture.hangs-slow-0.txt');
    assert.ok(existsSync(file));
    assert.match(readFileSync(file, 'utf8'), /no return within 1500 ms\n"123"/);
  });
});
