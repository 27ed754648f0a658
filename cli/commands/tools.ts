// `outpost tools list|call|undo`, `outpost telemetry push|tail`, `outpost queue stats`, `outpost audit
// verify|export`: thin clients of the running agent's local API.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type {
  AuditVerifyView,
  IngestResponse,
  QueueStatsView,
  TailResponse,
  ToolCallResponse,
  ToolsView,
} from '../../agent/api-types.ts';
import { AgentError } from '../../agent/errors.ts';
import { isOutpostError, OutpostError } from '../../protocol/errors.ts';
import { AGENT_OPTIONS, agentClient, readSecretFile, toolArgs } from '../agent-setup.ts';
import { type Command, type CommandContext, optString, print } from '../command.ts';
import { EXIT } from '../exit.ts';
import { formatBytes, formatDuration } from './agent.ts';

const AUTH_OPTIONS = {
  'token-file': { type: 'string' },
  'quorum-file': { type: 'string' },
} as const;

function needPositional(ctx: CommandContext, what: string): string {
  const v = ctx.positionals[0];
  if (!v) throw new OutpostError('USAGE', `missing ${what}`);
  return v;
}

function callResultText(r: ToolCallResponse): string {
  const result = typeof r.result === 'string' ? r.result : JSON.stringify(r.result, null, 2);
  const undo = r.undoable ? `\n  undo with: outpost tools undo ${r.call_id}` : '';
  const of = r.undo_of ? ` (undid ${r.undo_of})` : '';
  return `${result}\n  call ${r.call_id}${of}: ${r.tool} [${r.safety_class}] allowed for ${r.decision.principal}, ${r.duration_ms} ms${undo}`;
}

async function auth(ctx: CommandContext): Promise<{ token?: string; quorum?: string }> {
  const token = await readSecretFile(ctx, 'token-file');
  const quorum = await readSecretFile(ctx, 'quorum-file');
  return { ...(token ? { token } : {}), ...(quorum ? { quorum } : {}) };
}

const HINTS: Readonly<Record<string, string>> = {
  TOKEN_REQUIRED: 'pass a runtime token with --token-file FILE (for tests and off-grid sites: outpost dev token)',
  QUORUM_REQUIRED: 'pass a quorum token with --quorum-file FILE (for tests and off-grid sites: outpost dev approve)',
  TRUST_NOT_CONFIGURED: 'add a [trust] table to the agent config (outpost dev trust init makes one)',
  TOKEN_REPLAYED: 'tokens are single-use on the device: mint a fresh one for each call',
  QUORUM_REUSED: 'quorum tokens approve one call: ask the approvers for a new one',
};

/** Sends a call and, when the gate refuses, adds what to do about it. */
async function callWithHint<T>(ctx: CommandContext, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (e) {
    const hint = isOutpostError(e, 'GATE_DENIED') ? HINTS[String(e.details.reason)] : undefined;
    if (hint && !ctx.json) ctx.io.stderr(`hint: ${hint}\n`);
    throw e;
  }
}

/** Parses a telemetry value word: JSON when it parses to a number, boolean or string, else the text itself. */
export function telemetryValue(word: string): number | boolean | string {
  try {
    const v = JSON.parse(word) as unknown;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  } catch {
    // not JSON: the text is the value
  }
  return word;
}

export const toolsCommands: Command[] = [
  {
    path: ['tools', 'list'],
    summary: "list the agent's tools with their safety class",
    usage: '[--json]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      const v = await agentClient(ctx).get<ToolsView>('/v1/tools');
      print(ctx, v, () => {
        const w = Math.max(...v.tools.map((t) => t.name.length));
        const rows = v.tools.map(
          (t) =>
            `  ${t.name.padEnd(w)}  ${t.safety_class.padEnd(18)}  ${t.description.split(/(?<=\.)\s/)[0]!.slice(0, 80)}`,
        );
        return [`manifest ${v.manifest_hash}`, ...rows].join('\n');
      });
      return EXIT.ok;
    },
  },
  {
    path: ['tools', 'call'],
    summary:
      'call a tool through the safety gate (reversible and physical tools need --token-file, physical also --quorum-file)',
    usage: 'TOOL [KEY=VALUE…] [--args JSON] [--token-file FILE|-] [--quorum-file FILE|-] [--call-id ID]',
    options: { ...AGENT_OPTIONS, ...AUTH_OPTIONS, args: { type: 'string' }, 'call-id': { type: 'string' } },
    async run(ctx) {
      const tool = needPositional(ctx, 'TOOL');
      const body = {
        tool,
        args: toolArgs(ctx, ctx.positionals.slice(1)),
        call_id: optString(ctx, 'call-id') ?? randomUUID(),
        ...(await auth(ctx)),
      };
      const r = await callWithHint(ctx, () =>
        agentClient(ctx, 15 * 60_000).post<ToolCallResponse>('/v1/tools/call', body),
      );
      print(ctx, r, () => callResultText(r));
      return EXIT.ok;
    },
  },
  {
    path: ['tools', 'undo'],
    summary: 'reverse a reversible call by its call id (through the gate, with your own token)',
    usage: 'CALL_ID [--token-file FILE|-] [--quorum-file FILE|-]',
    options: { ...AGENT_OPTIONS, ...AUTH_OPTIONS },
    async run(ctx) {
      const callId = needPositional(ctx, 'CALL_ID');
      const body = { call_id: callId, ...(await auth(ctx)) };
      const r = await callWithHint(ctx, () =>
        agentClient(ctx, 15 * 60_000).post<ToolCallResponse>('/v1/tools/undo', body),
      );
      print(ctx, r, () => callResultText(r));
      return EXIT.ok;
    },
  },
  {
    path: ['telemetry', 'push'],
    summary: 'queue a telemetry value on an ingest stream (or a batch: --file FILE|- of JSON lines)',
    usage: 'STREAM VALUE [--ts-ms MS] | --file FILE|-',
    options: { ...AGENT_OPTIONS, file: { type: 'string' }, 'ts-ms': { type: 'string' } },
    async run(ctx) {
      const file = optString(ctx, 'file');
      let records: unknown[];
      if (file !== undefined) {
        const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
        records = text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l, i) => {
            try {
              return JSON.parse(l) as unknown;
            } catch (e) {
              throw new AgentError('INGEST_INVALID', `line ${i + 1} is not JSON: ${(e as Error).message}`);
            }
          });
      } else {
        const [stream, value] = ctx.positionals;
        if (!stream || value === undefined) throw new OutpostError('USAGE', 'expected STREAM VALUE (or --file)');
        const ts = optString(ctx, 'ts-ms');
        records = [{ stream, value: telemetryValue(value), ...(ts ? { ts_ms: Number(ts) } : {}) }];
      }
      const r = await agentClient(ctx).post<IngestResponse>('/v1/telemetry', { records });
      print(ctx, r, () => `queued ${r.seqs.length} record${r.seqs.length === 1 ? '' : 's'} (seq ${r.seqs.join(', ')})`);
      return EXIT.ok;
    },
  },
  {
    path: ['telemetry', 'tail'],
    summary: 'show recent telemetry records; --follow keeps printing new ones until interrupted',
    usage: '[--stream NAME] [--limit N] [--follow]',
    options: {
      ...AGENT_OPTIONS,
      stream: { type: 'string' },
      limit: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
    },
    async run(ctx) {
      const client = agentClient(ctx);
      const stream = optString(ctx, 'stream');
      const limit = Number(optString(ctx, 'limit') ?? '20');
      const show = (r: TailResponse) => {
        if (ctx.json) for (const rec of r.records) ctx.io.stdout(`${JSON.stringify(rec)}\n`);
        else {
          for (const rec of r.records) {
            ctx.io.stdout(
              `${new Date(rec.ts_ms).toISOString()}  #${rec.seq}  ${rec.stream}  ${JSON.stringify(rec.value)}\n`,
            );
          }
        }
      };
      let r = await client.get<TailResponse>('/v1/telemetry', { stream, limit });
      show(r);
      if (ctx.values.follow !== true) return EXIT.ok;
      let after = r.records.length > 0 ? r.records[r.records.length - 1]!.seq : r.last_seq;
      while (!ctx.io.stopSignal.aborted) {
        try {
          r = await client.get<TailResponse>('/v1/telemetry', { stream, limit: 1000, after, wait_ms: 25_000 });
        } catch (e) {
          if (ctx.io.stopSignal.aborted) break;
          throw e;
        }
        show(r);
        if (r.records.length > 0) after = r.records[r.records.length - 1]!.seq;
      }
      return EXIT.ok;
    },
  },
  {
    path: ['queue', 'stats'],
    summary: 'show the telemetry queue: depth, bytes, age and drops',
    usage: '[--json]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      const q = await agentClient(ctx).get<QueueStatsView>('/v1/queue');
      print(ctx, q, () =>
        [
          `queue: ${q.depth} units, ${formatBytes(q.bytes)} of ${formatBytes(q.max_bytes)} (${((100 * q.bytes) / q.max_bytes).toFixed(1)} %)`,
          `  oldest: ${q.oldest_age_s === null ? '—' : formatDuration(q.oldest_age_s)}`,
          `  dropped: ${
            Object.keys(q.dropped).length === 0
              ? 'none'
              : Object.entries(q.dropped)
                  .map(([k, v]) => `${v} (${k})`)
                  .join(', ')
          }`,
          ...Object.entries(q.by_stream).map(([s, v]) => `  ${s}: ${v.depth} units, ${formatBytes(v.bytes)}`),
        ].join('\n'),
      );
      return EXIT.ok;
    },
  },
  {
    path: ['audit', 'verify'],
    summary: "verify the agent's hash-chained audit log and its signed checkpoints",
    usage: '[--json]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      const v = await agentClient(ctx, 10 * 60_000).post<AuditVerifyView>('/v1/audit/verify', {});
      if (v.ok) {
        print(
          ctx,
          v,
          () =>
            `✓ audit chain verifies: ${v.entries} entries, ${v.checkpoints} signed checkpoints, head #${v.head_seq}`,
        );
        return EXIT.ok;
      }
      if (ctx.json) print(ctx, v, () => '');
      throw new OutpostError(
        'AUDIT_CHAIN_BROKEN',
        `audit chain broken at entry #${v.first_bad_seq} (${v.problem}): ${v.message}`,
        {
          details: { ...v },
        },
      );
    },
  },
  {
    path: ['audit', 'export'],
    summary: 'write the audit log as JSON lines (entries and signed checkpoints) to stdout',
    usage: '',
    options: AGENT_OPTIONS,
    async run(ctx) {
      await agentClient(ctx, 10 * 60_000).stream('/v1/audit', (chunk) => ctx.io.stdout(chunk));
      return EXIT.ok;
    },
  },
];
