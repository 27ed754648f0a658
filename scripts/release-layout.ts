// Lays out and signs a release directory as install.sh expects it (docs/install.md "Release layout"):
//   latest, latest.minisig, install.sh, install.sh.minisig,
//   VERSION/outpost-linux-{x64,arm64}, VERSION/outpost-{agent,gateway,controlplane}.service, VERSION/SHA256SUMS,
// each signed with minisign; the trusted comment binds file name and version: "outpost file=NAME version=V".

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { OutpostError } from '../protocol/errors.ts';
import type { Arch } from './sea-build.ts';

export type ReleaseErrorCode =
  | 'RELEASE_NO_KEY'
  | 'RELEASE_SIGN_FAILED'
  | 'RELEASE_KEY_MISMATCH'
  | 'RELEASE_BAD_VERSION';

export class ReleaseError extends OutpostError<ReleaseErrorCode> {
  constructor(
    code: ReleaseErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'ReleaseError';
  }
}

/** The roles that have a systemd unit in systemd/ and in every release. */
export const UNIT_ROLES = ['agent', 'gateway', 'controlplane'] as const;

/** Release versions: what install.sh accepts (letters, digits, '.', '+', '-'; not starting with '.'). */
export const VERSION_PATTERN = /^[0-9A-Za-z+-][0-9A-Za-z.+-]{0,63}$/;

/** The public key file committed with the project; every signature is checked against it after signing. */
export function releasePublicKeyFile(root: string): string {
  return join(root, 'release', 'outpost-release.pub');
}

/** The key line (second line) of a minisign public key file. */
export async function publicKeyLine(file: string): Promise<string> {
  const line = (await readFile(file, 'utf8')).split('\n')[1]?.trim();
  if (!line) throw new ReleaseError('RELEASE_KEY_MISMATCH', `${file} is not a minisign public key file`);
  return line;
}

export function trustedComment(name: string, version?: string): string {
  return version === undefined ? `outpost file=${name}` : `outpost file=${name} version=${version}`;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function minisign(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    // stdin is closed: a password-protected key fails instead of waiting for a password.
    const child = spawn('minisign', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (cause) =>
      reject(new ReleaseError('RELEASE_SIGN_FAILED', `cannot run minisign: ${cause.message}`, { cause })),
    );
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Signs `file` to `file.minisig` with the secret key at `keyPath` (a path: the key never goes on argv). */
export async function signFile(keyPath: string, file: string, comment: string): Promise<void> {
  const r = await minisign(['-S', '-s', keyPath, '-m', file, '-x', `${file}.minisig`, '-t', comment]);
  if (r.status !== 0) {
    throw new ReleaseError(
      'RELEASE_SIGN_FAILED',
      `minisign could not sign ${basename(file)}: ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
}

/** Verifies `file` against `file.minisig` with the public key file; returns the trusted comment, or throws. */
export async function verifyFile(publicKeyFile: string, file: string): Promise<string> {
  const r = await minisign(['-V', '-Q', '-p', publicKeyFile, '-m', file, '-x', `${file}.minisig`]);
  if (r.status !== 0) {
    throw new ReleaseError(
      'RELEASE_KEY_MISMATCH',
      `${basename(file)}.minisig does not verify with ${publicKeyFile}: ${r.stderr.trim() || 'signature mismatch'}`,
    );
  }
  return r.stdout.trim();
}

/** Signs, then checks the result against the committed public key (so a wrong secret key fails the release). */
async function signAndCheck(root: string, keyPath: string, file: string, comment: string): Promise<void> {
  await signFile(keyPath, file, comment);
  const got = await verifyFile(releasePublicKeyFile(root), file);
  if (got !== comment) throw new ReleaseError('RELEASE_SIGN_FAILED', `${basename(file)}: trusted comment "${got}"`);
}

/** Throws RELEASE_NO_KEY unless `keyPath` names a readable file. */
export async function assertKeyReadable(keyPath: string | undefined): Promise<string> {
  if (!keyPath) {
    throw new ReleaseError('RELEASE_NO_KEY', 'set OUTPOST_RELEASE_KEY to the path of the minisign release secret key');
  }
  try {
    await readFile(keyPath);
  } catch (cause) {
    throw new ReleaseError('RELEASE_NO_KEY', `cannot read the release secret key ${keyPath} (OUTPOST_RELEASE_KEY)`, {
      cause,
    });
  }
  return keyPath;
}

export interface ReleaseInput {
  /** Repository root (systemd/, install.sh, release/outpost-release.pub). */
  root: string;
  outDir: string;
  version: string;
  /** Built binaries by arch (scripts/sea-build.ts); copied in as outpost-linux-<arch>. */
  binaries: Partial<Record<Arch, string>>;
  keyPath: string;
  /** Point `latest` at this version (default true). */
  latest?: boolean;
  /** The installer to publish (default: root/install.sh). */
  installer?: string;
}

/** Returns the SHA256SUMS text (sha256sum(1) format) for the given files. */
export async function sha256sums(files: readonly string[]): Promise<string> {
  const lines: string[] = [];
  for (const f of files)
    lines.push(
      `${createHash('sha256')
        .update(await readFile(f))
        .digest('hex')}  ${basename(f)}`,
    );
  return `${lines.join('\n')}\n`;
}

async function copyAtomic(from: string, to: string, mode: number): Promise<void> {
  await copyFile(from, `${to}.tmp`);
  await chmod(`${to}.tmp`, mode);
  await rename(`${to}.tmp`, to);
}

/** Writes the release for `version` into outDir (other versions there are kept) and returns the files written. */
export async function writeRelease(input: ReleaseInput): Promise<string[]> {
  if (!VERSION_PATTERN.test(input.version)) {
    throw new ReleaseError('RELEASE_BAD_VERSION', `bad release version ${JSON.stringify(input.version)}`);
  }
  const keyPath = await assertKeyReadable(input.keyPath);
  const dir = join(input.outDir, input.version);
  await mkdir(dir, { recursive: true });
  const artifacts: string[] = [];
  for (const [arch, file] of Object.entries(input.binaries)) {
    const to = join(dir, `outpost-linux-${arch}`);
    await copyAtomic(file, to, 0o755);
    artifacts.push(to);
  }
  for (const role of UNIT_ROLES) {
    const to = join(dir, `outpost-${role}.service`);
    await copyAtomic(join(input.root, 'systemd', `outpost-${role}.service`), to, 0o644);
    artifacts.push(to);
  }
  const sums = join(dir, 'SHA256SUMS');
  await writeFile(sums, await sha256sums(artifacts));
  artifacts.push(sums);
  for (const file of artifacts)
    await signAndCheck(input.root, keyPath, file, trustedComment(basename(file), input.version));
  const written = [...artifacts];
  if (input.latest ?? true) {
    const latest = join(input.outDir, 'latest');
    await writeFile(`${latest}.tmp`, `${input.version}\n`);
    await rename(`${latest}.tmp`, latest);
    await signAndCheck(input.root, keyPath, latest, trustedComment('latest', input.version));
    written.push(latest);
  }
  const installer = join(input.outDir, 'install.sh');
  await copyAtomic(input.installer ?? join(input.root, 'install.sh'), installer, 0o644);
  await signAndCheck(input.root, keyPath, installer, trustedComment('install.sh'));
  written.push(installer);
  return written;
}
