import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { type JwkSet, parseJwks, publishedJwk } from '../../protocol/jwks.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { createTokenVerifier, DEFAULT_MIN_REFETCH_INTERVAL_MS } from '../../protocol/token-verifier.ts';
import { type RuntimeClaims, signRuntimeToken } from '../../protocol/tokens.ts';
import { seedFromHex, vectorJson } from '../support/protocol-vectors.ts';

const tokenFile = vectorJson<{
  issuer: string;
  audience: string;
  verifyAtMs: number;
  vectors: { kid: string; hybrid: boolean; claims: RuntimeClaims; token: string }[];
}>('tokens', 'runtime-tokens.json');
const plainVector = tokenFile.vectors.find((x) => !x.hybrid)!;
const v = { ...plainVector, issuer: tokenFile.issuer, audience: tokenFile.audience, verifyAtMs: tokenFile.verifyAtMs };
const published = parseJwks(
  vectorJson<{ vectors: { jwksText: string }[] }>('tokens', 'jwks.json').vectors[0]!.jwksText,
);
const plainToken = plainVector.token;

/** A fake issuer endpoint: serves whatever set it holds, counts fetches, can be made to fail. */
function issuer(initial: JwkSet) {
  const state = { set: initial as unknown, fetches: 0, failing: false };
  return {
    state,
    fetchJwks: async () => {
      state.fetches++;
      if (state.failing) throw new Error('connection refused');
      return structuredClone(state.set);
    },
  };
}

function verifierFor(iss: ReturnType<typeof issuer>, clock: FakeClock, extra = {}) {
  return createTokenVerifier({ fetchJwks: iss.fetchJwks, clock, issuer: v.issuer, audience: v.audience, ...extra });
}

async function rejectsWith(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e) => isOutpostError(e, code) || assert.fail(`expected ${code}, got ${e}`));
}

/** A token with a kid the issuer has never published (signature irrelevant: it fails before). */
function tokenWithKid(kid: string): string {
  const [, p, s] = plainToken.split('.');
  const h = Buffer.from(canonicalBytes({ alg: 'EdDSA', kid, typ: 'outpost-rt+jwt' })).toString('base64url');
  return `${h}.${p}.${s}`;
}

describe('token verifier', () => {
  it('fetches once, then serves from cache until maxAgeMs', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const iss = issuer(published);
    const verifier = verifierFor(iss, clock, { maxAgeMs: 600_000 });
    await verifier.verify(plainToken);
    await verifier.verify(plainToken);
    assert.equal(iss.state.fetches, 1);
    clock.advance(600_000);
    await verifier.verify(plainToken);
    assert.equal(iss.state.fetches, 2);
  });

  it('a flood of unknown kids causes at most one fetch per interval', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const iss = issuer(published);
    const verifier = verifierFor(iss, clock);
    await verifier.verify(plainToken);
    await rejectsWith(verifier.verify(tokenWithKid('too-soon')), 'TOKEN_UNKNOWN_KEY');
    assert.equal(iss.state.fetches, 1, 'no refetch within the interval of the last fetch');
    clock.advance(DEFAULT_MIN_REFETCH_INTERVAL_MS);
    const flood = Array.from({ length: 500 }, (_, i) => verifier.verify(tokenWithKid(`bogus-${i}`)));
    const results = await Promise.allSettled(flood);
    assert.ok(results.every((r) => r.status === 'rejected' && isOutpostError(r.reason, 'TOKEN_UNKNOWN_KEY')));
    assert.equal(iss.state.fetches, 2);
    for (let i = 0; i < 100; i++) await rejectsWith(verifier.verify(tokenWithKid(`more-${i}`)), 'TOKEN_UNKNOWN_KEY');
    assert.equal(iss.state.fetches, 2);
    clock.advance(DEFAULT_MIN_REFETCH_INTERVAL_MS);
    await rejectsWith(verifier.verify(tokenWithKid('late')), 'TOKEN_UNKNOWN_KEY');
    assert.equal(iss.state.fetches, 3);
  });

  it('learns a newly rotated key on its first unknown kid', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const iss = issuer({ keys: [] });
    const verifier = verifierFor(iss, clock);
    await rejectsWith(verifier.verify(plainToken), 'TOKEN_UNKNOWN_KEY');
    iss.state.set = published;
    clock.advance(DEFAULT_MIN_REFETCH_INTERVAL_MS);
    const r = await verifier.verify(plainToken);
    assert.equal(r.kid, v.kid);
  });

  it('refuses a key the issuer has since retired, once it refreshes', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const iss = issuer(published);
    const verifier = verifierFor(iss, clock, { maxAgeMs: 60_000 });
    await verifier.verify(plainToken);
    iss.state.set = { keys: published.keys.map((k) => ({ ...k, status: 'retired' })) };
    clock.advance(60_000);
    await rejectsWith(verifier.verify(plainToken), 'TOKEN_KEY_RETIRED');
  });

  it('keeps its cached set while the issuer is unreachable (offline device)', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const iss = issuer(published);
    iss.state.failing = true;
    const verifier = verifierFor(iss, clock, { initialJwks: published, maxAgeMs: 1000 });
    clock.advance(5000);
    const r = await verifier.verify(plainToken);
    assert.equal(r.kid, v.kid);
    assert.equal(iss.state.fetches, 1);
  });

  it('reports JWKS_UNAVAILABLE when it never had a set, and JWKS_MALFORMED for a bad one', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const down = issuer(published);
    down.state.failing = true;
    await rejectsWith(verifierFor(down, clock).verify(plainToken), 'JWKS_UNAVAILABLE');
    const junk = issuer(published);
    junk.state.set = { keys: 'nope' };
    await rejectsWith(verifierFor(junk, clock).verify(plainToken), 'JWKS_MALFORMED');
  });

  it('concurrent verifications share one fetch', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const iss = issuer(published);
    const verifier = verifierFor(iss, clock);
    await Promise.all(Array.from({ length: 50 }, () => verifier.verify(plainToken)));
    assert.equal(iss.state.fetches, 1);
  });

  it('checks the tenant it is asked to', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const verifier = verifierFor(issuer(published), clock);
    await verifier.verify(plainToken, { tid: v.claims.tid });
    await rejectsWith(
      verifier.verify(plainToken, { tid: '00000000-0000-5000-8000-000000000000' }),
      'TOKEN_WRONG_TENANT',
    );
  });

  it('rejects malformed tokens without fetching', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const iss = issuer(published);
    await rejectsWith(verifierFor(iss, clock).verify('not a token'), 'TOKEN_MALFORMED');
    assert.equal(iss.state.fetches, 0);
  });

  it('verifies a token signed by a key it learns later in the set', async () => {
    const clock = new FakeClock(v.verifyAtMs);
    const fresh = ed25519KeyPair(seedFromHex('77'.repeat(32)));
    const jwk = publishedJwk(fresh.publicKey, 'active');
    const iss = issuer(published);
    const verifier = verifierFor(iss, clock);
    await verifier.verify(plainToken);
    const rotated = await signRuntimeToken(v.claims, { kid: jwk.kid, ed25519Seed: fresh.seed });
    iss.state.set = { keys: [jwk, { ...published.keys[0]!, status: 'overlap' }] };
    clock.advance(DEFAULT_MIN_REFETCH_INTERVAL_MS);
    assert.equal((await verifier.verify(rotated)).kid, jwk.kid);
    assert.equal((await verifier.verify(plainToken)).kid, v.kid);
  });
});
