// A runtime-token verifier that holds the issuer's JWK Set: cached, refreshed when stale, refetched once
// on an unknown kid at most every `minRefetchIntervalMs`, so bogus kids cannot hammer the issuer (tokens.md §4.4).

import type { Clock } from './clock.ts';
import { isOutpostError, ProtocolError } from './errors.ts';
import { decodeJwks, type JwkSet } from './jwks.ts';
import { inspectRuntimeToken, type VerifiedToken, type VerifyTokenOptions, verifyRuntimeToken } from './tokens.ts';

/** Default age after which the cached set is refreshed before use. */
export const DEFAULT_JWKS_MAX_AGE_MS = 300_000;
/** Default least time between two fetches, whatever triggers them. */
export const DEFAULT_MIN_REFETCH_INTERVAL_MS = 30_000;

export interface TokenVerifierOptions extends Omit<VerifyTokenOptions, 'jwks' | 'tid'> {
  /** Fetches the issuer's JWK Set (parsed JSON). Rejections are tolerated while a cached set exists. */
  readonly fetchJwks: () => Promise<unknown>;
  readonly clock: Clock;
  /** A set to start from (a device's copy from enrollment); counts as fetched at creation. */
  readonly initialJwks?: unknown;
  readonly maxAgeMs?: number;
  readonly minRefetchIntervalMs?: number;
}

export interface TokenVerifier {
  /**
   * Verifies a token (see verifyRuntimeToken), refreshing the key set when it is stale or lacks the
   * token's kid. Rejects with ProtocolError only: TOKEN_* codes, or JWKS_UNAVAILABLE when no set was
   * ever obtained.
   */
  verify(token: string, expect?: { readonly tid?: string }): Promise<VerifiedToken>;
  /** The cached set, if any. */
  current(): JwkSet | undefined;
}

/** Creates a verifier. All state (cache, last fetch time, in-flight fetch) lives in the returned object. */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { fetchJwks, clock } = options;
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_JWKS_MAX_AGE_MS;
  const minIntervalMs = options.minRefetchIntervalMs ?? DEFAULT_MIN_REFETCH_INTERVAL_MS;
  let cached: JwkSet | undefined;
  let fetchedAtMono = Number.NEGATIVE_INFINITY;
  let lastAttemptMono = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | undefined;

  if (options.initialJwks !== undefined) {
    cached = decodeJwks(options.initialJwks);
    fetchedAtMono = clock.monotonicMs();
  }

  async function fetchOnce(): Promise<void> {
    lastAttemptMono = clock.monotonicMs();
    try {
      const next = decodeJwks(await fetchJwks());
      cached = next;
      fetchedAtMono = clock.monotonicMs();
    } catch (e) {
      // Keep serving the cached set (an offline device must); report only when there is none.
      if (cached === undefined) {
        throw isOutpostError(e, 'JWKS_MALFORMED')
          ? e
          : new ProtocolError('JWKS_UNAVAILABLE', 'cannot fetch the JWK Set', { cause: e });
      }
    }
  }

  /** Fetches unless one ran within minIntervalMs; concurrent callers share one fetch. */
  async function refetch(): Promise<void> {
    if (inFlight) return inFlight;
    if (clock.monotonicMs() - lastAttemptMono < minIntervalMs) return;
    inFlight = fetchOnce().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  return {
    current: () => cached,
    async verify(token, expect = {}) {
      const { kid } = inspectRuntimeToken(token, options.maxTokenBytes);
      if (cached === undefined || clock.monotonicMs() - fetchedAtMono >= maxAgeMs) await refetch();
      if (cached !== undefined && !cached.keys.some((k) => k.kid === kid)) await refetch();
      if (cached === undefined) throw new ProtocolError('JWKS_UNAVAILABLE', 'no JWK Set available');
      return verifyRuntimeToken(token, { ...options, jwks: cached, ...(expect.tid ? { tid: expect.tid } : {}) });
    },
  };
}
