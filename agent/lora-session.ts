// What a device needs for its LoRa session (docs/protocol/lora-frames.md §5): its own X25519 key (a 0600 key file in
// the state directory, made on first use) and the control plane's X25519 public key with the tenant, learnt at
// enrollment — over IP, or over LoRa when the device never had IP — and kept in `lora-session.json` (0600).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { fromBase64Url, toBase64Url } from '../protocol/bytes.ts';
import { TenantId } from '../protocol/identifiers.ts';
import {
  deriveLoraSessionKeys,
  type LoraSession,
  type ReplayWindowState,
  type X25519KeyPair,
  x25519KeyPair,
} from '../protocol/lora.ts';
import { writeFileAtomic } from '../store/atomic-file.ts';
import { loadOrCreateKeyFile } from '../store/key-file.ts';
import { AgentError } from './errors.ts';

export const LORA_KEY_FILE = 'lora-x25519.key';
export const LORA_SESSION_FILE = 'lora-session.json';
export const LORA_WINDOW_FILE = 'lora-downlink-window.json';

const SessionFile = z.strictObject({
  v: z.literal(1),
  tid: TenantId,
  /** base64url of the control plane's 32-byte X25519 public key. */
  controlPlaneX25519: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** How it was learnt. */
  via: z.enum(['ip', 'lora']),
  /**
   * `iss` and device `aud` of the per-call tokens, for a device enrolled over LoRa (an IP enrollment's record has
   * them): the control plane sends them in a CONTROL message of kind `issuer` (lora-frames.md §4.11).
   */
  issuer: z.string().min(1).max(256).optional(),
  deviceAudience: z.string().min(1).max(256).optional(),
});
export type LoraSessionFile = z.infer<typeof SessionFile>;

const WindowFile = z.strictObject({ highest: z.int().min(-1), bitmapHex: z.string().regex(/^[0-9a-f]*$/) });

/** The device's X25519 key pair, created (0600, atomically) when absent. */
export function loadLoraKey(stateDir: string): X25519KeyPair {
  const k = loadOrCreateKeyFile(join(stateDir, LORA_KEY_FILE));
  return x25519KeyPair(k.seed);
}

export function readLoraSession(stateDir: string): LoraSessionFile | undefined {
  let text: string;
  try {
    text = readFileSync(join(stateDir, LORA_SESSION_FILE), 'utf8');
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const r = SessionFile.safeParse(value);
  if (!r.success) {
    throw new AgentError('CONFIG_INVALID', `${join(stateDir, LORA_SESSION_FILE)} is damaged; enroll again`);
  }
  return r.data;
}

export function writeLoraSession(
  stateDir: string,
  s: { tid: string; controlPlaneX25519: Uint8Array; via: 'ip' | 'lora' },
): void {
  const file: LoraSessionFile = { v: 1, tid: s.tid, controlPlaneX25519: toBase64Url(s.controlPlaneX25519), via: s.via };
  writeFileAtomic(join(stateDir, LORA_SESSION_FILE), `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
}

const IssuerValue = z.strictObject({ issuer: z.string().min(1).max(256), audience: z.string().min(1).max(256) });

/**
 * Records the tokens' issuer and device audience from a CONTROL `issuer` message. Refuses a value outside its schema,
 * and a change of issuer once one is known (a device trusts one control plane; re-enroll to move it).
 */
export function applyLoraIssuer(
  stateDir: string,
  value: unknown,
): { installed: true } | { installed: false; message: string } {
  const v = IssuerValue.safeParse(value);
  if (!v.success) return { installed: false, message: v.error.issues[0]?.message ?? 'invalid issuer value' };
  const f = readLoraSession(stateDir);
  if (!f) return { installed: false, message: 'no LoRa enrollment' };
  if (f.issuer !== undefined && (f.issuer !== v.data.issuer || f.deviceAudience !== v.data.audience)) {
    return { installed: false, message: `the issuer is already ${f.issuer}` };
  }
  if (f.issuer === v.data.issuer && f.deviceAudience === v.data.audience) return { installed: true };
  const next: LoraSessionFile = { ...f, issuer: v.data.issuer, deviceAudience: v.data.audience };
  writeFileAtomic(join(stateDir, LORA_SESSION_FILE), `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  return { installed: true };
}

/** The session keys, or undefined while the device has no LoRa enrollment. */
export function loraSessionFor(stateDir: string, did: string): { session: LoraSession; tid: string } | undefined {
  const f = readLoraSession(stateDir);
  if (!f) return undefined;
  const session = deriveLoraSessionKeys({
    deviceX25519: loadLoraKey(stateDir),
    controlPlaneX25519: { publicKey: fromBase64Url(f.controlPlaneX25519) },
    tid: f.tid,
    deviceId: did,
  });
  return { session, tid: f.tid };
}

/** The downlink replay window as last persisted (lora-frames.md §10.2). */
export function readDownlinkWindow(stateDir: string): ReplayWindowState | undefined {
  try {
    const r = WindowFile.safeParse(JSON.parse(readFileSync(join(stateDir, LORA_WINDOW_FILE), 'utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** Persists the window durably (fsync, rename, fsync directory) before the frame that moved it is acted on. */
export function writeDownlinkWindow(stateDir: string, state: ReplayWindowState): void {
  writeFileAtomic(join(stateDir, LORA_WINDOW_FILE), JSON.stringify(state), { mode: 0o600 });
}
