// The trust bundle of an enrolled device: the tenant, issuer and audience from its enrollment record, and the
// JWK Set and approval policy the upstream link keeps current in the state directory. Live: the gate reads the
// files' latest content (cached by modification time), so a refreshed key set or a new policy applies at once.

import { existsSync, statSync } from 'node:fs';
import type { Clock } from '../protocol/clock.ts';
import { ProtocolError } from '../protocol/errors.ts';
import type { JwkSet } from '../protocol/jwks.ts';
import type { QuorumPolicy } from '../protocol/quorum.ts';
import { createTokenVerifier, type TokenVerifier } from '../protocol/token-verifier.ts';
import { type Enrollment, readPolicy, trustFiles } from './enrollment.ts';
import { readLoraSession } from './lora-session.ts';
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

/**
 * The trust of a device enrolled over LoRa (no IP enrollment record): the tenant from its LoRa session, the tokens'
 * issuer and audience, the JWK Set and the policy as CONTROL messages deliver them (lora-frames.md §4.11). Until the
 * issuer and the key set have arrived, every token is refused (JWKS_UNAVAILABLE): fail closed.
 */
export function loraEnrollmentTrust(
  stateDir: string,
  tid: string,
  clock: Clock,
): { trust: TrustBundle; verifier: TokenVerifier } {
  const files = trustFiles(stateDir);
  const base = enrollmentTrust(stateDir, {
    tid,
    issuer: '',
    audiences: { controlPlane: '', device: '' },
  } as Enrollment);
  const session = () => readLoraSession(stateDir);
  let inner: { issuer: string; audience: string; verifier: TokenVerifier } | undefined;
  const trust: TrustBundle = {
    tenantId: tid,
    get issuer() {
      return session()?.issuer ?? '';
    },
    get audience() {
      return session()?.deviceAudience ?? '';
    },
    get jwks() {
      return base.jwks;
    },
    get policy() {
      return base.policy;
    },
  };
  const verifier: TokenVerifier = {
    current: () => inner?.verifier.current(),
    async verify(token, expect) {
      const s = session();
      if (!s?.issuer || !s.deviceAudience || !existsSync(files.jwksFile)) {
        throw new ProtocolError('JWKS_UNAVAILABLE', 'the control plane has not yet sent this device its keys');
      }
      if (!inner || inner.issuer !== s.issuer || inner.audience !== s.deviceAudience) {
        inner = {
          issuer: s.issuer,
          audience: s.deviceAudience,
          verifier: createTokenVerifier({
            fetchJwks: async () => readJwksFile(files.jwksFile),
            clock,
            issuer: s.issuer,
            audience: s.deviceAudience,
            minRefetchIntervalMs: 5_000,
          }),
        };
      }
      return inner.verifier.verify(token, expect);
    },
  };
  return { trust, verifier };
}
