// The safety gate as a pure decision: facts about one tool call in, allow or deny with a stable reason code
// out. Gathering the facts (token and quorum verification, replay sets, clocks) happens in gate-facts.ts;
// running the tool happens in the executor. Reason codes are documented in docs/agent.md.

import { isWithinAllowedHours, type ToolSpec } from '../protocol/manifest.ts';
import { type Role, roleAllows } from '../protocol/roles.ts';
import { type Scope, scopesAllow } from '../protocol/scopes.ts';

/** Where a call came from. Local sources may call read_only tools without a token. */
export type CallSource = 'local_api' | 'mcp_stdio' | 'mcp_http' | 'upstream';

export const LOCAL_SOURCES: readonly CallSource[] = ['local_api', 'mcp_stdio', 'mcp_http'];

export const GATE_REASONS = [
  'ALLOWED',
  'TOOL_UNKNOWN',
  'TOKEN_REQUIRED',
  'TOKEN_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_NOT_YET_VALID',
  'TOKEN_REPLAYED',
  'TRUST_NOT_CONFIGURED',
  'TENANT_MISMATCH',
  'DEVICE_MISMATCH',
  'SCOPE_DENIED',
  'CLASS_NOT_ALLOWED',
  'ARGS_INVALID',
  'QUORUM_REQUIRED',
  'QUORUM_INVALID',
  'QUORUM_EXPIRED',
  'QUORUM_MISMATCH',
  'QUORUM_INSUFFICIENT',
  'QUORUM_REUSED',
  'CLOCK_UNTRUSTED',
  'OUTSIDE_ALLOWED_HOURS',
  'INTERLOCKED',
  'MIN_INTERVAL',
  'RATE_LIMITED',
] as const;
export type GateReason = (typeof GATE_REASONS)[number];

/** What the agent remembers of one tool's calls (store time: it does not jump with the wall clock). */
export interface ToolHistory {
  /** Calls of the tool running now. */
  readonly running: number;
  /** When the last finished call ended. */
  readonly lastEndStoreMs: number | undefined;
  /** Start times of recent allowed calls (at least the longest rate-limit window). */
  readonly startsStoreMs: readonly number[];
}

export const NO_HISTORY: ToolHistory = Object.freeze({ running: 0, lastEndStoreMs: undefined, startsStoreMs: [] });

export type TokenFact =
  | { readonly state: 'absent' }
  /** A token was presented but the device has no trust bundle to check it against. */
  | { readonly state: 'unverifiable' }
  /** Signature, form, key or claims wrong: `detail` is the verifier's code (TOKEN_BAD_SIGNATURE, …). */
  | { readonly state: 'invalid'; readonly detail: string }
  | { readonly state: 'expired' }
  | { readonly state: 'not_yet_valid' }
  | {
      readonly state: 'valid';
      readonly subject: string;
      readonly tenant: string;
      /** The device the token is bound to, when it names one. */
      readonly device?: string;
      readonly role: Role;
      readonly scopes: readonly Scope[];
      readonly jti: string;
      /** The jti was already used for a call (tokens are single-use on the device). */
      readonly jtiSeen: boolean;
    };

export type QuorumFact =
  | { readonly state: 'absent' }
  | {
      readonly state: 'invalid';
      readonly reason: 'QUORUM_INVALID' | 'QUORUM_EXPIRED' | 'QUORUM_MISMATCH' | 'QUORUM_INSUFFICIENT';
      readonly detail: string;
    }
  | {
      readonly state: 'valid';
      readonly nonce: string;
      readonly nonceSeen: boolean;
      readonly approvers: readonly string[];
    };

export interface GateFacts {
  readonly source: CallSource;
  /** The tool as named by the caller, and its manifest entry when there is one. */
  readonly toolName: string;
  readonly tool: ToolSpec | undefined;
  /**
   * Tools this one must keep a distance from, with the window: its own mutually_exclusive interlocks and those
   * of other tools that name it (the rule works both ways).
   */
  readonly exclusions: readonly { readonly tool: string; readonly windowMs: number }[];
  /** Argument-schema violations (empty when the arguments are valid). */
  readonly argsErrors: readonly string[];
  readonly device: {
    readonly id: string;
    /** The tenant from the trust bundle; undefined when no trust bundle is configured. */
    readonly tenant: string | undefined;
  };
  readonly token: TokenFact;
  readonly quorum: QuorumFact;
  readonly wallMs: number;
  /** False while the wall clock reads before the plausible floor (no RTC, no NTP yet). */
  readonly wallClockTrusted: boolean;
  readonly nowStoreMs: number;
  /** History of this tool and of the tools in `exclusions` (absent = never called). */
  readonly history: ReadonlyMap<string, ToolHistory>;
}

export interface Principal {
  readonly kind: 'local' | 'token';
  readonly subject?: string;
  readonly role?: Role;
}

export interface GateDecision {
  readonly allow: boolean;
  readonly reason: GateReason;
  readonly message: string;
  readonly principal: Principal;
  /** Present when the call was allowed and these single-use values must now be spent. */
  readonly consume?: { readonly jti?: string; readonly quorumNonce?: string };
}

function deny(reason: GateReason, message: string, principal: Principal): GateDecision {
  return { allow: false, reason, message, principal };
}

/** Decides one call. Pure: the same facts always give the same decision. */
export function decide(f: GateFacts): GateDecision {
  const anonymous: Principal = { kind: 'local' };
  const tool = f.tool;
  if (!tool) return deny('TOOL_UNKNOWN', `no tool named "${f.toolName}"`, anonymous);

  // 1. Who is calling.
  let principal: Principal = anonymous;
  const t = f.token;
  switch (t.state) {
    case 'absent':
      if (!LOCAL_SOURCES.includes(f.source)) return deny('TOKEN_REQUIRED', 'upstream calls need a token', anonymous);
      if (tool.safety_class !== 'read_only') {
        return deny(
          'TOKEN_REQUIRED',
          `${tool.safety_class} tools need a token (local callers get read_only)`,
          anonymous,
        );
      }
      break;
    case 'unverifiable':
      return deny('TRUST_NOT_CONFIGURED', 'no trust bundle: the device cannot check tokens', anonymous);
    case 'invalid':
      return deny('TOKEN_INVALID', `token refused (${t.detail})`, anonymous);
    case 'expired':
      return deny('TOKEN_EXPIRED', 'token has expired', anonymous);
    case 'not_yet_valid':
      return deny('TOKEN_NOT_YET_VALID', 'token is not valid yet (check the clock)', anonymous);
    case 'valid': {
      principal = { kind: 'token', subject: t.subject, role: t.role };
      if (t.jtiSeen) return deny('TOKEN_REPLAYED', 'token was already used for a call', principal);
      if (f.device.tenant === undefined) {
        return deny('TRUST_NOT_CONFIGURED', 'no trust bundle: the device cannot check tokens', principal);
      }
      if (t.tenant !== f.device.tenant) return deny('TENANT_MISMATCH', 'token is for another tenant', principal);
      if (t.device !== undefined && t.device !== f.device.id) {
        return deny('DEVICE_MISMATCH', 'token is bound to another device', principal);
      }
      const request = { tenant: f.device.tenant, device: f.device.id, tool: tool.name, action: 'call' as const };
      if (!scopesAllow(t.scopes, request)) {
        return deny('SCOPE_DENIED', `token scopes do not grant ${tool.name}:call on this device`, principal);
      }
      if (!roleAllows(t.role, tool.safety_class)) {
        return deny('CLASS_NOT_ALLOWED', `role ${t.role} may not call ${tool.safety_class} tools`, principal);
      }
      break;
    }
  }

  // 2. What is asked.
  if (f.argsErrors.length > 0) {
    return deny('ARGS_INVALID', `arguments do not match the schema: ${f.argsErrors.slice(0, 3).join('; ')}`, principal);
  }

  // 3. Human approval for anything physical.
  let quorumNonce: string | undefined;
  if (tool.safety_class === 'physical_actuation') {
    const q = f.quorum;
    if (q.state === 'absent') return deny('QUORUM_REQUIRED', 'physical_actuation needs a quorum token', principal);
    if (q.state === 'invalid') return deny(q.reason, `quorum token refused (${q.detail})`, principal);
    if (q.nonceSeen) return deny('QUORUM_REUSED', 'quorum token was already used', principal);
    quorumNonce = q.nonce;
  }

  // 4. Interlocks and rate limits declared in the manifest.
  const own = f.history.get(tool.name) ?? NO_HISTORY;
  for (const il of tool.interlocks ?? []) {
    if (il.kind !== 'allowed_hours') continue;
    if (!f.wallClockTrusted) {
      return deny('CLOCK_UNTRUSTED', 'the clock is not set, so allowed hours cannot be checked', principal);
    }
    if (!isWithinAllowedHours(il, f.wallMs)) {
      const offset =
        il.utcOffsetMinutes === 0 ? 'UTC' : `UTC${il.utcOffsetMinutes > 0 ? '+' : ''}${il.utcOffsetMinutes / 60}`;
      return deny(
        'OUTSIDE_ALLOWED_HOURS',
        `${tool.name} is allowed only from ${il.fromHour}:00 to ${il.toHour}:00 (${offset})`,
        principal,
      );
    }
  }
  for (const x of f.exclusions) {
    const h = f.history.get(x.tool) ?? NO_HISTORY;
    const recent = h.lastEndStoreMs !== undefined && f.nowStoreMs - h.lastEndStoreMs < x.windowMs;
    if (h.running > 0 || recent) {
      const why = h.running > 0 ? 'is running' : `ran less than ${Math.ceil(x.windowMs / 1000)} s ago`;
      return deny('INTERLOCKED', `${tool.name} is interlocked with ${x.tool}, which ${why}`, principal);
    }
  }
  for (const il of tool.interlocks ?? []) {
    if (il.kind !== 'min_interval') continue;
    if (own.running > 0) return deny('MIN_INTERVAL', `${tool.name} is still running`, principal);
    if (own.lastEndStoreMs !== undefined) {
      const waitMs = il.ms - (f.nowStoreMs - own.lastEndStoreMs);
      if (waitMs > 0) {
        return deny('MIN_INTERVAL', `${tool.name} may run again in ${Math.ceil(waitMs / 1000)} s`, principal);
      }
    }
  }
  if (tool.rateLimit) {
    const { maxCalls, perMs } = tool.rateLimit;
    const inWindow = own.startsStoreMs.filter((t) => f.nowStoreMs - t < perMs).length;
    if (inWindow >= maxCalls) {
      return deny('RATE_LIMITED', `${tool.name} allows ${maxCalls} calls per ${perMs / 1000} s`, principal);
    }
  }

  const jti = t.state === 'valid' ? t.jti : undefined;
  return {
    allow: true,
    reason: 'ALLOWED',
    message: 'allowed',
    principal,
    ...(jti !== undefined || quorumNonce !== undefined
      ? { consume: { ...(jti !== undefined ? { jti } : {}), ...(quorumNonce !== undefined ? { quorumNonce } : {}) } }
      : {}),
  };
}
