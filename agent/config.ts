// The agent's one configuration file (TOML): its schema, and parsing with errors located at line:column.
// Paths in the file are resolved against the file's directory; environment overrides live in paths.ts.

import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { AgentError } from './errors.ts';
import { locateTomlPath, scanTomlEntries } from './toml-locate.ts';

/** Dotted lower-case names: `greenhouse.fan.set` (manifest rule: at least two words, ≤ 64 characters). */
export const DOTTED_NAME = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
/** Built-in tools and the system sampler's streams own these prefixes. */
export const RESERVED_PREFIXES = ['system.', 'telemetry.'] as const;
/** A device label (manifest `device.name`): lowercase letters, digits, inner hyphens, 1..32 characters. */
const DEVICE_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

const DottedName = z
  .string()
  .max(64)
  .regex(DOTTED_NAME, 'must be a dotted lower-case name such as "greenhouse.fan.set"');
const SafetyClass = z.enum(['read_only', 'reversible', 'physical_actuation']);
export type SafetyClass = z.infer<typeof SafetyClass>;

const JsonSchemaObject = z.record(z.string(), z.unknown());
const EnvVars = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment names are identifiers'), z.string());
const Argv = z.array(z.string().max(4096)).min(1).max(128);

/** One argv element (a template string) or a group included only when every argument it names is present. */
const ArgvItem = z.union([z.string().max(4096), z.array(z.string().max(4096)).min(1).max(16)]);

const ExecSpec = z.strictObject({
  /** argv[0]: absolute, `./relative` to this file, or a name in the scrubbed PATH; `{arg}` placeholders fill from args. */
  argv: z.array(ArgvItem).min(1).max(128),
  /** How stdout becomes the result: `text` (string), `json`, or `number`. */
  output: z.enum(['text', 'json', 'number']).default('text'),
  /** `args_json`: the validated arguments are also written to stdin as JSON. */
  stdin: z.enum(['none', 'args_json']).default('none'),
  /** Working directory; default STATE_DIR/work. */
  cwd: z.string().min(1).optional(),
  /** Run as this user (name or numeric uid); needs the agent to run as root. */
  user: z.string().min(1).optional(),
  /** Extra environment variables; the environment is otherwise scrubbed to PATH, LANG and HOME. */
  env: EnvVars.default({}),
  max_output_bytes: z
    .number()
    .int()
    .min(1)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
  /** Time between SIGTERM and SIGKILL of the process group after the timeout. */
  kill_grace_ms: z.number().int().min(0).max(60_000).default(2_000),
});
export type ExecSpec = z.infer<typeof ExecSpec>;

/** Where an undo argument comes from (manifest ArgSource): the call's args or result by JSON Pointer, or a constant. */
const UndoArg = z.union([
  z.strictObject({ from: z.enum(['args', 'result']), pointer: z.string().min(1).max(256) }),
  z.strictObject({ const: z.unknown() }),
]);

const UndoSpec = z.strictObject({
  /** The tool that reverses this one (often the same tool with the previous value); it must be reversible. */
  tool: DottedName,
  args: z.record(z.string(), UndoArg).default({}),
});
export type UndoSpec = z.infer<typeof UndoSpec>;

const ToolConfig = z.strictObject({
  name: DottedName,
  title: z.string().min(1).max(64).optional(),
  description: z.string().min(1).max(1024),
  safety_class: SafetyClass,
  timeout_ms: z.number().int().min(1).max(600_000).default(10_000),
  input_schema: JsonSchemaObject.default({ type: 'object', properties: {}, additionalProperties: false }),
  output_schema: JsonSchemaObject.optional(),
  exec: ExecSpec,
  undo: UndoSpec.optional(),
  /** At most `max_calls` allowed calls in any window of `per_s` seconds. */
  rate_limit: z
    .strictObject({
      max_calls: z.number().int().min(1).max(10_000),
      per_s: z.number().min(0.001).max(86_400),
    })
    .optional(),
  /** Least time between the end of one call and the start of the next. */
  min_interval_s: z.number().min(0.001).max(86_400).optional(),
  /** Calls only while the local hour (UTC + agent.utc_offset_minutes) is in [from_hour, to_hour), wrapping midnight. */
  allowed_hours: z
    .strictObject({ from_hour: z.number().int().min(0).max(23), to_hour: z.number().int().min(0).max(23) })
    .refine((h) => h.from_hour !== h.to_hour, 'from_hour and to_hour must differ')
    .optional(),
  /** No call of this tool within `window_s` of a call of any tool listed (and the reverse). */
  exclusive_with: z
    .strictObject({
      tools: z.array(DottedName).min(1).max(16),
      window_s: z.number().min(0.001).max(86_400),
    })
    .optional(),
});
export type ToolConfig = z.infer<typeof ToolConfig>;

const SystemMetric = z.enum([
  'cpu_temp_c',
  'load_1m',
  'load_5m',
  'mem_used_ratio',
  'disk_used_ratio',
  'uptime_s',
  'throttled',
]);
export type SystemMetric = z.infer<typeof SystemMetric>;

const StreamSource = z.discriminatedUnion('kind', [
  /** A number from this board (systeminformation and the Pi firmware). */
  z.strictObject({ kind: z.literal('system'), metric: SystemMetric }),
  /**
   * A program run every period: its stdout is one number (`output = "number"`) or a JSON object whose member
   * `field` is the value. Streams with the same argv and period share one run.
   */
  z.strictObject({
    kind: z.literal('exec'),
    argv: Argv,
    output: z.enum(['number', 'json', 'text']).default('number'),
    field: z.string().min(1).max(64).optional(),
    timeout_ms: z.number().int().min(1).max(600_000).default(10_000),
    max_output_bytes: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024)
      .default(64 * 1024),
    env: EnvVars.default({}),
  }),
  /** Values arrive only from other processes through the local ingest API. */
  z.strictObject({ kind: z.literal('ingest') }),
]);
export type StreamSource = z.infer<typeof StreamSource>;

const StreamConfig = z.strictObject({
  name: DottedName,
  description: z.string().min(1).max(256).optional(),
  /** Unit of the values (UCUM recommended: "Cel", "%", "kPa"); omit for unitless values. */
  unit: z.string().min(1).max(16).optional(),
  type: z.enum(['number', 'integer', 'boolean', 'string']).default('number'),
  /** Sampling period; required for sampled streams, optional for `ingest` (without it: an event stream). */
  period_s: z.number().min(0.1).max(86_400).optional(),
  /** 0 (least important) .. 7 (most important): a full queue drops the lowest priority first. */
  priority: z.number().int().min(0).max(7).default(4),
  /** How long an unsent value stays worth sending; defaults to queue.ttl_s. */
  ttl_s: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .optional(),
  source: StreamSource,
});
export type StreamConfig = z.infer<typeof StreamConfig>;

const Region = z.enum(['EU868', 'EU433', 'US915', 'AU915', 'AS923', 'KR920', 'IN865']);
const RadioConfig = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('rnode'),
    /** Serial device, preferably a stable /dev/serial/by-id/ path. */
    path: z.string().min(1),
    role: z.enum(['uplink', 'gateway']).default('uplink'),
    region: Region,
    frequency_hz: z.number().int(),
    bandwidth_hz: z.number().int(),
    spreading_factor: z.number().int(),
    coding_rate: z.number().int(),
    tx_power_dbm: z.number().int(),
  }),
  z.strictObject({
    kind: z.literal('meshtastic'),
    path: z.string().min(1),
    role: z.enum(['uplink', 'gateway']).default('uplink'),
    region: Region,
    modem_preset: z
      .enum([
        'LONG_FAST',
        'LONG_SLOW',
        'LONG_MODERATE',
        'MEDIUM_SLOW',
        'MEDIUM_FAST',
        'SHORT_SLOW',
        'SHORT_FAST',
        'SHORT_TURBO',
      ])
      .optional(),
    channel_index: z.number().int().optional(),
  }),
]);
export type RadioConfig = z.infer<typeof RadioConfig>;

const Port = z.number().int().min(0).max(65_535);

export const AgentConfig = z
  .strictObject({
    agent: z
      .strictObject({
        /** The device's label in the manifest; its identity is its key. */
        name: z
          .string()
          .regex(DEVICE_LABEL, 'must be lowercase letters, digits and inner hyphens, 1..32 characters')
          .default('outpost-agent'),
        model: z.string().min(1).max(64).optional(),
        labels: z.record(z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/), z.string().min(1).max(64)).optional(),
        /** Offset of local time from UTC, for allowed_hours (a fixed offset: the manifest states it). */
        utc_offset_minutes: z.number().int().min(-720).max(840).default(0),
        log_level: z.enum(['debug', 'info', 'notice', 'warning', 'error']).default('info'),
      })
      .prefault({}),
    paths: z
      .strictObject({
        state_dir: z.string().min(1).optional(),
        socket: z.string().min(1).optional(),
      })
      .prefault({}),
    local_api: z
      .strictObject({
        /** File mode of the unix socket: owner and group may connect. */
        socket_mode: z.number().int().min(0).max(0o777).default(0o660),
        max_body_bytes: z
          .number()
          .int()
          .min(1024)
          .max(16 * 1024 * 1024)
          .default(1024 * 1024),
        request_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
      })
      .prefault({}),
    mcp: z
      .strictObject({
        /** Streamable HTTP endpoint on 127.0.0.1 (POST /mcp); port 0 picks a free port. */
        http_enabled: z.boolean().default(true),
        http_port: Port.default(7390),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Prometheus text on http://127.0.0.1:PORT/metrics; port 0 picks a free port. */
        port: Port.default(9390),
      })
      .prefault({}),
    trust: z
      .strictObject({
        /** The tenant's token issuer (`iss` of accepted tokens). */
        issuer: z.string().min(1).max(256),
        /** `aud` of accepted tokens (default "outpost-device"). */
        audience: z.string().min(1).max(256).default('outpost-device'),
        /** JWK Set of the issuer (JSON file). */
        jwks: z.string().min(1),
        /** The tenant's approval policy for physical_actuation (JSON file); it names the tenant. */
        approval_policy: z.string().min(1),
        /** When given, must equal the policy's tenant (a guard against a bundle for another tenant). */
        tenant_id: z.string().min(1).max(64).optional(),
      })
      .optional(),
    queue: z
      .strictObject({
        max_bytes: z
          .number()
          .int()
          .min(64 * 1024)
          .default(64 * 1024 * 1024),
        max_records: z.number().int().min(100).default(1_000_000),
        /** Telemetry stops when the state filesystem has less than this free: the rest is kept for the audit log. */
        reserve_free_bytes: z
          .number()
          .int()
          .min(0)
          .default(8 * 1024 * 1024),
        /** Default time an unsent record stays worth sending. */
        ttl_s: z
          .number()
          .int()
          .min(60)
          .max(30 * 86_400)
          .default(7 * 86_400),
      })
      .prefault({}),
    telemetry: z
      .strictObject({
        /** Recent records kept in memory per stream for `telemetry.read` and `telemetry tail`. */
        recent_per_stream: z.number().int().min(1).max(10_000).default(256),
      })
      .prefault({}),
    tools: z.array(ToolConfig).max(120).default([]),
    streams: z.array(StreamConfig).max(100).default([]),
    radios: z.array(RadioConfig).max(4).default([]),
  })
  .superRefine((c, ctx) => {
    const toolNames = new Map<string, number>();
    c.tools.forEach((t, i) => {
      if (RESERVED_PREFIXES.some((p) => t.name.startsWith(p))) {
        ctx.addIssue({
          code: 'custom',
          path: ['tools', i, 'name'],
          message: `"${t.name}" uses a prefix reserved for built-ins (${RESERVED_PREFIXES.join(', ')})`,
        });
      }
      if (toolNames.has(t.name))
        ctx.addIssue({ code: 'custom', path: ['tools', i, 'name'], message: `tool "${t.name}" is declared twice` });
      toolNames.set(t.name, i);
    });
    c.tools.forEach((t, i) => {
      if (t.safety_class === 'reversible' && !t.undo) {
        ctx.addIssue({ code: 'custom', path: ['tools', i], message: 'a reversible tool needs an [tools.undo] table' });
      }
      if (t.safety_class !== 'reversible' && t.undo) {
        ctx.addIssue({ code: 'custom', path: ['tools', i, 'undo'], message: 'only reversible tools declare an undo' });
      }
      if (t.undo && !toolNames.has(t.undo.tool)) {
        ctx.addIssue({ code: 'custom', path: ['tools', i, 'undo', 'tool'], message: `no tool named "${t.undo.tool}"` });
      }
      t.exclusive_with?.tools.forEach((x, j) => {
        if (!toolNames.has(x) || x === t.name) {
          ctx.addIssue({
            code: 'custom',
            path: ['tools', i, 'exclusive_with', 'tools', j],
            message: x === t.name ? 'a tool cannot exclude itself' : `no tool named "${x}"`,
          });
        }
      });
    });
    const streamNames = new Set<string>();
    c.streams.forEach((s, i) => {
      if (streamNames.has(s.name))
        ctx.addIssue({ code: 'custom', path: ['streams', i, 'name'], message: `stream "${s.name}" is declared twice` });
      streamNames.add(s.name);
      if (RESERVED_PREFIXES.some((p) => s.name.startsWith(p))) {
        ctx.addIssue({ code: 'custom', path: ['streams', i, 'name'], message: `"${s.name}" uses a reserved prefix` });
      }
      if (s.source.kind !== 'ingest' && s.period_s === undefined) {
        ctx.addIssue({ code: 'custom', path: ['streams', i], message: 'a sampled stream needs period_s' });
      }
      if (s.source.kind === 'exec' && s.source.output === 'json' && !s.source.field) {
        ctx.addIssue({ code: 'custom', path: ['streams', i, 'source'], message: 'a json source needs `field`' });
      }
      if (s.source.kind === 'exec' && s.source.output !== 'json' && s.source.field) {
        ctx.addIssue({
          code: 'custom',
          path: ['streams', i, 'source', 'field'],
          message: '`field` needs output = "json"',
        });
      }
    });
  });
export type AgentConfig = z.infer<typeof AgentConfig>;

export interface ConfigIssue {
  readonly path: string;
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
}

/** Renders a data path as TOML-ish text: `tools[0].exec.argv`. */
export function formatDataPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)),
    '',
  );
}

/** Human text for a list of issues: `FILE:LINE:COL: path: message` per line. */
export function formatConfigIssues(file: string, issues: readonly ConfigIssue[]): string {
  return issues
    .map((i) => `${file}${i.line ? `:${i.line}:${i.column}` : ''}: ${i.path ? `${i.path}: ` : ''}${i.message}`)
    .join('\n');
}

/**
 * Parses and validates config text. Throws AgentError CONFIG_SYNTAX (TOML error, with line and column) or
 * CONFIG_INVALID (details.issues: every schema issue located at its line:column).
 */
export function parseConfig(text: string, file = 'agent.toml'): AgentConfig {
  let data: unknown;
  try {
    data = parseToml(text);
  } catch (cause) {
    if (cause instanceof TomlError) {
      const first = cause.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      const issue: ConfigIssue = { path: '', line: cause.line, column: cause.column, message: first };
      throw new AgentError('CONFIG_SYNTAX', `${file}:${cause.line}:${cause.column}: ${first}`, {
        cause,
        details: { file, issues: [issue] },
      });
    }
    throw new AgentError('CONFIG_SYNTAX', `${file}: not TOML`, { cause, details: { file } });
  }
  const result = AgentConfig.safeParse(data);
  if (result.success) return result.data;
  const entries = scanTomlEntries(text);
  const issues: ConfigIssue[] = result.error.issues.flatMap((i) => {
    const path = i.path.filter((p): p is string | number => typeof p !== 'symbol');
    // An unknown key is located at the key itself, one issue per key.
    const located =
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => ({ path: [...path, k], message: `unknown key "${k}"` }))
        : [{ path, message: describeIssue(i) }];
    return located.map(({ path: p, message }) => {
      const at = locateTomlPath(text, p, entries);
      return { path: formatDataPath(p), ...(at ? { line: at.line, column: at.column } : {}), message };
    });
  });
  throw new AgentError('CONFIG_INVALID', `invalid configuration\n${formatConfigIssues(file, issues)}`, {
    details: { file, issues },
  });
}

function describeIssue(i: z.core.$ZodIssue): string {
  if (i.code === 'invalid_type' && i.input === undefined) return `missing required key (${i.expected} expected)`;
  return i.message;
}

/** JSON Schema of the config file, for editors and docs (generated into docs/agent-config.schema.json). */
export function configJsonSchema(): Record<string, unknown> {
  // A registry of our own rather than .meta(), which would write to zod's global registry at import time.
  const metadata = z.registry<Record<string, unknown>>();
  metadata.add(AgentConfig, {
    $id: 'urn:outpost:agent-config:v1',
    title: 'Outpost device agent configuration (agent.toml)',
    description:
      'The TOML file the agent reads (docs/agent.md). Generated from agent/config.ts; cross-field rules (undo tools exist, reserved prefixes, periods of sampled streams) are checked by the agent, not by this schema.',
  });
  return z.toJSONSchema(AgentConfig, { io: 'input', target: 'draft-2020-12', metadata }) as Record<string, unknown>;
}
