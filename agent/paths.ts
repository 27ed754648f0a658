// Where the agent's files live: config file, state directory, unix socket. Flags beat environment beat
// the config file beat defaults; relative paths in the config file are read against its directory.

import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { AgentConfig } from './config.ts';

export const DEFAULT_CONFIG_FILE = '/etc/outpost/agent.toml';
export const DEFAULT_STATE_DIR = '/var/lib/outpost';
/** Where the socket lives by default: systemd's RuntimeDirectory=outpost-agent (mode 0750, group outpost). */
export const DEFAULT_RUNTIME_DIR = '/run/outpost-agent';
export const SOCKET_NAME = 'agent.sock';
export const DATABASE_NAME = 'agent.db';
export const IDENTITY_KEY_NAME = 'identity.key';

export type Env = Readonly<Record<string, string | undefined>>;

/** The config file to read: `--config`, else OUTPOST_CONFIG, else /etc/outpost/agent.toml. */
export function configFileFrom(flag: string | undefined, env: Env, cwd: string): string {
  const chosen = flag ?? env.OUTPOST_CONFIG ?? DEFAULT_CONFIG_FILE;
  return resolve(cwd, chosen);
}

export interface AgentPaths {
  readonly configFile: string;
  readonly stateDir: string;
  readonly socketPath: string;
  readonly databaseFile: string;
  readonly identityKeyFile: string;
  readonly trust?: { readonly jwksFile: string; readonly approvalPolicyFile: string };
}

/** Resolves a path from the config file against the file's directory. */
export function fromConfigDir(configFile: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(configFile), p);
}

/**
 * State dir: OUTPOST_STATE_DIR, else config `paths.state_dir`, else systemd's STATE_DIRECTORY, else
 * /var/lib/outpost. Socket: OUTPOST_SOCKET, else `paths.socket`, else systemd's RUNTIME_DIRECTORY/agent.sock,
 * else STATE_DIR/agent.sock when the state dir was chosen explicitly (tests, hand-run agents), else
 * /run/outpost-agent/agent.sock. The CLI resolves the same way, so both sides agree given the same env.
 */
export function resolveAgentPaths(config: AgentConfig, configFile: string, env: Env, cwd: string): AgentPaths {
  const explicitStateDir = env.OUTPOST_STATE_DIR
    ? resolve(cwd, env.OUTPOST_STATE_DIR)
    : config.paths.state_dir
      ? fromConfigDir(configFile, config.paths.state_dir)
      : undefined;
  const stateDir =
    explicitStateDir ?? (env.STATE_DIRECTORY ? resolve(cwd, env.STATE_DIRECTORY.split(':')[0]!) : DEFAULT_STATE_DIR);
  const socketPath = env.OUTPOST_SOCKET
    ? resolve(cwd, env.OUTPOST_SOCKET)
    : config.paths.socket
      ? fromConfigDir(configFile, config.paths.socket)
      : env.RUNTIME_DIRECTORY
        ? join(resolve(cwd, env.RUNTIME_DIRECTORY.split(':')[0]!), SOCKET_NAME)
        : explicitStateDir
          ? join(explicitStateDir, SOCKET_NAME)
          : join(DEFAULT_RUNTIME_DIR, SOCKET_NAME);
  return {
    configFile,
    stateDir,
    socketPath,
    databaseFile: join(stateDir, DATABASE_NAME),
    identityKeyFile: join(stateDir, IDENTITY_KEY_NAME),
    ...(config.trust
      ? {
          trust: {
            jwksFile: fromConfigDir(configFile, config.trust.jwks),
            approvalPolicyFile: fromConfigDir(configFile, config.trust.approval_policy),
          },
        }
      : {}),
  };
}
