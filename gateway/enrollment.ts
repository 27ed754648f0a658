// Enrollment of the gateway with the control plane (role `gateway`), and renewal of its runtime token by proving
// its key over a fresh challenge when the token expired while the backhaul was down. HTTP(S) with JSON bodies;
// the enroll token is read by the caller from a file or standard input, never from a command line.
//
//   POST /v1/devices/enroll     { v: 1, token, device, manifest, proof }            → EnrollAnswer
//   POST /v1/devices/challenge  { device }                                           → { challenge, expiresAtMs }
//   POST /v1/devices/token      { v: 1, device, challenge, proof }                   → { runtimeToken, tokenExpiresAtMs }
//
// The proofs are those of protocol/enroll-proof.ts (docs/controlplane.md §Enrollment); the gateway sends no X25519
// key, so its enrollment proof signs `"x25519PublicKey":null`.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { toBase64Url } from '../protocol/bytes.ts';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import { signDeviceTokenProof, signEnrollProof } from '../protocol/enroll-proof.ts';
import { TenantId } from '../protocol/identifiers.ts';
import { type CapabilityManifest, manifestHash } from '../protocol/manifest.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { GatewayError } from './errors.ts';

const MAX_RESPONSE_BYTES = 1 << 20;

/** What the gateway keeps from its enrollment (state directory, `enrollment.json`, 0600). */
export const Enrollment = z.strictObject({
  v: z.literal(1),
  /** Base URL of the control plane's HTTP API (for token renewal). */
  httpUrl: z.string().url(),
  wssUrl: z.string().regex(/^wss?:\/\/\S+$/),
  tid: TenantId,
  controlPlaneId: z.string().min(1).max(64),
  device: z.string().min(1).max(128),
  heartbeatMs: z.int().min(1000).max(300_000),
  enrolledAtMs: z.int().min(0),
});
export type Enrollment = z.infer<typeof Enrollment>;

const EnrollAnswer = z.looseObject({
  device: z.string(),
  tid: TenantId,
  runtimeToken: z.string().min(1).max(8192),
  tokenExpiresAtMs: z.number(),
  wssUrl: z.string().regex(/^wss?:\/\/\S+$/),
  controlPlaneId: z.string().min(1).max(64),
  heartbeatMs: z.int().min(1000).max(300_000),
});

const ChallengeAnswer = z.looseObject({ challenge: z.string().min(1).max(256), expiresAtMs: z.number() });
const TokenAnswer = z.looseObject({ runtimeToken: z.string().min(1).max(8192), tokenExpiresAtMs: z.number() });

export interface HttpOptions {
  /** PEM of the CA for an https:// control plane (default: the system's). */
  readonly ca?: string | Buffer;
  readonly timeoutMs?: number;
}

/** POSTs JSON and returns the parsed JSON answer. Throws UPSTREAM_HANDSHAKE_FAILED / UPSTREAM_CLOSED. */
export function postJson(url: string, body: unknown, options: HttpOptions = {}): Promise<unknown> {
  const target = new URL(url);
  const data = Buffer.from(JSON.stringify(body));
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    return Promise.reject(new GatewayError('CONFIG_INVALID', `not an http(s) URL: ${target.protocol}`));
  }
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': data.length, accept: 'application/json' },
        timeout: options.timeoutMs ?? 15_000,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('answer too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300 && parsed !== undefined) {
            resolve(parsed);
            return;
          }
          const err = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
          reject(
            new GatewayError(
              'UPSTREAM_HANDSHAKE_FAILED',
              `${target.pathname}: ${res.statusCode} ${typeof err?.code === 'string' ? err.code : ''} ${typeof err?.message === 'string' ? err.message.slice(0, 300) : ''}`.trim(),
              { details: { status: res.statusCode, code: typeof err?.code === 'string' ? err.code : null } },
            ),
          );
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', (e) =>
      reject(new GatewayError('UPSTREAM_CLOSED', `cannot reach ${target.origin}: ${e.message}`, { cause: e })),
    );
    req.end(data);
  });
}

function answer<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new GatewayError(
      'UPSTREAM_PROTOCOL',
      `${what}: unexpected answer (${r.error.issues[0]?.message ?? 'invalid'})`,
    );
  }
  return r.data;
}

/** Enrolls the gateway with `token`; returns what to keep and the first runtime token. */
export async function enrollGateway(input: {
  readonly httpUrl: string;
  readonly token: string;
  readonly seed: Uint8Array;
  readonly manifest: CapabilityManifest;
  readonly nowMs: number;
  readonly http?: HttpOptions;
}): Promise<{ enrollment: Enrollment; runtimeToken: string }> {
  const device = didKeyFromEd25519(ed25519KeyPair(input.seed).publicKey);
  const mHash = manifestHash(input.manifest);
  const proof = signEnrollProof(input.seed, { device, token: input.token, manifestHash: mHash });
  const base = input.httpUrl.replace(/\/+$/, '');
  const a = answer(
    EnrollAnswer,
    await postJson(
      `${base}/v1/devices/enroll`,
      { v: 1, token: input.token, device, manifest: input.manifest, proof: toBase64Url(proof) },
      input.http,
    ),
    'enroll',
  );
  if (a.device !== device) throw new GatewayError('UPSTREAM_PROTOCOL', 'enroll: the answer names another identity');
  return {
    runtimeToken: a.runtimeToken,
    enrollment: {
      v: 1,
      httpUrl: base,
      wssUrl: a.wssUrl,
      tid: a.tid,
      controlPlaneId: a.controlPlaneId,
      device,
      heartbeatMs: a.heartbeatMs,
      enrolledAtMs: input.nowMs,
    },
  };
}

/** A fresh runtime token for an enrolled gateway, by proving its key over a challenge. */
export async function renewGatewayToken(input: {
  readonly httpUrl: string;
  readonly seed: Uint8Array;
  readonly http?: HttpOptions;
}): Promise<string> {
  const device = didKeyFromEd25519(ed25519KeyPair(input.seed).publicKey);
  const base = input.httpUrl.replace(/\/+$/, '');
  const c = answer(
    ChallengeAnswer,
    await postJson(`${base}/v1/devices/challenge`, { device }, input.http),
    'challenge',
  );
  const proof = signDeviceTokenProof(input.seed, device, c.challenge);
  const t = answer(
    TokenAnswer,
    await postJson(
      `${base}/v1/devices/token`,
      { v: 1, device, challenge: c.challenge, proof: toBase64Url(proof) },
      input.http,
    ),
    'token',
  );
  return t.runtimeToken;
}
