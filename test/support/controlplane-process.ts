// The control plane as a real child process (`outpost controlplane run`), ready when it logs server.listening, and
// an agent config for the greenhouse example with its programs and ports made safe for parallel tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, childEnv, ROOT } from './agent-process.ts';

export interface ControlPlaneProcess {
  readonly child: ChildProcess;
  readonly log: string[];
  readonly ready: Promise<void>;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

export function startControlPlaneProcess(
  stateDir: string,
  env: Readonly<Record<string, string>> = {},
  /** The program that runs `outpost` (default: this Node with cli/bin.ts); e.g. [the single binary]. */
  command: readonly string[] = [process.execPath, CLI],
): ControlPlaneProcess {
  const [program, ...programArgs] = command;
  const child = spawn(program!, [...programArgs, 'controlplane', 'run', '--state-dir', stateDir], {
    env: childEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log: string[] = [];
  let buffered = '';
  let onLine: ((l: string) => void) | undefined;
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
  const ready = new Promise<void>((resolve, reject) => {
    onLine = (l) => {
      if (l.includes('server.listening')) resolve();
    };
    void exited.then(([code, signal]) =>
      reject(new Error(`control plane exited (${code ?? signal}):\n${log.slice(-20).join('\n')}`)),
    );
  });
  ready.catch(() => {});
  return {
    child,
    log,
    ready,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return (await exited)[0];
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * examples/agent.toml with absolute program paths and ports 0, written to `dir/agent.toml`. The valve's allowed hours
 * are dropped: these tests call it at whatever time of day they run (the interlock is tested in gate.test.ts on a fake
 * clock).
 */
export function writeGreenhouseAgentConfig(dir: string, name = 'greenhouse-north'): string {
  const example = readFileSync(join(ROOT, 'examples/agent.toml'), 'utf8');
  const hours = /^allowed_hours = .*\n/m;
  if (!hours.test(example)) throw new Error('examples/agent.toml no longer has the allowed_hours line this drops');
  const text = example
    .replace(hours, '')
    .replaceAll('./greenhouse/', `${join(ROOT, 'examples/greenhouse')}/`)
    .replace(/http_port = \d+/, 'http_port = 0')
    .replace(/^port = \d+/m, 'port = 0')
    .replace(/^name = "greenhouse-north"/m, `name = "${name}"`);
  const file = join(dir, 'agent.toml');
  writeFileSync(file, text);
  return file;
}

/** Re-checks `condition` until it holds (each check is a real observation, e.g. an HTTP query). */
export async function until<T>(
  condition: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await condition();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
