// The control plane's state directory: `controlplane.json` (settings), `controlplane.db` (SQLite), `keys/` (0600
// key files) and, after init, `operator.key` (the first operator key, 0600). `initStateDir` creates it with the first
// tenant; `openStateDir` opens it for `run` and for offline commands.

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Clock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import type { Logger } from '../../protocol/log.ts';
import { writeFileAtomic } from '../../store/atomic-file.ts';
import { AUDIT_MIGRATIONS, createAuditLog } from '../../store/audit.ts';
import { openDatabase, type StoreDatabase } from '../../store/database.ts';
import { ControlPlaneError } from '../errors.ts';
import type { ControlPlaneStore } from '../ports.ts';
import { type ControlPlaneSettings, controlPlaneSettings } from '../settings.ts';
import { type CreatedTenant, createTenant } from '../tenants.ts';
import { createTokenIssuer } from '../token-issuer.ts';
import { type FileKeyVault, openFileKeyVault } from './file-key-vault.ts';
import { CONTROLPLANE_MIGRATIONS, createSqliteControlPlaneStore } from './sqlite-store.ts';

export const CONFIG_FILE = 'controlplane.json';
export const DATABASE_FILE = 'controlplane.db';
export const OPERATOR_KEY_FILE = 'operator.key';
export const DEFAULT_PORT = 7380;

export const ControlPlaneConfig = z.strictObject({
  v: z.literal(1),
  /** Base URL devices and callers use: the issuer and the DIDs derive from it. */
  publicUrl: z.string().url().max(256),
  listen: z.strictObject({ host: z.string().min(1).max(255), port: z.int().min(0).max(65_535) }),
  hybridTokens: z.boolean(),
  heartbeatMs: z.int().min(1000).max(300_000).optional(),
  deviceTokenTtlSeconds: z.int().min(60).max(86_400).optional(),
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
});
export type ControlPlaneConfig = z.infer<typeof ControlPlaneConfig>;

export interface OpenedState {
  readonly dir: string;
  readonly config: ControlPlaneConfig;
  readonly settings: ControlPlaneSettings;
  readonly db: StoreDatabase;
  readonly store: ControlPlaneStore;
  readonly vault: FileKeyVault;
  /** The control plane's identity as a did:key (it signs audit exports). */
  readonly identityDid: string;
  close(): void;
}

export interface StateOptions {
  readonly dir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly nativeBinding?: string | object;
}

/** Settings from the config file (and the listen address, which is always an allowed Host for MCP). */
export function settingsFromConfig(config: ControlPlaneConfig, boundPort?: number): ControlPlaneSettings {
  const port = boundPort ?? config.listen.port;
  const listenHosts = [`${config.listen.host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`];
  return controlPlaneSettings({
    publicUrl: config.publicUrl,
    extraHosts: listenHosts,
    hybridTokens: config.hybridTokens,
    ...(config.heartbeatMs ? { heartbeatMs: config.heartbeatMs } : {}),
    ...(config.deviceTokenTtlSeconds ? { deviceTokenTtlMs: config.deviceTokenTtlSeconds * 1000 } : {}),
  });
}

export function readConfig(dir: string): ControlPlaneConfig {
  const path = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ControlPlaneError(
      'STATE_DIR_MISSING',
      `${path} not found: run \`outpost controlplane init --state-dir ${dir}\` first`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ControlPlaneError('CONFIG_INVALID', `${path} is not JSON`);
  }
  const r = ControlPlaneConfig.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ControlPlaneError('CONFIG_INVALID', `${path}: ${i?.path.join('.')}: ${i?.message}`);
  }
  return r.data;
}

function openStore(options: StateOptions, vault: FileKeyVault): { db: StoreDatabase; store: ControlPlaneStore } {
  const db = openDatabase(join(options.dir, DATABASE_FILE), {
    migrations: [CONTROLPLANE_MIGRATIONS, AUDIT_MIGRATIONS],
    clock: options.clock,
    log: options.log,
    ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
  });
  const identityDid = didKeyFromEd25519(vault.identity.publicKey);
  const audit = createAuditLog(db, {
    macKey: vault.auditMacKey,
    signer: { keyId: identityDid, sign: (context, message) => vault.identity.sign(context, message) },
    checkpointEvery: 1000,
  });
  return { db, store: createSqliteControlPlaneStore({ db, audit }) };
}

/** Opens an initialised state directory. Throws STATE_DIR_MISSING, CONFIG_INVALID, KEYS_UNAVAILABLE, StoreError. */
export function openStateDir(options: StateOptions, overrides: { boundPort?: number } = {}): OpenedState {
  const config = readConfig(options.dir);
  const settings = settingsFromConfig(config, overrides.boundPort);
  const vault = openFileKeyVault({ dir: join(options.dir, 'keys'), env: options.env, create: false });
  const { db, store } = openStore(options, vault);
  return {
    dir: options.dir,
    config,
    settings,
    db,
    store,
    vault,
    identityDid: didKeyFromEd25519(vault.identity.publicKey),
    close: () => db.close(),
  };
}

export interface InitOptions extends StateOptions {
  readonly publicUrl?: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly tenant: string;
  readonly hybridTokens: boolean;
}

export interface InitResult {
  readonly config: ControlPlaneConfig;
  readonly created: CreatedTenant;
  readonly operatorKeyFile: string;
  readonly identityDid: string;
}

/**
 * Creates the state directory: keys, database, first signing key, first tenant and its root operator key (written to
 * `operator.key`, 0600). Throws STATE_DIR_EXISTS when the directory already holds a control plane.
 */
export async function initStateDir(options: InitOptions): Promise<InitResult> {
  const { dir } = options;
  if (existsSync(join(dir, CONFIG_FILE)) || existsSync(join(dir, DATABASE_FILE))) {
    throw new ControlPlaneError('STATE_DIR_EXISTS', `${dir} already holds a control plane; it was left untouched`);
  }
  mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 });
  chmodSync(dir, statSync(dir).mode & 0o7777 & ~0o077);
  chmodSync(join(dir, 'keys'), 0o700);
  const port = options.listenPort;
  const config: ControlPlaneConfig = {
    v: 1,
    publicUrl:
      options.publicUrl ?? `http://${options.listenHost === '0.0.0.0' ? '127.0.0.1' : options.listenHost}:${port}`,
    listen: { host: options.listenHost, port },
    hybridTokens: options.hybridTokens,
  };
  const settings = settingsFromConfig(config);
  const vault = openFileKeyVault({ dir: join(dir, 'keys'), env: options.env, create: true });
  const { db, store } = openStore(options, vault);
  try {
    const issuer = createTokenIssuer({ store, vault, clock: options.clock, settings, log: options.log });
    await issuer.start();
    const created = await createTenant(
      { store, clock: options.clock, settings, random: (n) => new Uint8Array(randomBytes(n)) },
      options.tenant,
      { root: true, by: 'init' },
    );
    const operatorKeyFile = join(dir, OPERATOR_KEY_FILE);
    writeFileAtomic(operatorKeyFile, `${created.operatorKey}\n`, { mode: 0o600, overwrite: false });
    writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    return { config, created, operatorKeyFile, identityDid: didKeyFromEd25519(vault.identity.publicKey) };
  } finally {
    db.close();
  }
}
