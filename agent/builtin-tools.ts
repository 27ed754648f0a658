// Tools every agent has: system.echo, system.info, system.metrics.subscribe, telemetry.read. Their specs go
// into the manifest like any other tool and every call passes the same gate; only the handler is in-process.

import type { Clock } from '../protocol/clock.ts';
import type { ToolSpec } from '../protocol/manifest.ts';
import { AgentError } from './errors.ts';
import type { RecentTelemetry } from './recent-telemetry.ts';
import type { SystemInfoSource } from './system-info.ts';

export interface BuiltinContext {
  readonly clock: Clock;
  /** Aborts when the agent stops; long handlers must heed it. */
  readonly signal: AbortSignal;
}

export type BuiltinHandler = (args: Record<string, unknown>, ctx: BuiltinContext) => Promise<unknown>;

export interface BuiltinTool {
  readonly spec: ToolSpec;
  readonly handler: BuiltinHandler;
}

export interface BuiltinDeps {
  readonly systemInfo: SystemInfoSource;
  readonly recent: RecentTelemetry;
}

/** system.metrics.subscribe collects for at most this long: "streaming" over request/response is bounded. */
export const MAX_SUBSCRIBE_MS = 60_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AgentError('TOOL_ABORTED', 'call aborted: the agent is stopping'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AgentError('TOOL_ABORTED', 'call aborted: the agent is stopping'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function builtinTools(deps: BuiltinDeps): BuiltinTool[] {
  return [
    {
      spec: {
        name: 'system.echo',
        title: 'Echo',
        description: 'Returns the message it is given. Checks that the device answers and the gate lets calls through.',
        inputSchema: {
          type: 'object',
          properties: { message: { type: 'string', maxLength: 4096, description: 'Text to echo back' } },
          required: ['message'],
          additionalProperties: false,
        },
        outputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
        safety_class: 'read_only',
        timeoutMs: 1_000,
      },
      handler: async (args) => ({ message: args.message }),
    },
    {
      spec: {
        name: 'system.info',
        title: 'Board information',
        description:
          'Model, OS, CPU temperature, throttling (Raspberry Pi), load, memory, disk, uptime and network interfaces of the device.',
        inputSchema: { type: 'object', properties: {}, additionalProperties: false },
        outputSchema: { type: 'object' },
        safety_class: 'read_only',
        timeoutMs: 15_000,
        rateLimit: { maxCalls: 30, perMs: 60_000 },
      },
      // The argument object is empty by schema: nothing a caller sends reaches systeminformation.
      handler: async () => deps.systemInfo.info(),
    },
    {
      spec: {
        name: 'system.metrics.subscribe',
        title: 'Sample board metrics',
        description:
          'Samples CPU temperature, load, memory and disk use `samples` times, `interval_ms` apart, and returns them all at the end (at most 60 s in total). For continuous data, read a telemetry stream.',
        inputSchema: {
          type: 'object',
          properties: {
            samples: { type: 'integer', minimum: 1, maximum: 60, default: 5 },
            interval_ms: { type: 'integer', minimum: 250, maximum: 10_000, default: 1_000 },
          },
          additionalProperties: false,
        },
        outputSchema: {
          type: 'object',
          properties: { samples: { type: 'array', items: { type: 'object' } } },
          required: ['samples'],
        },
        safety_class: 'read_only',
        timeoutMs: MAX_SUBSCRIBE_MS + 5_000,
        rateLimit: { maxCalls: 10, perMs: 60_000 },
      },
      handler: async (args, ctx) => {
        const samples = typeof args.samples === 'number' ? args.samples : 5;
        const intervalMs = typeof args.interval_ms === 'number' ? args.interval_ms : 1_000;
        if ((samples - 1) * intervalMs > MAX_SUBSCRIBE_MS) {
          throw new AgentError(
            'TOOL_ARGS_INVALID',
            `samples × interval_ms must stay within ${MAX_SUBSCRIBE_MS} ms (asked ${(samples - 1) * intervalMs} ms)`,
          );
        }
        const out: Record<string, unknown>[] = [];
        for (let i = 0; i < samples; i++) {
          if (i > 0) await sleep(intervalMs, ctx.signal);
          out.push({ ts_ms: ctx.clock.nowMs(), ...(await deps.systemInfo.sample()) });
        }
        return { samples: out };
      },
    },
    {
      spec: {
        name: 'telemetry.read',
        title: 'Read recent telemetry',
        description: 'The most recent telemetry records of one stream (or of all streams), oldest first.',
        inputSchema: {
          type: 'object',
          properties: {
            stream: { type: 'string', maxLength: 64, description: 'Stream name; all streams when absent' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
          },
          additionalProperties: false,
        },
        outputSchema: {
          type: 'object',
          properties: { records: { type: 'array', items: { type: 'object' } } },
          required: ['records'],
        },
        safety_class: 'read_only',
        timeoutMs: 1_000,
      },
      handler: async (args) => ({
        records: deps.recent.read({
          ...(typeof args.stream === 'string' ? { stream: args.stream } : {}),
          limit: typeof args.limit === 'number' ? args.limit : 20,
        }),
      }),
    },
  ];
}
