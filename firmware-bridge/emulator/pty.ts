// Pseudo-terminal pairs from socat: the emulated firmware holds one end, the host driver opens the
// other through `serialport`, exactly as it would a USB radio. Closing the pair is an unplug.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { OutpostError } from '../../protocol/errors.ts';

export interface PtyPair {
  /** Stable symlink the host opens (plays the role of /dev/serial/by-id/…). */
  readonly hostPath: string;
  /** Symlink the emulator opens. */
  readonly devicePath: string;
  /** True until the pair is closed or socat dies. */
  isOpen(): boolean;
  /** Unplugs: kills socat, both ends see EOF/EIO, the symlinks disappear. */
  close(): Promise<void>;
}

export interface PtyPairOptions {
  /** Directory for the two symlinks. */
  readonly dir: string;
  /** Base name; the host link is `<dir>/<name>`, the device link `<dir>/<name>.device`. */
  readonly name: string;
  readonly timeoutMs?: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Starts `socat pty,raw,echo=0 pty,raw,echo=0` and resolves once both symlinks exist. Throws PTY_FAILED. */
export async function openPtyPair(options: PtyPairOptions): Promise<PtyPair> {
  const hostPath = join(options.dir, options.name);
  const devicePath = `${hostPath}.device`;
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${devicePath}`, `pty,raw,echo=0,link=${hostPath}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let exited = false;
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4096);
  });
  child.on('exit', () => {
    exited = true;
  });
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (e) =>
      reject(
        new OutpostError('PTY_FAILED', `cannot start socat (install Debian's socat package): ${e.message}`, {
          cause: e,
        }),
      ),
    ),
  );
  const ready = (async () => {
    // socat announces "starting data transfer loop" after both ptys and links exist.
    while (
      !stderr.includes('starting data transfer loop') ||
      !(await exists(hostPath)) ||
      !(await exists(devicePath))
    ) {
      if (exited) throw new OutpostError('PTY_FAILED', `socat exited: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const timeoutMs = options.timeoutMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new OutpostError('PTY_FAILED', `socat did not create ${hostPath} within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([ready, spawnError, timeout]);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return {
    hostPath,
    devicePath,
    isOpen: () => !exited,
    async close() {
      if (exited) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      await gone;
    },
  };
}
