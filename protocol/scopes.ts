// Token scopes: `<tenant>/<device>/<tool>:<action>` (grammar in docs/protocol/tokens.md §6) and the
// matcher the safety gate and the control plane use. A scope only ever grants; nothing subtracts.

import { ProtocolError } from './errors.ts';
import {
  isDeviceId,
  MAX_TOOL_NAME_LENGTH,
  NAME_PREFIX_PATTERN,
  TOOL_NAME_PATTERN,
  UUID_PATTERN,
} from './identifiers.ts';

/** What a scope permits on the tools it names (tokens.md §6.2). No action implies another. */
export const SCOPE_ACTIONS = ['call', 'read', 'approve', 'admin'] as const;
export type ScopeAction = (typeof SCOPE_ACTIONS)[number];

/** Longest scope string accepted, in characters. */
export const MAX_SCOPE_LENGTH = 256;
/** Most scopes one token may carry. */
export const MAX_SCOPES = 64;

export interface Scope {
  /** Exact tenant id; scopes never span tenants. */
  readonly tenant: string;
  /** Exact device id, or '*' for every device of the tenant. */
  readonly device: string;
  /** Exact tool name, `prefix.*` (every tool below `prefix.`), or '*' (every tool). */
  readonly tool: string;
  readonly action: ScopeAction;
}

/** The canonical text of a scope. */
export function formatScope(scope: Scope): string {
  return `${scope.tenant}/${scope.device}/${scope.tool}:${scope.action}`;
}

/** True for an exact tool name, `prefix.*` or '*' (the tool patterns of scopes and quorum rules). */
export function isToolPattern(tool: string): boolean {
  if (tool === '*') return true;
  if (tool.length > MAX_TOOL_NAME_LENGTH) return false;
  return tool.endsWith('.*') ? NAME_PREFIX_PATTERN.test(tool.slice(0, -2)) : TOOL_NAME_PATTERN.test(tool);
}

/** Parses one scope. Throws SCOPE_MALFORMED on anything outside the grammar. */
export function parseScope(text: string): Scope {
  const bad = (why: string) => new ProtocolError('SCOPE_MALFORMED', `scope ${why}`, { details: { why } });
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_SCOPE_LENGTH) throw bad('has a bad length');
  const parts = text.split('/');
  if (parts.length !== 3) throw bad('must have three /-separated parts');
  const [tenant, device, rest] = parts as [string, string, string];
  const colon = rest.lastIndexOf(':');
  if (colon < 0) throw bad('lacks :action');
  const tool = rest.slice(0, colon);
  const action = rest.slice(colon + 1);
  if (!UUID_PATTERN.test(tenant)) throw bad('tenant must be a lowercase UUID');
  if (device !== '*' && !isDeviceId(device)) throw bad("device must be a did:key or '*'");
  if (!isToolPattern(tool)) throw bad("tool must be a tool name, 'prefix.*' or '*'");
  if (!(SCOPE_ACTIONS as readonly string[]).includes(action)) throw bad(`action must be one of ${SCOPE_ACTIONS}`);
  return { tenant, device, tool, action: action as ScopeAction };
}

/**
 * Parses a space-separated `scope` claim (RFC 9068 §2.2.3 form): one single space between scopes,
 * no duplicates, at most MAX_SCOPES. Throws SCOPE_MALFORMED.
 */
export function parseScopeClaim(claim: string): Scope[] {
  if (typeof claim !== 'string' || claim.length > MAX_SCOPES * (MAX_SCOPE_LENGTH + 1)) {
    throw new ProtocolError('SCOPE_MALFORMED', 'scope claim has a bad length');
  }
  if (claim === '') return [];
  const items = claim.split(' ');
  if (items.length > MAX_SCOPES) throw new ProtocolError('SCOPE_MALFORMED', `more than ${MAX_SCOPES} scopes`);
  if (new Set(items).size !== items.length) throw new ProtocolError('SCOPE_MALFORMED', 'duplicate scope');
  return items.map(parseScope);
}

/** True when `tool` is matched by `pattern`: '*' matches all, `a.*` matches names below `a.`, else equality. */
export function toolPatternMatches(pattern: string, tool: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return tool.startsWith(pattern.slice(0, -1));
  return pattern === tool;
}

/** What a caller wants to do, checked against scopes. */
export interface ScopeRequest {
  readonly tenant: string;
  readonly device: string;
  readonly tool: string;
  readonly action: ScopeAction;
}

/** True when one scope grants the request: same tenant and action, device and tool matched. */
export function scopeMatches(scope: Scope, request: ScopeRequest): boolean {
  return (
    scope.tenant === request.tenant &&
    scope.action === request.action &&
    (scope.device === '*' || scope.device === request.device) &&
    toolPatternMatches(scope.tool, request.tool)
  );
}

/** True when any of `scopes` grants the request. */
export function scopesAllow(scopes: readonly Scope[], request: ScopeRequest): boolean {
  return scopes.some((s) => scopeMatches(s, request));
}
