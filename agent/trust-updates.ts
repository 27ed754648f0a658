// Trust material the control plane sends after enrollment — the tenant's quorum policy and the JWK Set — installed
// the same way whichever carrier brought it (a WSS `policy.update` / `token.refreshed`, or a LoRa CONTROL message):
// validated first, and a policy only when checkPolicyUpdate accepts it (quorum.md §2.3), so a control plane alone
// can tighten the policy but never widen it. Written atomically where the safety gate reads them.

import { OutpostError } from '../protocol/errors.ts';
import { JwkSet } from '../protocol/jwks.ts';
import { checkPolicyUpdate, parseQuorumPolicy } from '../protocol/quorum.ts';
import { policyWasInForce, readPolicy, writeJwks, writePolicy } from './enrollment.ts';

export type TrustUpdateResult =
  | { readonly installed: true; readonly summary: string }
  | { readonly installed: false; readonly code: string; readonly message: string };

const refused = (e: unknown): TrustUpdateResult => ({
  installed: false,
  code: e instanceof OutpostError ? e.code : 'INVALID',
  message: e instanceof Error ? e.message : String(e),
});

/** Installs `next` as the quorum policy if it is valid, of tenant `tid` (when known) and accepted over the installed one. */
export function applyPolicyUpdate(stateDir: string, next: unknown, tid: string | undefined): TrustUpdateResult {
  try {
    const policy = parseQuorumPolicy(next);
    if (tid !== undefined && policy.tid !== tid) {
      return { installed: false, code: 'QUORUM_WRONG_TENANT', message: 'the policy is for another tenant' };
    }
    const installed = readPolicy(stateDir);
    if (installed) checkPolicyUpdate({ policy: installed, serial: 0, wasInForce: policyWasInForce(stateDir) }, policy);
    writePolicy(stateDir, policy);
    return { installed: true, summary: `${policy.approvers.length} approvers, ${policy.rules.length} rules` };
  } catch (e) {
    return refused(e);
  }
}

/** Installs a JWK Set that passes the schema (tokens.md §4.3). */
export function applyJwksUpdate(stateDir: string, value: unknown): TrustUpdateResult {
  const parsed = JwkSet.safeParse(value);
  if (!parsed.success) {
    return { installed: false, code: 'JWKS_INVALID', message: parsed.error.issues[0]?.message ?? 'invalid JWK Set' };
  }
  try {
    writeJwks(stateDir, parsed.data);
    return { installed: true, summary: `${parsed.data.keys.length} keys` };
  } catch (e) {
    return refused(e);
  }
}
