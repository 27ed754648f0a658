import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadKey, loadOrCreateKeyFile } from '../../store/key-file.ts';
import { tempDir, throwsStore } from './fixtures.ts';

const SEED = new Uint8Array(32).fill(0xab);

describe('loadOrCreateKeyFile', () => {
  it('creates a 0600 32-byte key once, then loads the same key', (t) => {
    const path = join(tempDir(t), 'state', 'identity.key');
    const first = loadOrCreateKeyFile(path);
    assert.equal(first.created, true);
    assert.equal(first.source, 'file');
    assert.equal(first.seed.length, 32);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700, 'a created state directory is private');
    const again = loadOrCreateKeyFile(path);
    assert.equal(again.created, false);
    assert.deepEqual(again.seed, first.seed);
    assert.deepEqual(new Uint8Array(readFileSync(path)), first.seed);
  });

  for (const mode of [0o640, 0o604, 0o660, 0o644, 0o620]) {
    it(`refuses a key file with mode 0${mode.toString(8)}`, (t) => {
      const path = join(tempDir(t), 'k');
      writeFileSync(path, SEED);
      chmodSync(path, mode);
      const e = throwsStore(() => loadOrCreateKeyFile(path), 'STORE_KEY_PERMISSIONS');
      assert.ok(e.message.includes(path));
      assert.match(e.message, /chmod 600/);
      assert.equal(statSync(path).mode & 0o777, mode, 'the file is left as it was');
    });
  }

  it('accepts 0400', (t) => {
    const path = join(tempDir(t), 'k');
    writeFileSync(path, SEED);
    chmodSync(path, 0o400);
    assert.deepEqual(loadOrCreateKeyFile(path).seed, SEED);
  });

  it('refuses a key owned by another user', (t) => {
    if (process.geteuid?.() !== 0) {
      t.skip('needs root to chown');
      return;
    }
    const path = join(tempDir(t), 'k');
    writeFileSync(path, SEED, { mode: 0o600 });
    chownSync(path, 4321, 4321);
    throwsStore(() => loadOrCreateKeyFile(path), 'STORE_KEY_PERMISSIONS');
  });

  it('refuses a symlink, a wrong size and a directory', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'real'), SEED, { mode: 0o600 });
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    throwsStore(() => loadOrCreateKeyFile(join(dir, 'link')), 'STORE_KEY_PERMISSIONS');
    writeFileSync(join(dir, 'short'), SEED.subarray(0, 31), { mode: 0o600 });
    throwsStore(() => loadOrCreateKeyFile(join(dir, 'short')), 'STORE_KEY_INVALID');
    mkdirSync(join(dir, 'dir'), { mode: 0o700 });
    throwsStore(() => loadOrCreateKeyFile(join(dir, 'dir')), 'STORE_KEY_INVALID');
  });

  it('does not create when told not to', (t) => {
    throwsStore(() => loadOrCreateKeyFile(join(tempDir(t), 'absent'), { create: false }), 'STORE_KEY_NOT_FOUND');
  });
});

describe('loadKey', () => {
  it('prefers the systemd credential and never writes the state file then', (t) => {
    const dir = tempDir(t);
    const creds = join(dir, 'creds');
    mkdirSync(creds);
    writeFileSync(join(creds, 'outpost-identity'), SEED, { mode: 0o400 });
    const filePath = join(dir, 'state', 'identity.key');
    const key = loadKey({ credential: 'outpost-identity', filePath, env: { CREDENTIALS_DIRECTORY: creds } });
    assert.equal(key.source, 'credential');
    assert.deepEqual(key.seed, SEED);
    assert.throws(() => statSync(filePath));
  });

  it('falls back to the state file when the credential is absent', (t) => {
    const dir = tempDir(t);
    const creds = join(dir, 'creds');
    mkdirSync(creds);
    const filePath = join(dir, 'identity.key');
    const viaEmptyDir = loadKey({ credential: 'outpost-identity', filePath, env: { CREDENTIALS_DIRECTORY: creds } });
    assert.equal(viaEmptyDir.source, 'file');
    assert.equal(viaEmptyDir.created, true);
    const noSystemd = loadKey({ credential: 'outpost-identity', filePath, env: {} });
    assert.deepEqual(noSystemd.seed, viaEmptyDir.seed);
  });

  it('refuses a malformed credential and a bad credential name', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'id'), 'not 32 bytes');
    throwsStore(
      () => loadKey({ credential: 'id', filePath: join(dir, 'f'), env: { CREDENTIALS_DIRECTORY: dir } }),
      'STORE_KEY_INVALID',
    );
    throwsStore(() => loadKey({ credential: '../id', filePath: join(dir, 'f'), env: {} }), 'STORE_BAD_ARGUMENT');
  });
});
