// Samplers: the agent's own telemetry producers. Streams whose source is `system` share one board sample
// per period; `exec` streams with the same program and period share one run of it. Each sample goes
// through the same ingest path as pushed telemetry (signed, then durably queued).

import type { Clock } from '../protocol/clock.ts';
import type { Logger } from '../protocol/log.ts';
import { AgentError } from './errors.ts';
import { runExec } from './exec-runner.ts';
import type { StreamRuntime } from './manifest-builder.ts';
import { parseToolOutput } from './output-parse.ts';
import type { SystemInfoSource } from './system-info.ts';
import { checkValue, type IngestInput, type TelemetryIngest } from './telemetry-ingest.ts';

export interface SamplerState {
  readonly stream: string;
  readonly kind: 'system' | 'exec';
  samples: number;
  errors: number;
  consecutiveErrors: number;
  lastError: string | undefined;
}

export interface Samplers {
  start(): void;
  /** Stops the timers and waits for samples in flight. */
  stop(): Promise<void>;
  states(): readonly SamplerState[];
}

export interface SamplersOptions {
  readonly streams: ReadonlyMap<string, StreamRuntime>;
  readonly ingest: TelemetryIngest;
  readonly systemInfo: SystemInfoSource;
  readonly clock: Clock;
  readonly log: Logger;
  readonly workDir: string;
  readonly onError?: (stream: string, error: unknown) => void;
}

interface Group {
  readonly key: string;
  readonly periodMs: number;
  readonly streams: readonly StreamRuntime[];
  read(signal: AbortSignal): Promise<unknown>;
}

/** The value of one stream in a group's reading (a JSON object for `json`, the value itself otherwise). */
function pick(stream: StreamRuntime, reading: unknown): unknown {
  const src = stream.config.source;
  if (src.kind === 'system') return (reading as Record<string, unknown>)[src.metric];
  if (src.kind === 'exec' && src.output === 'json') {
    if (reading === null || typeof reading !== 'object' || Array.isArray(reading)) {
      throw new AgentError('TOOL_OUTPUT_INVALID', 'sampler output is not a JSON object');
    }
    return (reading as Record<string, unknown>)[src.field!];
  }
  return reading;
}

export function createSamplers(options: SamplersOptions): Samplers {
  const { clock, log } = options;
  const states = new Map<string, SamplerState>();
  const groups = new Map<string, { periodMs: number; streams: StreamRuntime[]; read: Group['read'] }>();
  for (const s of options.streams.values()) {
    const src = s.config.source;
    if (src.kind === 'ingest') continue;
    // The config requires a period for every sampled stream.
    const periodMs = Math.round(s.config.period_s! * 1000);
    states.set(s.spec.name, {
      stream: s.spec.name,
      kind: src.kind,
      samples: 0,
      errors: 0,
      consecutiveErrors: 0,
      lastError: undefined,
    });
    const key =
      src.kind === 'system'
        ? `system\u0000${periodMs}`
        : `exec\u0000${periodMs}\u0000${src.output}\u0000${src.argv.join('\u0000')}\u0000${JSON.stringify(src.env)}`;
    let g = groups.get(key);
    if (!g) {
      const read: Group['read'] =
        src.kind === 'system'
          ? () => options.systemInfo.sample()
          : async (signal) => {
              const r = await runExec(
                {
                  argv: src.argv,
                  timeoutMs: Math.min(src.timeout_ms, periodMs),
                  killGraceMs: 1_000,
                  maxOutputBytes: src.max_output_bytes,
                  env: src.env,
                  cwd: options.workDir,
                  signal,
                },
                clock,
              );
              return parseToolOutput(src.output, r.stdout);
            };
      g = { periodMs, streams: [], read };
      groups.set(key, g);
    }
    g.streams.push(s);
  }

  const stopping = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();

  const failed = (stream: string, e: unknown) => {
    const st = states.get(stream)!;
    st.errors++;
    st.consecutiveErrors++;
    st.lastError = e instanceof Error ? e.message : String(e);
    options.onError?.(stream, e);
    // Log the first failure of a run of failures, not every period.
    if (st.consecutiveErrors === 1) log.warning('sampler.failed', { stream, err: e as Error });
  };

  async function tick(g: Group): Promise<void> {
    let reading: unknown;
    try {
      reading = await g.read(stopping.signal);
    } catch (e) {
      if (stopping.signal.aborted) return;
      for (const s of g.streams) failed(s.spec.name, e);
      return;
    }
    const ts = clock.nowMs();
    const records: IngestInput[] = [];
    for (const s of g.streams) {
      try {
        const value = pick(s, reading);
        if (value === null || value === undefined)
          throw new AgentError('TOOL_OUTPUT_INVALID', 'no value in this sample');
        const why = checkValue(s.spec.type, value);
        if (why) throw new AgentError('TOOL_OUTPUT_INVALID', why);
        records.push({ stream: s.spec.name, value, ts_ms: ts });
      } catch (e) {
        failed(s.spec.name, e);
      }
    }
    if (records.length === 0) return;
    try {
      await options.ingest.ingest(records, 'sampler');
      for (const r of records) {
        const st = states.get(r.stream)!;
        st.samples++;
        if (st.consecutiveErrors > 0) log.info('sampler.recovered', { stream: r.stream });
        st.consecutiveErrors = 0;
      }
    } catch (e) {
      for (const r of records) failed(r.stream, e);
    }
  }

  function schedule(g: Group, dueMono: number): void {
    if (stopping.signal.aborted) return;
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        const run = tick(g).finally(() => inFlight.delete(run));
        inFlight.add(run);
        void run.then(() => {
          // Next due time on the monotonic grid; a slow sample skips missed slots rather than bursting.
          const now = clock.monotonicMs();
          let next = dueMono + g.periodMs;
          if (next <= now) next = now + g.periodMs - ((now - dueMono) % g.periodMs);
          schedule(g, next);
        });
      },
      Math.max(0, dueMono - clock.monotonicMs()),
    );
    timers.add(timer);
  }

  return {
    start() {
      const now = clock.monotonicMs();
      for (const [key, g] of groups) schedule({ key, ...g }, now);
    },
    async stop() {
      stopping.abort();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.allSettled([...inFlight]);
    },
    states: () => [...states.values()],
  };
}
