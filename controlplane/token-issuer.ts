// The control plane as token issuer: signing keys rotated active → overlap → retired by the pure planner of
// protocol/jwks.ts, the published JWK Set, runtime tokens signed through the key vault, and verification of
// tokens presented back to it (its own keys, plus a jti revocation list).

import type { Clock } from '../protocol/clock.ts';
import { ProtocolError } from '../protocol/errors.ts';
import { type JwkSet, type KeyRecord, planRotation, publishedJwk, type RotationPlan } from '../protocol/jwks.ts';
import type { Logger } from '../protocol/log.ts';
import { newJti, type RuntimeClaims, type VerifiedToken, verifyRuntimeToken } from '../protocol/tokens.ts';
import { ControlPlaneError } from './errors.ts';
import type { ControlPlaneStore, KeyVault, SigningKeyRecord } from './ports.ts';
import type { ControlPlaneSettings } from './settings.ts';

/** Claims the caller chooses; the issuer adds iss, iat, nbf, exp and jti. */
export type ClaimsInput = Omit<RuntimeClaims, 'iss' | 'iat' | 'nbf' | 'exp' | 'jti'>;

export interface IssuedToken {
  readonly token: string;
  readonly claims: RuntimeClaims;
}

export interface TokenIssuer {
  /** Loads keys and revocations, then rotates: call once before use. */
  start(): Promise<void>;
  /** Applies the rotation plan at the current time (and with `force`, replaces the active key now). */
  rotate(options?: { force?: boolean }): Promise<RotationPlan>;
  /** The published key set (tokens.md §4.3). */
  jwks(): JwkSet;
  /** Signs a token valid from now for `ttlMs` (whole seconds, at least 1). */
  issue(claims: ClaimsInput, ttlMs: number): Promise<IssuedToken>;
  /**
   * Verifies a token this control plane issued, for `audience` (and `tid` when given), and that its jti is not
   * revoked. Rejects with ProtocolError TOKEN_* or ControlPlaneError TOKEN_REVOKED.
   */
  verify(token: string, expect: { audience: string; tid?: string }): Promise<VerifiedToken>;
  /** Refuses `jti` until `untilMs` (in this process; the store keeps the record). */
  revokeJti(jti: string, untilMs: number): void;
}

export interface TokenIssuerOptions {
  readonly store: ControlPlaneStore;
  readonly vault: KeyVault;
  readonly clock: Clock;
  readonly settings: ControlPlaneSettings;
  readonly log: Logger;
}

export function createTokenIssuer(o: TokenIssuerOptions): TokenIssuer {
  const { store, vault, clock, settings, log } = o;
  let keys: SigningKeyRecord[] = [];
  let published: JwkSet = { keys: [] };
  const revoked = new Map<string, number>();
  // Serialises rotations: two concurrent ones would both create an active key.
  let rotations: Promise<unknown> = Promise.resolve();

  async function reload(): Promise<void> {
    keys = await store.listSigningKeys();
    published = {
      keys: keys
        .slice()
        .sort((a, b) => b.record.activatedAtMs - a.record.activatedAtMs)
        .map((k) => publishedJwk(k.publicKey, k.record.state, k.record.kid)),
    };
  }

  async function applyRotation(force: boolean): Promise<RotationPlan> {
    await reload();
    const nowMs = clock.nowMs();
    let plan = planRotation(
      keys.map((k) => k.record),
      nowMs,
      settings.rotation,
    );
    if (force && !plan.steps.some((s) => s.kind === 'create_active')) {
      const demotions = keys
        .filter((k) => k.record.state === 'active')
        .map((k) => ({ kind: 'demote' as const, kid: k.record.kid }));
      plan = { steps: [{ kind: 'create_active' }, ...demotions, ...plan.steps], nextCheckAtMs: plan.nextCheckAtMs };
    }
    const byKid = new Map(keys.map((k) => [k.record.kid, k]));
    for (const step of plan.steps) {
      if (step.kind === 'create_active') {
        const created = await vault.generateTokenKey(settings.hybridTokens);
        const record: KeyRecord = { kid: created.kid, state: 'active', activatedAtMs: nowMs };
        await store.putSigningKey({ record, publicKey: created.publicKey });
        byKid.set(created.kid, { record, publicKey: created.publicKey });
        log.notice('keys.created', { kid: created.kid, hybrid: settings.hybridTokens });
        continue;
      }
      const current = byKid.get(step.kid);
      if (!current) continue;
      if (step.kind === 'purge') {
        await store.deleteSigningKey(step.kid);
        await vault.destroyTokenKey(step.kid);
        byKid.delete(step.kid);
        log.notice('keys.purged', { kid: step.kid });
        continue;
      }
      const r = current.record;
      const record: KeyRecord =
        step.kind === 'demote'
          ? { kid: r.kid, state: 'overlap', activatedAtMs: r.activatedAtMs, overlapSinceMs: nowMs }
          : {
              kid: r.kid,
              state: 'retired',
              activatedAtMs: r.activatedAtMs,
              overlapSinceMs: r.state === 'active' ? nowMs : r.overlapSinceMs,
              retiredAtMs: nowMs,
            };
      await store.putSigningKey({ record, publicKey: current.publicKey });
      byKid.set(r.kid, { record, publicKey: current.publicKey });
      log.notice(step.kind === 'demote' ? 'keys.demoted' : 'keys.retired', { kid: r.kid });
    }
    await reload();
    return plan;
  }

  function activeKey(): SigningKeyRecord {
    const active = keys.find((k) => k.record.state === 'active');
    if (!active) throw new ControlPlaneError('KEYS_UNAVAILABLE', 'no active signing key');
    return active;
  }

  return {
    async start() {
      for (const r of await store.activeTokenRevocations(clock.nowMs())) revoked.set(r.subject, r.untilMs ?? 0);
      await this.rotate();
    },
    rotate(options = {}) {
      const run = rotations.then(() => applyRotation(options.force === true));
      rotations = run.catch(() => undefined); // a failed rotation is reported to its caller, not to the next one
      return run;
    },
    jwks: () => published,
    async issue(claims, ttlMs) {
      const key = activeKey();
      const iat = Math.floor(clock.nowMs() / 1000);
      const full: RuntimeClaims = {
        iss: settings.issuer,
        ...claims,
        iat,
        nbf: iat,
        exp: iat + Math.max(1, Math.floor(ttlMs / 1000)),
        jti: newJti(),
      };
      return { token: await vault.signToken(key.record.kid, full), claims: full };
    },
    async verify(token, expect) {
      const verified = await verifyRuntimeToken(token, {
        jwks: published,
        clock,
        issuer: settings.issuer,
        audience: expect.audience,
        ...(expect.tid === undefined ? {} : { tid: expect.tid }),
        maxLifetimeS: Math.floor(settings.rotation.maxTokenLifetimeMs / 1000),
      });
      const until = revoked.get(verified.claims.jti);
      if (until !== undefined) {
        if (until > clock.nowMs()) throw new ControlPlaneError('TOKEN_REVOKED', 'this token was revoked');
        revoked.delete(verified.claims.jti);
      }
      return verified;
    },
    revokeJti(jti, untilMs) {
      if (!/^[A-Za-z0-9_-]{16,64}$/.test(jti)) throw new ProtocolError('TOKEN_MALFORMED', 'bad jti');
      revoked.set(jti, untilMs);
    },
  };
}
