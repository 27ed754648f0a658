// Where the gateway's files are: configuration, state directory, local API socket. Light on purpose: the CLI
// loads it for every gateway command, including `status`, which must not load the radio drivers.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { type GatewayConfig, parseGatewayConfig } from '../gateway/config.ts';
import { GatewayError } from '../gateway/errors.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** The configuration file: --config, else $CONFIGURATION_DIRECTORY/gateway.toml, else /etc/outpost/gateway.toml. */
export function gatewayConfigPath(explicit: string | undefined, env: Env, cwd: string): string {
  if (explicit) return resolve(cwd, explicit);
  const dir = env.CONFIGURATION_DIRECTORY?.split(':')[0];
  return join(dir && isAbsolute(dir) ? dir : '/etc/outpost', 'gateway.toml');
}

export function loadGatewayConfig(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new GatewayError('CONFIG_NOT_FOUND', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseGatewayConfig(text, path);
}

/** State directory: gateway.state_dir (relative to the config file), else $STATE_DIRECTORY. */
export function gatewayStateDir(config: GatewayConfig, configPath: string, env: Env): string {
  if (config.gateway.state_dir) return resolve(dirname(configPath), config.gateway.state_dir);
  const dir = env.STATE_DIRECTORY?.split(':')[0];
  if (dir && isAbsolute(dir)) return dir;
  throw new GatewayError(
    'CONFIG_INVALID',
    `${configPath}: no state directory: set gateway.state_dir, or run under systemd (StateDirectory=)`,
  );
}

/** The local API socket: api.socket, relative to $RUNTIME_DIRECTORY, else to the state directory. */
export function gatewaySocketPath(config: GatewayConfig, stateDir: string, env: Env): string {
  if (isAbsolute(config.api.socket)) return config.api.socket;
  const runtime = env.RUNTIME_DIRECTORY?.split(':')[0];
  return join(runtime && isAbsolute(runtime) ? runtime : stateDir, config.api.socket);
}
