// The single binaries for tests, built at most once for a given source: the key is the SHA-256 of the esbuild
// bundle, the build script and the embedded native addons, so any change to shipped code rebuilds them, and test
// files running in parallel (or later runs) share one build. Node base tarballs are cached by scripts/sea-build.ts.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, watch } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { systemClock } from '../../protocol/clock.ts';
import {
  ARCHS,
  ARM64_SYSROOT,
  type Arch,
  buildBinaries,
  bundleCli,
  defaultBuildCacheDir,
  NODE_BASE,
  nativeAssetPaths,
} from '../../scripts/sea-build.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface TestBinaries {
  version: string;
  dir: string;
  /** Paths by arch (only the archs asked for exist). */
  path: Record<Arch, string>;
  /** True when this call built them (false: an earlier run or a parallel test file did). */
  built: boolean;
  buildMs?: number;
}

async function sourceKey(version: string, archs: readonly Arch[]): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'outpost-key-'));
  try {
    const bundle = join(work, 'bundle.cjs');
    await bundleCli(REPO_ROOT, bundle, version);
    const h = createHash('sha256');
    h.update(await readFile(bundle));
    h.update(await readFile(join(REPO_ROOT, 'scripts/sea-build.ts')));
    for (const arch of archs) {
      h.update(arch);
      h.update(NODE_BASE[arch].integrity);
      for (const file of Object.values(nativeAssetPaths(REPO_ROOT, arch))) h.update(await readFile(file));
    }
    return h.digest('hex').slice(0, 24);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves when `dir` exists, or when the lock at `lock` is gone (its holder finished or died). */
function waitForDirOrFreeLock(parent: string, dir: string, lock: string): Promise<void> {
  return new Promise((resolveWait) => {
    const check = async (): Promise<boolean> => {
      if (existsSync(dir)) return true;
      try {
        const pid = Number((await readFile(join(lock, 'pid'), 'utf8')).trim());
        if (pid > 0 && !isAlive(pid)) {
          await rm(lock, { recursive: true, force: true });
          return true;
        }
        return false;
      } catch {
        return !existsSync(lock);
      }
    };
    const watcher = watch(parent, () => void finish());
    // Also re-check now and then: a holder killed with SIGKILL emits no event.
    const timer = setInterval(() => void finish(), 1000);
    let done = false;
    const finish = async () => {
      if (done || !(await check())) return;
      done = true;
      watcher.close();
      clearInterval(timer);
      resolveWait();
    };
    void finish();
  });
}

/** Keeps the newest builds (other worktrees' runs may be using theirs) and deletes the rest once 10 minutes old. */
async function pruneOld(parent: string, keep: string): Promise<void> {
  const builds: Array<{ path: string; mtimeMs: number }> = [];
  for (const name of await readdir(parent)) {
    if (name === keep || name.includes('.')) continue; // locks and staging dirs belong to running builds
    const path = join(parent, name);
    builds.push({ path, mtimeMs: (await stat(path)).mtimeMs });
  }
  builds.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const b of builds.slice(3)) {
    if (systemClock.nowMs() - b.mtimeMs > 600_000) await rm(b.path, { recursive: true, force: true });
  }
}

/**
 * Returns binaries of the current source (default: linux-x64 and linux-arm64 at package.json's version),
 * building them if no run has yet. Tests that need a second release (upgrades) ask for another version.
 */
export async function ensureBinaries(
  options: { version?: string; archs?: readonly Arch[] } = {},
): Promise<TestBinaries> {
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  const version = options.version ?? pkg.version;
  const archs = options.archs ?? ARCHS;
  const cacheDir = defaultBuildCacheDir();
  const parent = join(cacheDir, 'test-binaries');
  await mkdir(parent, { recursive: true });
  const key = await sourceKey(version, archs);
  const dir = join(parent, key);
  const lock = `${dir}.lock`;
  const paths = Object.fromEntries(ARCHS.map((a) => [a, join(dir, `outpost-linux-${a}`)])) as Record<Arch, string>;
  const rebuild = process.env.OUTPOST_TEST_REBUILD === '1';
  for (;;) {
    if (existsSync(dir) && !rebuild) return { version, dir, path: paths, built: false };
    try {
      await mkdir(lock);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      await waitForDirOrFreeLock(parent, dir, lock);
      continue;
    }
    try {
      await writeFile(join(lock, 'pid'), String(process.pid));
      const staging = `${dir}.tmp-${process.pid}`;
      const result = await buildBinaries({
        root: REPO_ROOT,
        outDir: staging,
        cacheDir,
        version,
        compressedSizes: false,
      });
      await rm(dir, { recursive: true, force: true });
      await rename(staging, dir);
      await pruneOld(parent, key);
      return { version, dir, path: paths, built: true, buildMs: result.elapsedMs };
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `file args` (arm64 under qemu-aarch64-static as a Cortex-A72, the Pi 4 CPU) and collects its output. */
export function runBinary(
  arch: Arch,
  file: string,
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const [cmd, argv] =
    arch === 'arm64'
      ? ['qemu-aarch64-static', ['-cpu', 'cortex-a72', '-L', ARM64_SYSROOT, file, ...args]]
      : [file, [...args]];
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, argv, {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status, signal) => resolveRun({ status, signal, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}
