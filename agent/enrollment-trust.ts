// The trust bundle of an enrolled device: the tenant, issuer and audience from its enrollment record, and the
// JWK Set and approval policy the upstream link keeps current in the state directory. Live: the gate reads the
// files' latest content (cached by modification time), so a refreshed key set or a new policy applies at once.

import { statSync } from 'node:fs';
import type { JwkSet } from '../protocol/jwks.ts';
import type { QuorumPolicy } from '../protocol/quorum.ts';
import { type Enrollment, readPolicy, trustFiles } from './enrollment.ts';
import { readJwksFile, type TrustBundle } from './trust-bundle.ts';

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1; // absent
  }
}

/**
 * A TrustBundle over an enrollment. Until the control plane sends a policy, `policy` is one no quorum token can
 * satisfy (no approvers), so physical actuation stays refused: fail closed.
 */
export function enrollmentTrust(stateDir: string, enrollment: Enrollment): TrustBundle {
  const files = trustFiles(stateDir);
  let jwks: { at: number; value: JwkSet } | undefined;
  let policy: { at: number; value: QuorumPolicy } | undefined;
  const noPolicy = { v: 1, tid: enrollment.tid, approvers: [], rules: [] } as unknown as QuorumPolicy;
  return {
    tenantId: enrollment.tid,
    issuer: enrollment.issuer,
    audience: enrollment.audiences.device,
    get jwks() {
      const at = mtimeOf(files.jwksFile);
      if (!jwks || jwks.at !== at) jwks = { at, value: readJwksFile(files.jwksFile) };
      return jwks.value;
    },
    get policy() {
      const at = mtimeOf(files.approvalPolicyFile);
      if (!policy || policy.at !== at) {
        const value = readPolicy(stateDir);
        if (!value) return noPolicy;
        policy = { at, value };
      }
      return policy.value;
    },
  };
}
