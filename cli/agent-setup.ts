// How CLI commands find the agent: its config file (--config, OUTPOST_CONFIG, /etc/outpost/agent.toml),
// the paths derived from it, and a local API client on its socket (--socket, OUTPOST_SOCKET, …).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type AgentConfig, parseConfig } from '../agent/config.ts';
import { AgentError } from '../agent/errors.ts';
import { createLocalApiClient, type LocalApiClient } from '../agent/local-api/client.ts';
import { type AgentPaths, configFileFrom, resolveAgentPaths } from '../agent/paths.ts';
import { OutpostError } from '../protocol/errors.ts';
import { type CommandContext, type OptionSpecs, optString } from './command.ts';
import { readStdin } from './io.ts';

/** Options every agent command accepts. */
export const AGENT_OPTIONS: OptionSpecs = {
  config: { type: 'string', short: 'c' },
  socket: { type: 'string' },
};

export interface LoadedAgentConfig {
  readonly configFile: string;
  readonly text: string;
  readonly config: AgentConfig;
  readonly paths: AgentPaths;
}

/** Largest config file read. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** Reads and validates the config. Throws AgentError CONFIG_NOT_FOUND, CONFIG_SYNTAX or CONFIG_INVALID. */
export function loadAgentConfig(ctx: CommandContext): LoadedAgentConfig {
  const configFile = configFileFrom(optString(ctx, 'config'), ctx.io.env, ctx.io.cwd);
  let text: string;
  try {
    const buf = readFileSync(configFile);
    if (buf.length > MAX_CONFIG_BYTES) {
      throw new AgentError('CONFIG_INVALID', `${configFile} is larger than ${MAX_CONFIG_BYTES} bytes`);
    }
    text = buf.toString('utf8');
  } catch (e) {
    if (e instanceof AgentError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new AgentError(
      'CONFIG_NOT_FOUND',
      code === 'ENOENT'
        ? `no config file at ${configFile} (pass --config FILE or set OUTPOST_CONFIG; examples/agent.minimal.toml is a start)`
        : `cannot read ${configFile}: ${code ?? (e as Error).message}`,
      { cause: e, details: { file: configFile } },
    );
  }
  const config = parseConfig(text, configFile);
  return { configFile, text, config, paths: resolveAgentPaths(config, configFile, ctx.io.env, ctx.io.cwd) };
}

/** The socket to reach the agent on: --socket, OUTPOST_SOCKET, the config's choice, or the default. */
export function agentSocket(ctx: CommandContext): string {
  const flag = optString(ctx, 'socket');
  if (flag) return flag;
  if (ctx.io.env.OUTPOST_SOCKET) return ctx.io.env.OUTPOST_SOCKET;
  try {
    return loadAgentConfig(ctx).paths.socketPath;
  } catch {
    // An unreadable or absent config still leaves the default socket to try; `outpost doctor` explains the config.
    return resolveAgentPaths(parseConfig(''), '/etc/outpost/agent.toml', ctx.io.env, ctx.io.cwd).socketPath;
  }
}

export function agentClient(ctx: CommandContext, timeoutMs?: number): LocalApiClient {
  return createLocalApiClient({ socketPath: agentSocket(ctx), ...(timeoutMs ? { timeoutMs } : {}) });
}

/** Reads a secret (token, quorum token) from a file or `-` (stdin): secrets never ride on a command line. */
export async function readSecretFile(ctx: CommandContext, option: string): Promise<string | undefined> {
  const file = optString(ctx, option);
  if (file === undefined) return undefined;
  try {
    return (file === '-' ? await readStdin(ctx.io) : readFileSync(resolve(ctx.io.cwd, file), 'utf8')).trim();
  } catch (e) {
    throw new OutpostError(
      'NO_INPUT',
      `cannot read --${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

/** Tool arguments from `key=value` words (values read as JSON when they parse, else as text) and `--args JSON`. */
export function toolArgs(ctx: CommandContext, words: readonly string[]): Record<string, unknown> {
  const json = optString(ctx, 'args');
  const args: Record<string, unknown> = Object.create(null);
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (e) {
      throw new AgentError('TOOL_ARGS_INVALID', `--args is not JSON: ${(e as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new AgentError('TOOL_ARGS_INVALID', '--args must be a JSON object');
    }
    Object.assign(args, parsed);
  }
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 1) throw new AgentError('TOOL_ARGS_INVALID', `expected key=value, got ${JSON.stringify(w)}`);
    const raw = w.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw; // not JSON: a plain string
    }
    args[w.slice(0, eq)] = value;
  }
  return { ...args };
}
