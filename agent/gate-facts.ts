// Turns verifier outcomes into gate facts: which token and quorum failures mean what to the gate.
// Pure mappings, so the table of protocol codes to gate reasons is tested on its own.

import { isOutpostError } from '../protocol/errors.ts';
import type { VerifiedQuorum } from '../protocol/quorum.ts';
import type { VerifiedToken } from '../protocol/tokens.ts';
import type { QuorumFact, TokenFact } from './gate.ts';

/** A verified token as a fact (`jtiSeen` is filled in by the caller from the spent set). */
export function tokenFact(v: VerifiedToken, jtiSeen: boolean): TokenFact {
  return {
    state: 'valid',
    subject: v.claims.sub,
    tenant: v.claims.tid,
    ...(v.claims.dev !== undefined ? { device: v.claims.dev } : {}),
    role: v.claims.role,
    scopes: v.scopes,
    jti: v.claims.jti,
    jtiSeen,
  };
}

/** What a token verification failure means to the gate. Anything unexpected counts as invalid. */
export function tokenFactFromError(e: unknown): TokenFact {
  if (isOutpostError(e, 'TOKEN_EXPIRED')) return { state: 'expired' };
  if (isOutpostError(e, 'TOKEN_NOT_YET_VALID')) return { state: 'not_yet_valid' };
  return { state: 'invalid', detail: isOutpostError(e) ? e.code : 'TOKEN_UNVERIFIABLE' };
}

export function quorumFact(v: VerifiedQuorum, nonceSeen: boolean): QuorumFact {
  return { state: 'valid', nonce: v.nonce, nonceSeen, approvers: v.approvers };
}

const QUORUM_REASONS: Readonly<Record<string, Extract<QuorumFact, { state: 'invalid' }>['reason']>> = {
  QUORUM_EXPIRED: 'QUORUM_EXPIRED',
  QUORUM_WRONG_DEVICE: 'QUORUM_MISMATCH',
  QUORUM_WRONG_TOOL: 'QUORUM_MISMATCH',
  QUORUM_ARGS_MISMATCH: 'QUORUM_MISMATCH',
  QUORUM_TOO_FEW: 'QUORUM_INSUFFICIENT',
};

/** What a quorum verification failure means to the gate: expired, for another call, too few, or invalid. */
export function quorumFactFromError(e: unknown): QuorumFact {
  const code = isOutpostError(e) ? e.code : 'QUORUM_UNVERIFIABLE';
  return { state: 'invalid', reason: QUORUM_REASONS[code] ?? 'QUORUM_INVALID', detail: code };
}
