// Full disks for chaos runs. `tinyDisk` mounts a size-limited tmpfs over a directory inside a user + mount
// namespace that a holder process keeps alive, so processes started in it (via nsenter) see a real ENOSPC
// while the test fills and frees it from outside through /proc/<holder>/root. `fileSizeLimit` is the
// portable fallback: RLIMIT_FSIZE via prlimit (EFBIG on any one file beyond the limit).

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface TinyDisk {
  /** The directory (same path inside and outside the namespace) the tmpfs is mounted on. */
  readonly dir: string;
  readonly sizeBytes: number;
  /** Runs `command args…` inside the namespace, where `dir` is the tiny disk. */
  wrap(command: string, args: readonly string[]): readonly [string, readonly string[]];
  /**
   * The path of `inner` (a path under `dir`) as this process can reach it. Plain file reads and writes work
   * through it; SQLite does not (it resolves the /proc link): copy a database out before opening it.
   */
  hostPath(inner: string): string;
  /** Free bytes on the tiny disk. */
  freeBytes(): number;
  /** Fills the disk until at most `leaveBytes` remain free (a ballast file). */
  fill(leaveBytes?: number): void;
  /** Removes the ballast. */
  free(): void;
  /** Ends the namespace; the tmpfs and everything on it is gone. */
  close(): Promise<void>;
}

/** True when this machine lets an unprivileged user create user + mount namespaces and mount tmpfs in them. */
export function canMakeTinyDisk(): boolean {
  const r = spawnSync('unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt && echo ok'], {
    encoding: 'utf8',
  });
  return r.status === 0 && r.stdout.trim() === 'ok' && spawnSync('nsenter', ['--version']).status === 0;
}

export async function tinyDisk(dir: string, sizeBytes: number): Promise<TinyDisk> {
  const holder = spawn(
    'unshare',
    [
      '-Urm',
      'sh',
      '-c',
      `mount -t tmpfs -o size=${sizeBytes},mode=0700 tmpfs "$1" && echo mounted && exec sleep infinity`,
      'sh',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(createInterface({ input: holder.stdout! }), 'line')) as [string];
  if (line !== 'mounted') throw new Error(`could not mount a tmpfs on ${dir}`);
  const pid = holder.pid!;
  const hostPath = (inner: string) => join(`/proc/${pid}/root`, inner);
  const ballast = hostPath(join(dir, '.ballast'));
  const freeBytes = () => {
    const s = statfsSync(hostPath(dir));
    return s.bavail * s.bsize;
  };
  return {
    dir,
    sizeBytes,
    wrap: (command, args) => ['nsenter', ['-U', '-m', '--preserve-credentials', '-t', String(pid), command, ...args]],
    hostPath,
    freeBytes,
    fill(leaveBytes = 0) {
      rmSync(ballast, { force: true });
      const size = Math.max(0, freeBytes() - leaveBytes);
      try {
        writeFileSync(ballast, Buffer.alloc(size));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e; // full is what we asked for
      }
    },
    free: () => rmSync(ballast, { force: true }),
    async close() {
      if (holder.exitCode === null) {
        holder.kill('SIGKILL');
        await once(holder, 'exit');
      }
    },
  };
}

/** Wraps a command so that no file it writes can grow past `bytes` (RLIMIT_FSIZE; writes fail with EFBIG). */
export function fileSizeLimit(bytes: number) {
  return (command: string, args: readonly string[]): readonly [string, readonly string[]] => [
    'prlimit',
    [`--fsize=${bytes}`, '--', command, ...args],
  ];
}
