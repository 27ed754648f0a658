// Shared fixtures of the store tests: temp directories that clean themselves up, and databases with
// every store component migrated.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Clock } from '../../protocol/clock.ts';
import { AUDIT_MIGRATIONS } from '../../store/audit.ts';
import { type MigrationSet, openDatabase, type StoreDatabase } from '../../store/database.ts';
import { isStoreError, type StoreError, type StoreErrorCode } from '../../store/errors.ts';
import { INBOX_MIGRATIONS } from '../../store/inbox.ts';
import { OUTBOX_MIGRATIONS } from '../../store/outbox.ts';
import { SEQUENCE_MIGRATIONS } from '../../store/sequence.ts';

export const ALL_MIGRATIONS: readonly MigrationSet[] = [
  SEQUENCE_MIGRATIONS,
  OUTBOX_MIGRATIONS,
  INBOX_MIGRATIONS,
  AUDIT_MIGRATIONS,
];

/** A fresh directory removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'outpost-store-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens `path` with every store component; closed when the test ends. */
export function openAll(t: TestContext, path: string, clock?: Clock): StoreDatabase {
  const db = openDatabase(path, { migrations: ALL_MIGRATIONS, clock });
  t.after(() => db.close());
  return db;
}

/** Asserts that `fn` throws a StoreError with `code`, and returns it. */
export function throwsStore(fn: () => unknown, code: StoreErrorCode): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(isStoreError(caught, code), `expected StoreError ${code}, got ${String(caught)}`);
  return caught as StoreError;
}

export const KEY = new Uint8Array(32).fill(7);
