// How CLI commands find a control plane: its state directory (--state-dir, OUTPOST_CONTROLPLANE_DIR, STATE_DIRECTORY,
// ~/.local/state/outpost/controlplane), its URL (--url, OUTPOST_CONTROLPLANE_URL, the state dir's config) and the
// operator key (--operator-key-file, OUTPOST_OPERATOR_KEY_FILE, the state dir's operator.key): never from argv.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { OPERATOR_KEY_FILE, readConfig } from '../controlplane/node/state-dir.ts';
import { OutpostError } from '../protocol/errors.ts';
import { type CommandContext, type OptionSpecs, optString } from './command.ts';

export const STATE_OPTIONS: OptionSpecs = { 'state-dir': { type: 'string' } };
export const CLIENT_OPTIONS: OptionSpecs = {
  ...STATE_OPTIONS,
  url: { type: 'string' },
  'operator-key-file': { type: 'string' },
};

/** The state directory: flag, OUTPOST_CONTROLPLANE_DIR, systemd's STATE_DIRECTORY, or ~/.local/state/outpost/controlplane. */
export function stateDirOf(ctx: CommandContext): string {
  const env = ctx.io.env;
  const chosen =
    optString(ctx, 'state-dir') ??
    env.OUTPOST_CONTROLPLANE_DIR ??
    env.STATE_DIRECTORY?.split(':')[0] ??
    join(env.XDG_STATE_HOME ?? join(env.HOME ?? homedir(), '.local', 'state'), 'outpost', 'controlplane');
  return resolve(ctx.io.cwd, chosen);
}

/** Reads a one-line secret from a file. Throws NO_INPUT. */
export function readSecret(path: string, what: string): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (text.length === 0 || text.length > 16_384 || /\s/.test(text)) {
      throw new OutpostError('NO_INPUT', `${what} in ${path} is empty or not one line`);
    }
    return text;
  } catch (e) {
    if (e instanceof OutpostError) throw e;
    throw new OutpostError(
      'NO_INPUT',
      `cannot read ${what} from ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

export interface ControlPlaneClient {
  readonly url: string;
  /** Calls the API with the credential; throws an OutpostError carrying the server's error code. */
  request<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
}

/** A client with the operator key (or, with `credential`, another bearer credential). */
export function controlPlaneClient(ctx: CommandContext, options: { credential?: string } = {}): ControlPlaneClient {
  const env = ctx.io.env;
  const dir = stateDirOf(ctx);
  let url = optString(ctx, 'url') ?? env.OUTPOST_CONTROLPLANE_URL;
  if (!url) {
    if (!existsSync(join(dir, 'controlplane.json'))) {
      throw new OutpostError(
        'USAGE',
        `no control plane URL: pass --url URL or set OUTPOST_CONTROLPLANE_URL (no state dir at ${dir})`,
      );
    }
    url = readConfig(dir).publicUrl;
  }
  let credential = options.credential;
  if (credential === undefined) {
    const keyFile =
      optString(ctx, 'operator-key-file') ??
      env.OUTPOST_OPERATOR_KEY_FILE ??
      (existsSync(join(dir, OPERATOR_KEY_FILE)) ? join(dir, OPERATOR_KEY_FILE) : undefined);
    if (!keyFile) {
      throw new OutpostError(
        'USAGE',
        'no operator key: pass --operator-key-file FILE or set OUTPOST_OPERATOR_KEY_FILE (init wrote operator.key in the state dir)',
      );
    }
    credential = readSecret(resolve(ctx.io.cwd, keyFile), 'the operator key');
  }
  const base = url.replace(/\/+$/, '');
  return {
    url: base,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${credential}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (e) {
        throw new OutpostError('UNREACHABLE', `cannot reach the control plane at ${base}: ${(e as Error).message}`, {
          cause: e,
        });
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new OutpostError('UNREACHABLE', `${base}${path} answered ${res.status} with something that is not JSON`);
      }
      const error = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })
        .error;
      if (!res.ok || error) {
        throw new OutpostError(error?.code ?? `HTTP_${res.status}`, error?.message ?? `HTTP ${res.status}`, {
          details: error?.details ?? {},
        });
      }
      return parsed as T;
    },
  };
}

/** Parses `90`, `90s`, `15m`, `2h`, `7d` into seconds. Throws USAGE. */
export function parseDurationSeconds(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text);
  if (!m) throw new OutpostError('USAGE', `bad duration ${JSON.stringify(text)} (use 90, 15m, 2h or 7d)`);
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as Record<string, number>)[m[2]!]!;
}

/** ISO time or `-`. */
export function when(ms: number | null | undefined): string {
  return typeof ms === 'number' ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}
