// The release signing key for tests: $OUTPOST_RELEASE_KEY, else ../shared/release/outpost-release.key beside the
// checkout (the project's key location). A missing key fails the tests that sign, with instructions: never a skip.
// Tests that need a key the installer must refuse make a throwaway pair with throwawayKeyPair().

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './binaries.ts';

/** Path of the release secret key; throws with what to do when it is absent. */
export function releaseKeyPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const path = resolve(REPO_ROOT, env.OUTPOST_RELEASE_KEY ?? '../shared/release/outpost-release.key');
  if (!existsSync(path)) {
    throw new Error(
      `release signing key not found at ${path}: set OUTPOST_RELEASE_KEY to the minisign secret key ` +
        '(its public half is release/outpost-release.pub) to run the signing and installer tests',
    );
  }
  return path;
}

export interface KeyPair {
  publicKeyFile: string;
  secretKeyFile: string;
}

/** Generates a password-less minisign key pair in `dir` (minisign -G -W). */
export function throwawayKeyPair(dir: string): KeyPair {
  const publicKeyFile = join(dir, 'throwaway.pub');
  const secretKeyFile = join(dir, 'throwaway.key');
  const r = spawnSync('minisign', ['-G', '-W', '-p', publicKeyFile, '-s', secretKeyFile], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`minisign -G failed: ${r.stderr}`);
  return { publicKeyFile, secretKeyFile };
}
