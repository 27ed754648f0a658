// Runs one program for an exec tool or sampler: argv only (never a shell), its own process group, a scrubbed
// environment, a timeout that sends SIGTERM then SIGKILL to the whole group, and a cap on captured output.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Clock } from '../protocol/clock.ts';
import { AgentError } from './errors.ts';

export const SCRUBBED_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Bytes of stderr kept for error messages; the rest is counted and dropped. */
const STDERR_KEEP_BYTES = 4096;

export interface ExecRequest {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  readonly killGraceMs: number;
  readonly maxOutputBytes: number;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** User name or numeric uid to run as (needs root). */
  readonly user?: string;
  readonly stdin?: Uint8Array;
  readonly signal?: AbortSignal;
}

export interface ExecResult {
  readonly stdout: Uint8Array;
  /** The first bytes of stderr (UTF-8, lossy). */
  readonly stderr: string;
  readonly durationMs: number;
}

interface UserIds {
  uid: number;
  gid: number;
  home: string;
}

/** Looks a user up in /etc/passwd (name or numeric uid). Throws TOOL_SPAWN_FAILED when unknown. */
export function lookupUser(user: string, passwdText?: string): UserIds {
  const text = passwdText ?? readFileSync('/etc/passwd', 'utf8');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7) continue;
    if (f[0] === user || f[2] === user) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
  }
  if (/^\d+$/.test(user)) return { uid: Number(user), gid: Number(user), home: '/' };
  throw new AgentError('TOOL_SPAWN_FAILED', `no such user "${user}"`, { details: { user } });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

/**
 * Runs `argv` to completion. Resolves with stdout when the program exits 0; rejects with AgentError
 * TOOL_SPAWN_FAILED, TOOL_TIMEOUT, TOOL_EXIT_NONZERO, TOOL_OUTPUT_TOO_LARGE or TOOL_ABORTED. The process
 * group is always killed before this settles, so no child outlives its call.
 */
export function runExec(req: ExecRequest, clock: Clock): Promise<ExecResult> {
  const started = clock.monotonicMs();
  const program = req.argv[0];
  if (program === undefined) return Promise.reject(new AgentError('TOOL_SPAWN_FAILED', 'empty argv'));
  let ids: UserIds | undefined;
  try {
    ids = req.user === undefined ? undefined : lookupUser(req.user);
  } catch (e) {
    return Promise.reject(e);
  }
  const env: Record<string, string> = {
    PATH: SCRUBBED_PATH,
    LANG: 'C.UTF-8',
    HOME: ids?.home ?? req.cwd ?? '/',
    ...req.env,
  };
  return new Promise<ExecResult>((resolvePromise, rejectPromise) => {
    let settled = false;
    let failure: AgentError | undefined;
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    const stderr: Buffer[] = [];
    let stderrBytes = 0;
    let termTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;

    const child = spawn(program, req.argv.slice(1), {
      cwd: req.cwd,
      env,
      detached: true, // its own process group, so a timeout kills grandchildren too
      stdio: [req.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
      ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
    });

    const stop = (error: AgentError) => {
      if (failure) return;
      failure = error;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), req.killGraceMs);
    };
    const onAbort = () => stop(new AgentError('TOOL_ABORTED', 'call aborted: the agent is stopping'));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    if (req.signal?.aborted) onAbort();

    termTimer = setTimeout(
      () =>
        stop(
          new AgentError('TOOL_TIMEOUT', `${program} did not finish within ${req.timeoutMs} ms`, {
            details: { timeoutMs: req.timeoutMs },
          }),
        ),
      req.timeoutMs,
    );

    child.stdout!.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > req.maxOutputBytes) {
        stop(
          new AgentError('TOOL_OUTPUT_TOO_LARGE', `${program} wrote more than ${req.maxOutputBytes} bytes`, {
            details: { maxOutputBytes: req.maxOutputBytes },
          }),
        );
        return;
      }
      stdout.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderrBytes < STDERR_KEEP_BYTES) stderr.push(chunk.subarray(0, STDERR_KEEP_BYTES - stderrBytes));
      stderrBytes += chunk.length;
    });
    if (req.stdin && child.stdin) {
      // EPIPE when the program does not read its stdin is not an error of the call.
      child.stdin.on('error', () => {});
      child.stdin.end(Buffer.from(req.stdin));
    }

    const finish = (outcome: ExecResult | AgentError) => {
      if (settled) return;
      settled = true;
      clearTimeout(termTimer);
      clearTimeout(killTimer);
      req.signal?.removeEventListener('abort', onAbort);
      if (outcome instanceof AgentError) rejectPromise(outcome);
      else resolvePromise(outcome);
    };

    child.on('error', (cause: NodeJS.ErrnoException) => {
      const what =
        cause.code === 'ENOENT'
          ? req.cwd && !existsSync(req.cwd)
            ? `working directory ${req.cwd} does not exist`
            : 'no such program'
          : cause.code === 'EACCES'
            ? 'permission denied (is it executable?)'
            : (cause.code ?? cause.message);
      finish(
        new AgentError('TOOL_SPAWN_FAILED', `cannot start ${program}: ${what}`, {
          cause,
          details: { program, errno: cause.code },
        }),
      );
    });
    child.on('exit', () => {
      // Stragglers left in the group would hold the pipes open; the call is over, so they go too.
      killGroup(child.pid, 'SIGKILL');
    });
    child.on('close', (code, signal) => {
      const stderrText = Buffer.concat(stderr).toString('utf8');
      const durationMs = clock.monotonicMs() - started;
      if (failure) return finish(failure);
      if (code !== 0) {
        const why = signal ? `was killed by ${signal}` : `exited with status ${code}`;
        const firstLine = stderrText.trim().split('\n')[0]?.slice(0, 200);
        return finish(
          new AgentError('TOOL_EXIT_NONZERO', `${program} ${why}${firstLine ? `: ${firstLine}` : ''}`, {
            details: { exitCode: code, signal, stderr: stderrText.slice(0, 1024) },
          }),
        );
      }
      finish({ stdout: new Uint8Array(Buffer.concat(stdout)), stderr: stderrText, durationMs });
    });
  });
}
