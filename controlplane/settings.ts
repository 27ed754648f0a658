// What a control plane is configured with: its public URL (and the issuer, DIDs and hub URL derived from it),
// token lifetimes, rotation policy and limits. Pure: `controlPlaneSettings(input)` fills defaults and checks.

import { checkRotationPolicy, MIN_OVERLAP_MS, type RotationPolicy } from '../protocol/jwks.ts';
import { tenantIdFromDidWeb } from '../protocol/tokens.ts';
import { ControlPlaneError } from './errors.ts';

/** `aud` of tokens presented to the control plane (device sessions, MCP callers, approvers, operators). */
export const CONTROL_PLANE_AUDIENCE = 'outpost-controlplane';
/** `aud` of the per-call tokens a device's safety gate verifies (the agent's default `[trust] audience`). */
export const DEVICE_AUDIENCE = 'outpost-device';

export interface ControlPlaneLimits {
  /** Largest WSS envelope, bytes (ws maxPayload is set to it). */
  readonly maxEnvelopeBytes: number;
  /** Largest HTTP request body, bytes. */
  readonly maxBodyBytes: number;
  /** Envelopes a session may send per second, sustained, and as a burst. */
  readonly envelopesPerSecond: number;
  readonly envelopeBurst: number;
  /** Protocol violations (refused envelopes) a session may commit before it is closed. */
  readonly maxViolations: number;
  /** Tool calls in flight per device session. */
  readonly maxCallsPerSession: number;
  /** Sessions the hub holds at once. */
  readonly maxSessions: number;
  /** Authentication failures from one address before it is locked out, within `authWindowMs`. */
  readonly authFailures: number;
  readonly authWindowMs: number;
  readonly lockoutMs: number;
}

export interface ControlPlaneSettings {
  /** Base URL clients use, without a trailing slash (`http://127.0.0.1:7380`). */
  readonly publicUrl: string;
  /** `iss` of every token this control plane signs: the public URL. */
  readonly issuer: string;
  /** The control plane's did:web, served at /.well-known/did.json. */
  readonly did: string;
  /** `src` of control-plane envelopes (envelope.md §3). */
  readonly controlPlaneId: string;
  readonly hybridTokens: boolean;
  readonly deviceTokenTtlMs: number;
  /** Longest lifetime of a caller (MCP, approver, admin) token the operator may mint. */
  readonly maxCallerTokenTtlMs: number;
  /** Per-call tokens live for the tool's timeout plus this. */
  readonly callTokenSlackMs: number;
  readonly defaultEnrollTokenTtlMs: number;
  readonly maxEnrollTokenTtlMs: number;
  /** `heartbeatMs` of hello.ack (envelope.md §5.5). */
  readonly heartbeatMs: number;
  readonly handshakeTimeoutMs: number;
  /** How long an approval request stays open. */
  readonly approvalTtlMs: number;
  readonly rotation: RotationPolicy;
  readonly limits: ControlPlaneLimits;
  /** `Host` header values the MCP endpoint accepts (DNS-rebinding protection). */
  readonly allowedHosts: readonly string[];
  /** `Origin` header values the MCP endpoint accepts from browsers. */
  readonly allowedOrigins: readonly string[];
}

export interface SettingsInput {
  readonly publicUrl: string;
  /** Extra `host:port` names the server is reached by (its listen address is added by the host). */
  readonly extraHosts?: readonly string[];
  readonly hybridTokens?: boolean;
  readonly deviceTokenTtlMs?: number;
  readonly heartbeatMs?: number;
  readonly rotation?: Partial<RotationPolicy>;
  readonly limits?: Partial<ControlPlaneLimits>;
  readonly handshakeTimeoutMs?: number;
  readonly approvalTtlMs?: number;
}

export const DEFAULT_LIMITS: ControlPlaneLimits = Object.freeze({
  maxEnvelopeBytes: 1_048_576,
  maxBodyBytes: 512 * 1024,
  envelopesPerSecond: 200,
  envelopeBurst: 400,
  maxViolations: 32,
  maxCallsPerSession: 64,
  maxSessions: 20_000,
  authFailures: 10,
  authWindowMs: 300_000,
  lockoutMs: 900_000,
});

const DAY_MS = 86_400_000;

function invalid(message: string): ControlPlaneError {
  return new ControlPlaneError('CONFIG_INVALID', message);
}

/** The did:web naming a URL's host and port (did:web method spec: the port's colon is `%3A`). */
export function didWebForUrl(url: URL): string {
  const host = url.hostname.toLowerCase();
  if (!/^[a-z0-9.-]+$/.test(host)) throw invalid(`cannot name ${url.hostname} with did:web (use a DNS name or IPv4)`);
  const defaultPort = (url.protocol === 'https:' && url.port === '443') || url.port === '';
  const did = `did:web:${host}${defaultPort ? '' : `%3A${url.port}`}`;
  try {
    tenantIdFromDidWeb(did);
  } catch (cause) {
    throw new ControlPlaneError('CONFIG_INVALID', `${did} is not a valid did:web`, { cause });
  }
  return did;
}

/** The did:web of a tenant named `slug` on the control plane `cpDid`: `<cpDid>:tenants:<slug>`. */
export function tenantDid(cpDid: string, slug: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(slug)) {
    throw new ControlPlaneError('BAD_REQUEST', 'a tenant name is 1..63 lowercase letters, digits and hyphens');
  }
  return `${cpDid}:tenants:${slug}`;
}

/** Fills defaults and checks the invariants. Throws CONFIG_INVALID. */
export function controlPlaneSettings(input: SettingsInput): ControlPlaneSettings {
  let url: URL;
  try {
    url = new URL(input.publicUrl);
  } catch {
    throw invalid(`public URL ${JSON.stringify(input.publicUrl)} is not a URL`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.hash) {
    throw invalid('public URL must be http(s)://host[:port] with no path');
  }
  if (url.username || url.password) throw invalid('public URL must not carry credentials');
  const publicUrl = url.origin;
  const did = didWebForUrl(url);
  const deviceTokenTtlMs = input.deviceTokenTtlMs ?? 3_600_000;
  const maxCallerTokenTtlMs = DAY_MS;
  const rotation: RotationPolicy = {
    rotateAfterMs: input.rotation?.rotateAfterMs ?? 7 * DAY_MS,
    overlapMs: input.rotation?.overlapMs ?? DAY_MS,
    maxTokenLifetimeMs: input.rotation?.maxTokenLifetimeMs ?? maxCallerTokenTtlMs,
    retainRetiredMs: input.rotation?.retainRetiredMs ?? 7 * DAY_MS,
  };
  try {
    checkRotationPolicy(rotation);
  } catch (cause) {
    throw new ControlPlaneError('CONFIG_INVALID', (cause as Error).message, { cause });
  }
  if (rotation.overlapMs < MIN_OVERLAP_MS) throw invalid('overlap must be at least 900 s');
  if (!(deviceTokenTtlMs >= 60_000 && deviceTokenTtlMs <= rotation.maxTokenLifetimeMs)) {
    throw invalid('device token lifetime must be between 60 s and the longest token lifetime');
  }
  const heartbeatMs = input.heartbeatMs ?? 60_000;
  if (!(Number.isSafeInteger(heartbeatMs) && heartbeatMs >= 1000 && heartbeatMs <= 300_000)) {
    throw invalid('heartbeat must be 1..300 s');
  }
  const hostPort = url.host.toLowerCase();
  const hosts = new Set([hostPort, ...(input.extraHosts ?? [])]);
  const origins = new Set([publicUrl, ...[...hosts].map((h) => `${url.protocol}//${h}`)]);
  return {
    publicUrl,
    issuer: publicUrl,
    did,
    controlPlaneId: `cp:${
      url.hostname
        .toLowerCase()
        .replace(/[^a-z0-9._-]/g, '-')
        .slice(0, 63) || 'local'
    }`,
    hybridTokens: input.hybridTokens ?? false,
    deviceTokenTtlMs,
    maxCallerTokenTtlMs,
    callTokenSlackMs: 30_000,
    defaultEnrollTokenTtlMs: 3_600_000,
    maxEnrollTokenTtlMs: 7 * DAY_MS,
    heartbeatMs,
    handshakeTimeoutMs: input.handshakeTimeoutMs ?? 10_000,
    approvalTtlMs: input.approvalTtlMs ?? 15 * 60_000,
    rotation,
    limits: { ...DEFAULT_LIMITS, ...(input.limits ?? {}) },
    allowedHosts: [...hosts],
    allowedOrigins: [...origins],
  };
}

/** The hub URL of a tenant (envelope.md §5.1: the URL names the tenant). */
export function hubUrl(settings: ControlPlaneSettings, tid: string): string {
  const base = settings.publicUrl.replace(/^http/, 'ws');
  return `${base}/v1/hub/${tid}`;
}
