// Runs the real `outpost` CLI as a child process (the same Node that runs the tests), for end-to-end tests:
// read its stdout line by line, wait for a line, stop it with a signal or SIGKILL it.

import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve(import.meta.dirname, '../../cli/bin.ts');

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far. */
  readonly lines: string[];
  /** The last 64 KiB of stderr (for failure messages). */
  stderr(): string;
  /** Resolves with the first stdout line (seen so far or later) matching `predicate`. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number, what?: string): Promise<string>;
  /** Resolves with the first stdout line that parses as a JSON object. */
  waitForJson<T = Record<string, unknown>>(timeoutMs?: number): Promise<T>;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function startCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; stdinPipe?: boolean } = {},
): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? resolve(import.meta.dirname, '../..'),
    env: { ...process.env, ...options.env },
    stdio: [options.input === undefined && !options.stdinPipe ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  const lines: string[] = [];
  let partial = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-65_536);
  });
  const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? -1)));
  void exited.then(() => {
    for (const w of [...waiters]) w();
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const waitForLine: CliProcess['waitForLine'] = (predicate, timeoutMs = 20_000, what = 'line') =>
    new Promise((res, rej) => {
      const check = () => {
        const l = lines.find(predicate);
        if (l !== undefined) {
          waiters.delete(check);
          clearTimeout(t);
          res(l);
        } else if (gone) {
          waiters.delete(check);
          clearTimeout(t);
          rej(new Error(`process exited while waiting for ${what}; stderr:\n${err.slice(-4000)}`));
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${err.slice(-4000)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    child,
    pid: child.pid!,
    lines,
    stderr: () => err,
    waitForLine,
    async waitForJson<T>(timeoutMs = 20_000) {
      // Pretty-printed JSON spans lines: collect from the first "{" line to the matching "}".
      await waitForLine((l) => l === '}', timeoutMs, 'a JSON document');
      const start = lines.indexOf('{');
      const end = lines.indexOf('}', start);
      return JSON.parse(lines.slice(start, end + 1).join('\n')) as T;
    },
    exited,
    async stop(signal = 'SIGTERM') {
      if (!gone) child.kill(signal);
      return exited;
    },
  };
}
