// Request bodies of the HTTP API as strict zod schemas, and the one bounded decoder every endpoint uses:
// outside bytes in, a typed value or a ControlPlaneError (BAD_REQUEST, BODY_TOO_LARGE) out, never anything else.

import { z } from 'zod';
import { parseJson } from '../protocol/canonical-json.ts';
import { MessageId } from '../protocol/envelope.ts';
import { isOutpostError } from '../protocol/errors.ts';
import { base64UrlBytes, DeviceId } from '../protocol/identifiers.ts';
import { SafetyClass } from '../protocol/manifest.ts';
import { ApproverId } from '../protocol/quorum.ts';
import { isToolPattern } from '../protocol/scopes.ts';
import { ControlPlaneError } from './errors.ts';

const Label = z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'label keys are lowercase words');
const Labels = z
  .record(Label, z.string().min(1).max(64))
  .refine((l) => Object.keys(l).length <= 16, 'at most 16 labels');
const Reason = z
  .string()
  .max(256)
  .regex(/^[\x20-\x7e]*$/, 'printable ASCII');

export const EnrollTokenRequest = z.strictObject({
  /** Lifetime in seconds (default 3600, at most 7 days). */
  ttlSeconds: z
    .int()
    .min(60)
    .max(7 * 86_400)
    .optional(),
  role: z.enum(['device', 'gateway']).optional(),
  labels: Labels.optional(),
  /** Hold the device's first manifest until an operator accepts it. */
  holdManifest: z.boolean().optional(),
  /**
   * The device's manifest (`outpost agent manifest` on the device), registered with the token so that the device can
   * enroll over LoRa, where only the manifest's hash travels (lora-frames.md §4.10.5).
   */
  manifest: z.record(z.string(), z.unknown()).optional(),
});
export type EnrollTokenRequest = z.infer<typeof EnrollTokenRequest>;

export const EnrollRequest = z.strictObject({
  v: z.literal(1),
  token: z.string().regex(/^oet_[A-Za-z0-9_-]{43}$/, 'not an enroll token'),
  device: DeviceId,
  manifest: z.record(z.string(), z.unknown()),
  x25519PublicKey: base64UrlBytes(32).optional(),
  /** Ed25519 signature of the enrollment proof (protocol/enroll-proof.ts). */
  proof: base64UrlBytes(64),
});
export type EnrollRequest = z.infer<typeof EnrollRequest>;

export const DeviceChallengeRequest = z.strictObject({ device: DeviceId });

export const DeviceTokenRequest = z.strictObject({
  v: z.literal(1),
  device: DeviceId,
  challenge: z
    .string()
    .max(256)
    .regex(/^[A-Za-z0-9_.-]+$/),
  proof: base64UrlBytes(64),
});
export type DeviceTokenRequest = z.infer<typeof DeviceTokenRequest>;

export const AcceptManifestRequest = z.strictObject({
  manifestHash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'bad manifest hash'),
});

export const RevokeDeviceRequest = z.strictObject({ reason: Reason.optional() });

export const RevokeTokenRequest = z.strictObject({
  jti: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  /** Until when to refuse it: its expiry (default: the longest token lifetime from now). */
  untilMs: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  reason: Reason.optional(),
});

const PolicyRule = z.union([
  z.strictObject({ tool: z.string().refine(isToolPattern, 'bad tool pattern'), k: z.int().min(1).max(16) }),
  z.strictObject({ safetyClass: SafetyClass, k: z.int().min(1).max(16) }),
]);

/** A tenant's approval policy without `v` and `tid` (the server fills them). */
export const PolicyRequest = z.strictObject({
  approvers: z
    .array(z.strictObject({ id: ApproverId, publicKey: base64UrlBytes(32) }))
    .min(1)
    .max(32),
  rules: z.array(PolicyRule).max(64),
  /** Optimistic concurrency: refuse when the stored version differs. */
  ifVersion: z.int().min(0).optional(),
});
export type PolicyRequest = z.infer<typeof PolicyRequest>;

export const MintTokenRequest = z.strictObject({
  role: z.enum(['viewer', 'operator', 'actuator', 'approver', 'admin']),
  /** Who the token names (`sub`): a person or service name. */
  subject: z.string().regex(/^[A-Za-z0-9@._:+-]{1,128}$/, 'subject: 1..128 of A-Z a-z 0-9 @ . _ : + -'),
  /** Scopes (tokens.md §6); default: every device and tool of the tenant, action by role. */
  scopes: z.array(z.string().max(256)).max(64).optional(),
  ttlSeconds: z.int().min(60).max(86_400).optional(),
});
export type MintTokenRequest = z.infer<typeof MintTokenRequest>;

export const ApproveRequest = z.strictObject({
  approver: ApproverId,
  /** Ed25519 signature over the approval request's canonical bytes (quorum.md §4). */
  sig: base64UrlBytes(64),
});
export type ApproveRequest = z.infer<typeof ApproveRequest>;

export const CreateTenantRequest = z.strictObject({
  /** Short name: the tenant's did:web is `<control plane did>:tenants:<name>`. */
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, '1..63 lowercase letters, digits and hyphens'),
});

export const AnchorRequest = z.strictObject({
  checkpoint: z.strictObject({
    body: z.strictObject({
      v: z.literal(1),
      head_seq: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
      head_mac: base64UrlBytes(32),
      count: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
      ts: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
      key_id: z.string().max(512),
    }),
    signature: base64UrlBytes(64),
  }),
});
export type AnchorRequest = z.infer<typeof AnchorRequest>;

/** Request ids in paths: approval ids are 16 random bytes (22 characters), call ids 16..64 characters. */
export const PathId = MessageId;

/**
 * Decodes a JSON request body with `schema`: at most `maxBytes` UTF-8 bytes, depth-bounded, strict. Throws
 * ControlPlaneError BODY_TOO_LARGE or BAD_REQUEST (with `details.path`), never anything else.
 */
export function decodeBody<S extends z.ZodType>(schema: S, text: string, maxBytes: number): z.infer<S> {
  let value: unknown;
  try {
    value = parseJson(text, maxBytes);
  } catch (cause) {
    if (isOutpostError(cause, 'JSON_TOO_LARGE')) {
      throw new ControlPlaneError('BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`, { cause });
    }
    throw new ControlPlaneError('BAD_REQUEST', 'request body is not JSON', { cause });
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.map(String).join('.') ?? '';
    throw new ControlPlaneError(
      'BAD_REQUEST',
      `request body: ${path ? `${path}: ` : ''}${issue?.message ?? 'invalid'}`,
      {
        details: { path },
      },
    );
  }
  return r.data;
}
