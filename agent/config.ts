// The agent's one configuration file (TOML): its schema, and parsing with errors located at line:column.
// Paths in the file are resolved against the file's directory; environment overrides live in paths.ts.

import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { AgentError } from './errors.ts';
import { locateTomlPath, scanTomlEntries } from './toml-locate.ts';

/** Dotted lower-case names: `greenhouse.fan.set`. Built-ins own the `system.` and `telemetry.` prefixes. */
export const DOTTED_NAME = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
export const RESERVED_TOOL_PREFIXES = ['system.', 'telemetry.'] as const;

const DottedName = z.string().regex(DOTTED_NAME, 'must be a dotted lower-case name such as "greenhouse.fan.set"');
const SafetyClass = z.enum(['read_only', 'reversible', 'physical_actuation']);
export type SafetyClass = z.infer<typeof SafetyClass>;

const JsonSchemaObject = z.record(z.string(), z.unknown());

/** `HH:MM-HH:MM` in the agent's time zone; a window may wrap midnight (22:00-06:00). */
const HoursWindow = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, 'must look like "06:00-22:00"')
  .refine((s) => s.slice(0, 5) !== s.slice(6), 'an empty window allows nothing; remove allowed_hours instead');

/** One argv element (a template string) or a group included only when every argument it names is present. */
const ArgvItem = z.union([z.string().max(4096), z.array(z.string().max(4096)).min(1).max(16)]);

const ExecSpec = z.strictObject({
  /** argv[0] is an absolute path or a name looked up in the scrubbed PATH; `{arg}` placeholders fill from args. */
  argv: z.array(ArgvItem).min(1).max(128),
  /** How stdout becomes the result: `text` (string), `json`, or `number`. */
  output: z.enum(['text', 'json', 'number']).default('text'),
  /** `args_json`: the validated arguments are also written to stdin as JSON. */
  stdin: z.enum(['none', 'args_json']).default('none'),
  cwd: z.string().min(1).optional(),
  /** Run as this user (name or numeric uid); needs the agent to run as root. */
  user: z.string().min(1).optional(),
  /** Extra environment variables; the environment is otherwise scrubbed to PATH, LANG and HOME. */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
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

const UndoSpec = z.strictObject({
  /** The tool that reverses this one (often the same tool with the previous value). */
  tool: DottedName,
  /** Arguments of the undo call; a string exactly `{args.NAME}` or `{output.NAME}` is replaced by that value. */
  args: z.record(z.string(), z.unknown()).default({}),
});
export type UndoSpec = z.infer<typeof UndoSpec>;

const ToolConfig = z.strictObject({
  name: DottedName,
  description: z.string().min(1).max(2000),
  safety_class: SafetyClass,
  timeout_ms: z.number().int().min(1).max(600_000).default(10_000),
  input_schema: JsonSchemaObject.default({ type: 'object', properties: {}, additionalProperties: false }),
  output_schema: JsonSchemaObject.optional(),
  exec: ExecSpec,
  undo: UndoSpec.optional(),
  /** Minimum seconds between two allowed calls of this tool. */
  min_interval_s: z
    .number()
    .min(0)
    .max(86_400 * 7)
    .optional(),
  allowed_hours: HoursWindow.optional(),
  /** Tools that must not be running while this one runs (and vice versa). */
  exclusive_with: z.array(DottedName).max(64).default([]),
});
export type ToolConfig = z.infer<typeof ToolConfig>;

const SamplerConfig = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('system') }),
  z.strictObject({
    kind: z.literal('exec'),
    argv: z.array(z.string().max(4096)).min(1).max(128),
    output: z.enum(['json', 'number']).default('number'),
    timeout_ms: z.number().int().min(1).max(600_000).default(10_000),
    max_output_bytes: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024)
      .default(64 * 1024),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
  }),
  /** Values arrive only from other processes through the local ingest API. */
  z.strictObject({ kind: z.literal('ingest') }),
]);
export type SamplerConfig = z.infer<typeof SamplerConfig>;

const StreamConfig = z.strictObject({
  name: DottedName,
  description: z.string().max(2000).default(''),
  unit: z.string().max(32).optional(),
  priority: z.enum(['low', 'normal', 'high']).default('normal'),
  /** Sampling interval (ignored for `ingest`). */
  interval_s: z.number().min(0.1).max(86_400).default(60),
  /** How long an unsent record stays worth sending; defaults to queue.ttl_s. */
  ttl_s: z
    .number()
    .int()
    .min(1)
    .max(86_400 * 365)
    .optional(),
  sampler: SamplerConfig,
});
export type StreamConfig = z.infer<typeof StreamConfig>;

const RadioConfig = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/),
  kind: z.enum(['rnode', 'meshtastic']),
  /** Serial device, preferably a stable /dev/serial/by-id/ path. */
  path: z.string().min(1),
  baud: z.number().int().min(1200).max(4_000_000).default(115_200),
});
export type RadioConfig = z.infer<typeof RadioConfig>;

const Port = z.number().int().min(0).max(65_535);

export const AgentConfig = z
  .strictObject({
    agent: z
      .strictObject({
        /** A label for people; the device's identity is its key. */
        name: z.string().min(1).max(128).default('outpost-agent'),
        /** IANA time zone that `allowed_hours` windows are read in. */
        timezone: z.string().min(1).default('UTC'),
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
        /** The tenant this device belongs to; tokens for another tenant are refused. */
        tenant_id: z.string().min(1).max(128),
        /** This device's id in tokens; defaults to its did:key. */
        device_id: z.string().min(1).max(256).optional(),
        /** JWKS of the tenant's token issuer (JSON file). */
        jwks: z.string().min(1),
        /** The tenant's approval policy for physical_actuation (JSON file). */
        approval_policy: z.string().min(1),
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
        ttl_s: z
          .number()
          .int()
          .min(60)
          .default(7 * 86_400),
      })
      .prefault({}),
    telemetry: z
      .strictObject({
        /** Recent records kept in memory per stream for `telemetry.read` and `telemetry tail`. */
        recent_per_stream: z.number().int().min(1).max(10_000).default(256),
        max_ingest_batch: z.number().int().min(1).max(10_000).default(1_000),
      })
      .prefault({}),
    tools: z.array(ToolConfig).max(256).default([]),
    streams: z.array(StreamConfig).max(256).default([]),
    radios: z.array(RadioConfig).max(8).default([]),
  })
  .superRefine((c, ctx) => {
    const toolNames = new Map<string, number>();
    c.tools.forEach((t, i) => {
      if (RESERVED_TOOL_PREFIXES.some((p) => t.name.startsWith(p))) {
        ctx.addIssue({
          code: 'custom',
          path: ['tools', i, 'name'],
          message: `"${t.name}" uses a prefix reserved for built-in tools (${RESERVED_TOOL_PREFIXES.join(', ')})`,
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
      t.exclusive_with.forEach((x, j) => {
        if (!toolNames.has(x) || x === t.name) {
          ctx.addIssue({
            code: 'custom',
            path: ['tools', i, 'exclusive_with', j],
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
    });
    const radioNames = new Set<string>();
    c.radios.forEach((r, i) => {
      if (radioNames.has(r.name))
        ctx.addIssue({ code: 'custom', path: ['radios', i, 'name'], message: `radio "${r.name}" is declared twice` });
      radioNames.add(r.name);
    });
    try {
      new Intl.DateTimeFormat('en-GB', { timeZone: c.agent.timezone });
    } catch {
      ctx.addIssue({ code: 'custom', path: ['agent', 'timezone'], message: `unknown time zone "${c.agent.timezone}"` });
    }
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
  return z.toJSONSchema(AgentConfig, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
