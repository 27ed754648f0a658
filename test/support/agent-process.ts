// Runs the real `outpost` CLI as child processes for end-to-end and chaos tests: an agent daemon in a temp
// directory (ready when it logs agent.started), and one-shot commands against it.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'cli/bin.ts');

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stderr line so far (the agent's log). */
  readonly log: string[];
  /** Resolves when the agent logged agent.started; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill9(): Promise<void>;
}

export interface StartOptions {
  readonly configFile: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Run under `prlimit --fsize=BYTES` (RLIMIT_FSIZE): a disk that is full for this process. */
  readonly fileSizeLimitBytes?: number;
}

/** The environment for child CLI processes: this one's, minus anything that would point them elsewhere. */
export function childEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('OUTPOST_') && k !== 'NOTIFY_SOCKET' && k !== 'JOURNAL_STREAM') env[k] = v;
  }
  return { ...env, ...extra };
}

export function startAgent(o: StartOptions): AgentProcess {
  const args = ['agent', 'run', '--config', o.configFile];
  const [cmd, argv] =
    o.fileSizeLimitBytes === undefined
      ? [process.execPath, [CLI, ...args]]
      : ['prlimit', [`--fsize=${o.fileSizeLimitBytes}`, '--', process.execPath, CLI, ...args]];
  const child = spawn(cmd, argv, { env: childEnv(o.env), stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  let buffered = '';
  let onLine: ((line: string) => void) | undefined;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const l of lines) {
      log.push(l);
      onLine?.(l);
    }
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const ready = new Promise<void>((resolveReady, reject) => {
    onLine = (l) => {
      if (l.includes('agent.started')) resolveReady();
    };
    void exited.then(([code, signal]) =>
      reject(new Error(`agent exited (${code ?? signal}) before it was ready:\n${log.slice(-20).join('\n')}`)),
    );
  });
  ready.catch(() => {}); // a caller that never awaits `ready` must not crash the run
  return {
    child,
    pid: child.pid!,
    log,
    ready,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one CLI command to completion (async, so an agent in this process's tests keeps running). */
export async function outpost(
  args: readonly string[],
  o: { env?: Readonly<Record<string, string>>; input?: string; cwd?: string } = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: childEnv(o.env),
    cwd: o.cwd ?? ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(o.input ?? '');
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout, stderr };
}

/** True when `cmd args…` runs and exits 0 (to skip tests whose tools are missing). */
export function canRun(cmd: string, args: readonly string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}
