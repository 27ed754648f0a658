// Builds the CapabilityManifest from the config (tools, streams, radios) plus the built-in tools, and keeps
// beside it what the manifest does not carry: how each tool runs and where each stream's values come from.
// Problems the manifest decoder finds are mapped back to the config file's line:column.

import { isAbsolute, resolve } from 'node:path';
import { isOutpostError } from '../protocol/errors.ts';
import {
  type CapabilityManifest,
  decodeManifest,
  type Interlock,
  MANIFEST_VERSION,
  type ManifestIssue,
  manifestHash,
  type RadioSpec,
  type StreamSpec,
  type ToolSpec,
} from '../protocol/manifest.ts';
import { templateNames } from './argv-template.ts';
import type { BuiltinHandler, BuiltinTool } from './builtin-tools.ts';
import { type AgentConfig, type ConfigIssue, type ExecSpec, formatConfigIssues, type StreamConfig } from './config.ts';
import { AgentError } from './errors.ts';
import { locateTomlPath } from './toml-locate.ts';

export type ToolRuntime =
  | { readonly kind: 'builtin'; readonly spec: ToolSpec; readonly handler: BuiltinHandler }
  | { readonly kind: 'exec'; readonly spec: ToolSpec; readonly exec: ExecSpec };

export interface StreamRuntime {
  readonly spec: StreamSpec;
  readonly config: StreamConfig;
}

export interface BuiltAgentManifest {
  readonly manifest: CapabilityManifest;
  readonly hash: string;
  readonly tools: ReadonlyMap<string, ToolRuntime>;
  readonly streams: ReadonlyMap<string, StreamRuntime>;
  /** For each tool, the tools it keeps a distance from (both directions of mutually_exclusive). */
  readonly exclusions: ReadonlyMap<string, readonly { tool: string; windowMs: number }[]>;
}

export interface ManifestInputs {
  readonly config: AgentConfig;
  /** The config file (relative program paths are read against its directory) and its text (for locating errors). */
  readonly configFile: string;
  readonly configText: string;
  readonly deviceId: string;
  readonly agentVersion: string;
  readonly builtins: readonly BuiltinTool[];
}

const TOOL_KEYS: Readonly<Record<string, string>> = {
  inputSchema: 'input_schema',
  outputSchema: 'output_schema',
  timeoutMs: 'timeout_ms',
  rateLimit: 'rate_limit',
  safety_class: 'safety_class',
  description: 'description',
  title: 'title',
  name: 'name',
  undo: 'undo',
};
const STREAM_KEYS: Readonly<Record<string, string>> = {
  samplePeriodMs: 'period_s',
  ttlMs: 'ttl_s',
  unit: 'unit',
  type: 'type',
  priority: 'priority',
  name: 'name',
  description: 'description',
};

/** Resolves `./prog` against the config file's directory; absolute paths and bare names stay as they are. */
function resolveProgram(configFile: string, program: string): string {
  if (isAbsolute(program) || !(program.startsWith('./') || program.startsWith('../'))) return program;
  return resolve(configFile, '..', program);
}

function interlocksOf(t: AgentConfig['tools'][number], offsetMin: number): Interlock[] {
  const out: Interlock[] = [];
  if (t.allowed_hours) {
    out.push({
      kind: 'allowed_hours',
      fromHour: t.allowed_hours.from_hour,
      toHour: t.allowed_hours.to_hour,
      utcOffsetMinutes: offsetMin,
    });
  }
  if (t.exclusive_with) {
    out.push({
      kind: 'mutually_exclusive',
      tools: [...t.exclusive_with.tools],
      windowMs: Math.round(t.exclusive_with.window_s * 1000),
    });
  }
  if (t.min_interval_s !== undefined) out.push({ kind: 'min_interval', ms: Math.round(t.min_interval_s * 1000) });
  return out;
}

function toolSpecOf(t: AgentConfig['tools'][number], offsetMin: number): ToolSpec {
  const interlocks = interlocksOf(t, offsetMin);
  return {
    name: t.name,
    ...(t.title ? { title: t.title } : {}),
    description: t.description,
    inputSchema: t.input_schema as unknown as ToolSpec['inputSchema'],
    ...(t.output_schema ? { outputSchema: t.output_schema as unknown as ToolSpec['outputSchema'] } : {}),
    safety_class: t.safety_class,
    timeoutMs: t.timeout_ms,
    ...(t.rate_limit
      ? { rateLimit: { maxCalls: t.rate_limit.max_calls, perMs: Math.max(1, Math.round(t.rate_limit.per_s * 1000)) } }
      : {}),
    ...(interlocks.length > 0 ? { interlocks } : {}),
    ...(t.undo ? { undo: { tool: t.undo.tool, args: t.undo.args as NonNullable<ToolSpec['undo']>['args'] } } : {}),
  };
}

function streamSpecOf(s: StreamConfig, defaultTtlS: number): StreamSpec {
  const samplePeriodMs = s.period_s === undefined ? undefined : Math.round(s.period_s * 1000);
  return {
    name: s.name,
    ...(s.description ? { description: s.description } : {}),
    ...(s.unit ? { unit: s.unit } : {}),
    type: s.type,
    ...(samplePeriodMs !== undefined ? { samplePeriodMs } : {}),
    ttlMs: Math.max(samplePeriodMs ?? 0, (s.ttl_s ?? defaultTtlS) * 1000),
    priority: s.priority,
  };
}

function radioSpecOf(r: AgentConfig['radios'][number]): RadioSpec {
  if (r.kind === 'rnode') {
    return {
      kind: 'rnode',
      role: r.role,
      region: r.region,
      frequencyHz: r.frequency_hz,
      bandwidthHz: r.bandwidth_hz as 125_000,
      spreadingFactor: r.spreading_factor,
      codingRate: r.coding_rate,
      txPowerDbm: r.tx_power_dbm,
    };
  }
  return {
    kind: 'meshtastic',
    role: r.role,
    region: r.region,
    ...(r.modem_preset ? { modemPreset: r.modem_preset } : {}),
    ...(r.channel_index !== undefined ? { channelIndex: r.channel_index } : {}),
  };
}

/** Maps a manifest JSON Pointer to the config path that produced it (built-in tools map to nothing). */
function configPathOf(pointer: string, builtinCount: number): (string | number)[] | undefined {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const [section, index, key, ...rest] = parts;
  if (section === 'tools' && index !== undefined) {
    const i = Number(index) - builtinCount;
    if (!(i >= 0)) return undefined;
    if (key === undefined) return ['tools', i];
    if (key === 'interlocks') return ['tools', i];
    return ['tools', i, TOOL_KEYS[key] ?? key, ...rest];
  }
  if (section === 'streams' && index !== undefined) {
    return key === undefined
      ? ['streams', Number(index)]
      : ['streams', Number(index), STREAM_KEYS[key] ?? key, ...rest];
  }
  if (section === 'radios' && index !== undefined) return ['radios', Number(index)];
  if (section === 'device') return ['agent', key === 'agentVersion' || key === 'id' ? 'name' : (key ?? 'name')];
  return undefined;
}

function fail(inputs: ManifestInputs, issues: ConfigIssue[]): never {
  throw new AgentError('CONFIG_INVALID', `invalid configuration\n${formatConfigIssues(inputs.configFile, issues)}`, {
    details: { file: inputs.configFile, issues },
  });
}

function located(inputs: ManifestInputs, path: (string | number)[], message: string): ConfigIssue {
  const at = locateTomlPath(inputs.configText, path);
  const text = path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '');
  return { path: text, ...(at ? { line: at.line, column: at.column } : {}), message };
}

/** Checks what only the agent knows: placeholders name inputs, output parsers fit output schemas. */
function agentIssues(inputs: ManifestInputs): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  inputs.config.tools.forEach((t, i) => {
    let names: Set<string>;
    try {
      names = templateNames(t.exec.argv);
    } catch (e) {
      issues.push(located(inputs, ['tools', i, 'exec', 'argv'], (e as Error).message));
      return;
    }
    const props = Object.keys((t.input_schema.properties as Record<string, unknown> | undefined) ?? {});
    for (const n of names) {
      if (!props.includes(n)) {
        issues.push(located(inputs, ['tools', i, 'exec', 'argv'], `placeholder {${n}} names no input_schema property`));
      }
    }
    if (t.output_schema && t.exec.output !== 'json') {
      issues.push(
        located(
          inputs,
          ['tools', i, 'output_schema'],
          'an output_schema needs exec.output = "json" (results are objects)',
        ),
      );
    }
  });
  return issues;
}

/**
 * Builds and validates the manifest. Throws AgentError CONFIG_INVALID with every issue located in the
 * config file (built-in specs are part of the build and never at fault).
 */
export function buildAgentManifest(inputs: ManifestInputs): BuiltAgentManifest {
  const { config } = inputs;
  const pre = agentIssues(inputs);
  if (pre.length > 0) fail(inputs, pre);
  const configured = config.tools.map((t) => toolSpecOf(t, config.agent.utc_offset_minutes));
  const value = {
    manifestVersion: MANIFEST_VERSION,
    device: {
      id: inputs.deviceId,
      name: config.agent.name,
      ...(config.agent.model ? { model: config.agent.model } : {}),
      ...(config.agent.labels ? { labels: config.agent.labels } : {}),
      agentVersion: inputs.agentVersion,
    },
    tools: [...inputs.builtins.map((b) => b.spec), ...configured],
    ...(config.streams.length > 0 ? { streams: config.streams.map((s) => streamSpecOf(s, config.queue.ttl_s)) } : {}),
    ...(config.radios.length > 0 ? { radios: config.radios.map(radioSpecOf) } : {}),
  };
  let manifest: CapabilityManifest;
  try {
    manifest = decodeManifest(value);
  } catch (e) {
    if (!isOutpostError(e, 'MANIFEST_INVALID')) throw e;
    const issues = (e.details.issues as ManifestIssue[]).map((i) => {
      const path = configPathOf(i.path, inputs.builtins.length);
      return path ? located(inputs, path, i.message) : { path: i.path, message: i.message };
    });
    fail(inputs, issues);
  }
  const tools = new Map<string, ToolRuntime>();
  for (const b of inputs.builtins) tools.set(b.spec.name, { kind: 'builtin', spec: b.spec, handler: b.handler });
  config.tools.forEach((t, i) => {
    const argv = [resolveProgram(inputs.configFile, t.exec.argv[0] as string), ...t.exec.argv.slice(1)];
    tools.set(t.name, { kind: 'exec', spec: manifest.tools[inputs.builtins.length + i]!, exec: { ...t.exec, argv } });
  });
  const streams = new Map<string, StreamRuntime>();
  config.streams.forEach((s, i) => {
    const source =
      s.source.kind === 'exec'
        ? { ...s.source, argv: [resolveProgram(inputs.configFile, s.source.argv[0]!), ...s.source.argv.slice(1)] }
        : s.source;
    streams.set(s.name, { spec: manifest.streams![i]!, config: { ...s, source } });
  });
  const exclusions = new Map<string, { tool: string; windowMs: number }[]>();
  const addExclusion = (a: string, b: string, windowMs: number) => {
    const list = exclusions.get(a) ?? [];
    const same = list.find((x) => x.tool === b);
    if (same) same.windowMs = Math.max(same.windowMs, windowMs);
    else list.push({ tool: b, windowMs });
    exclusions.set(a, list);
  };
  for (const t of manifest.tools) {
    for (const il of t.interlocks ?? []) {
      if (il.kind !== 'mutually_exclusive') continue;
      for (const other of il.tools) {
        addExclusion(t.name, other, il.windowMs);
        addExclusion(other, t.name, il.windowMs);
      }
    }
  }
  return { manifest, hash: manifestHash(manifest), tools, streams, exclusions };
}
