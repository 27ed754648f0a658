// Real processes for chaos runs: spawn a CLI daemon, wait until it says it is ready, read its log lines as
// they come, kill it with SIGKILL, restart it. Every child is started by this module and ended by its pid.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface ProcessSpec {
  /** Name in reports and error messages. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** A log line (stdout or stderr) that means "ready"; start() resolves when one is seen. */
  readonly ready?: RegExp;
  /** Default 30 s: a machine under load starts processes slowly. */
  readonly readyTimeoutMs?: number;
  /** Wraps the command line (prlimit, nsenter into a tiny disk, …). */
  readonly wrap?: (command: string, args: readonly string[]) => readonly [string, readonly string[]];
  /** Lines kept for waitForLine() and failure reports (default 5,000). */
  readonly keepLines?: number;
}

export interface LogLine {
  readonly at: number;
  readonly text: string;
  /** Which start of the process printed it (1 for the first). */
  readonly run: number;
}

export interface SupervisedProcess {
  readonly name: string;
  /** Pid of the running child, if any. */
  pid(): number | undefined;
  isRunning(): boolean;
  /** Starts the process and resolves once it is ready (or at once without a `ready` pattern). */
  start(): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<void>;
  /** A signal (default SIGTERM) and wait; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** kill -9 then start. */
  restart(): Promise<void>;
  /** Lines seen so far, oldest first. */
  lines(): readonly LogLine[];
  /** Resolves with the first line matching `pattern` printed at or after `sinceMs` (default: now). */
  waitForLine(pattern: RegExp, timeoutMs: number, sinceMs?: number): Promise<LogLine>;
  /** How many times it was started. */
  starts(): number;
  /** The last lines, for failure messages. */
  tail(n?: number): string;
}

/** Supervises one process across restarts. */
export function superviseProcess(spec: ProcessSpec): SupervisedProcess {
  const keep = spec.keepLines ?? 5000;
  const log: LogLine[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> | undefined;
  let runs = 0;
  const waiters = new Set<(l: LogLine) => void>();

  const push = (text: string) => {
    const line = { at: performance.now(), text, run: runs };
    log.push(line);
    if (log.length > keep) log.splice(0, log.length - keep);
    for (const w of [...waiters]) w(line);
  };

  const waitForLine = (pattern: RegExp, timeoutMs: number, sinceMs = performance.now()) =>
    new Promise<LogLine>((resolve, reject) => {
      const seen = log.find((l) => l.at >= sinceMs && pattern.test(l.text));
      if (seen) return resolve(seen);
      const onLine = (l: LogLine) => {
        if (!pattern.test(l.text)) return;
        waiters.delete(onLine);
        clearTimeout(timer);
        resolve(l);
      };
      const timer = setTimeout(() => {
        waiters.delete(onLine);
        reject(new Error(`${spec.name}: no line matching ${pattern} within ${timeoutMs} ms\n${tail(30)}`));
      }, timeoutMs);
      waiters.add(onLine);
    });

  const tail = (n = 30) =>
    log
      .slice(-n)
      .map((l) => `  [${spec.name}#${l.run}] ${l.text}`)
      .join('\n');

  const kill = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    const done = exited!;
    c.kill(signal);
    await done;
    return c.exitCode;
  };

  return {
    name: spec.name,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    isRunning: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) throw new Error(`${spec.name} is running`);
      runs++;
      const [command, args] = spec.wrap ? spec.wrap(spec.command, spec.args) : [spec.command, spec.args];
      const since = performance.now();
      const c = spawn(command, [...args], {
        cwd: spec.cwd,
        env: { ...(spec.env ?? process.env) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = c;
      exited = once(c, 'exit').catch(() => {});
      createInterface({ input: c.stdout! }).on('line', push);
      createInterface({ input: c.stderr! }).on('line', push);
      if (!spec.ready) return;
      const ready = spec.ready;
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        const finish = (error?: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          waiters.delete(onLine);
          c.off('close', onClose);
          if (error) reject(error);
          else resolve();
        };
        const onLine = (l: LogLine) => {
          if (l.at >= since && ready.test(l.text)) finish();
        };
        // 'close' comes after the last output line, so a ready line printed just before exiting still counts.
        const onClose = () =>
          finish(new Error(`${spec.name} exited (${c.exitCode ?? c.signalCode}) before it was ready\n${tail(30)}`));
        const timer = setTimeout(
          () => finish(new Error(`${spec.name}: not ready within ${spec.readyTimeoutMs ?? 30_000} ms\n${tail(30)}`)),
          spec.readyTimeoutMs ?? 30_000,
        );
        waiters.add(onLine);
        c.on('close', onClose);
        for (const l of log) onLine(l);
      });
    },
    async kill9() {
      await kill('SIGKILL');
    },
    stop: (signal = 'SIGTERM') => kill(signal),
    async restart() {
      await kill('SIGKILL');
      await this.start();
    },
    lines: () => log,
    waitForLine,
    starts: () => runs,
    tail,
  };
}
