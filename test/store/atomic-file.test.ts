import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomic } from '../../store/atomic-file.ts';
import { tempDir, throwsStore } from './fixtures.ts';

describe('writeFileAtomic', () => {
  it('writes with exactly the requested mode, whatever the umask', (t) => {
    const dir = tempDir(t);
    const old = process.umask(0);
    try {
      assert.equal(writeFileAtomic(join(dir, 'secret'), 'abc'), true);
      assert.equal(writeFileAtomic(join(dir, 'public'), 'abc', { mode: 0o644 }), true);
    } finally {
      process.umask(old);
    }
    assert.equal(statSync(join(dir, 'secret')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'public')).mode & 0o777, 0o644);
    assert.equal(readFileSync(join(dir, 'secret'), 'utf8'), 'abc');
  });

  it('replaces an existing file whole, and leaves no temp files behind', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'state.json');
    writeFileAtomic(path, '{"v":1}');
    writeFileAtomic(path, Buffer.from('{"v":2}'));
    assert.equal(readFileSync(path, 'utf8'), '{"v":2}');
    assert.deepEqual(readdirSync(dir), ['state.json']);
  });

  it('with overwrite false, never clobbers an existing file', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'key');
    writeFileSync(path, 'first');
    assert.equal(writeFileAtomic(path, 'second', { overwrite: false }), false);
    assert.equal(readFileSync(path, 'utf8'), 'first');
    assert.deepEqual(readdirSync(dir), ['key']);
  });

  it('reports a failure as a typed error and cleans up', (t) => {
    const dir = tempDir(t);
    throwsStore(() => writeFileAtomic(join(dir, 'missing', 'f'), 'x'), 'STORE_FILE_WRITE');
    // Writing over a non-empty directory fails at the rename; the temp file must not stay.
    mkdirSync(join(dir, 'adir'));
    writeFileSync(join(dir, 'adir', 'x'), '');
    throwsStore(() => writeFileAtomic(join(dir, 'adir'), 'x'), 'STORE_FILE_WRITE');
    assert.deepEqual(readdirSync(dir), ['adir']);
  });
});
