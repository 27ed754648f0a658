// Runs a tool call the gate has allowed: an in-process handler for built-ins, a program for exec tools.
// It decides nothing; it enforces the manifest's timeout and checks the result against the output schema.

import type { Clock } from '../protocol/clock.ts';
import { validateJson } from '../protocol/json-schema.ts';
import { renderArgv } from './argv-template.ts';
import { AgentError } from './errors.ts';
import { runExec } from './exec-runner.ts';
import type { ToolRuntime } from './manifest-builder.ts';
import { parseToolOutput } from './output-parse.ts';

export interface ToolExecution {
  readonly result: unknown;
  readonly durationMs: number;
}

export interface Executor {
  /**
   * Runs `tool` with `args` (already validated). Rejects with AgentError TOOL_* codes; the result has been
   * checked against the tool's output schema when it declares one.
   */
  run(tool: ToolRuntime, args: Record<string, unknown>, callId: string): Promise<ToolExecution>;
  /** Aborts running calls (agent shutdown) and waits for them to settle. */
  stop(): Promise<void>;
  /** Calls in flight. */
  inFlight(): number;
}

export interface ExecutorOptions {
  readonly clock: Clock;
  /** Default working directory of exec tools (STATE_DIR/work); the daemon creates it. */
  readonly workDir: string;
}

function withTimeout<T>(p: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new AgentError('TOOL_TIMEOUT', `${name} did not finish within ${ms} ms`, { details: { timeoutMs: ms } }),
        ),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function createExecutor(options: ExecutorOptions): Executor {
  const { clock } = options;
  const stopping = new AbortController();
  const running = new Set<Promise<unknown>>();

  async function execute(tool: ToolRuntime, args: Record<string, unknown>, callId: string): Promise<unknown> {
    const { spec } = tool;
    if (tool.kind === 'builtin') {
      return withTimeout(tool.handler(args, { clock, signal: stopping.signal }), spec.timeoutMs, spec.name);
    }
    const { exec } = tool;
    const r = await runExec(
      {
        argv: renderArgv(exec.argv, args),
        timeoutMs: spec.timeoutMs,
        killGraceMs: exec.kill_grace_ms,
        maxOutputBytes: exec.max_output_bytes,
        env: { ...exec.env, OUTPOST_TOOL: spec.name, OUTPOST_CALL_ID: callId },
        cwd: exec.cwd ?? options.workDir,
        ...(exec.user ? { user: exec.user } : {}),
        ...(exec.stdin === 'args_json' ? { stdin: Buffer.from(JSON.stringify(args)) } : {}),
        signal: stopping.signal,
      },
      clock,
    );
    return parseToolOutput(exec.output, r.stdout);
  }

  return {
    inFlight: () => running.size,
    async run(tool, args, callId) {
      if (stopping.signal.aborted) throw new AgentError('SHUTTING_DOWN', 'the agent is stopping');
      const started = clock.monotonicMs();
      const p = execute(tool, args, callId);
      running.add(p);
      try {
        const result = await p;
        if (tool.spec.outputSchema) {
          const v = validateJson(tool.spec.outputSchema, result);
          if (!v.valid) {
            const first = v.errors[0]!;
            throw new AgentError(
              'TOOL_OUTPUT_INVALID',
              `${tool.spec.name} returned a result outside its output schema: ${first.path || '/'}: ${first.message}`,
              { details: { errors: v.errors.slice(0, 5) } },
            );
          }
        }
        return { result, durationMs: clock.monotonicMs() - started };
      } finally {
        running.delete(p);
      }
    },
    async stop() {
      stopping.abort();
      await Promise.allSettled([...running]);
    },
  };
}
