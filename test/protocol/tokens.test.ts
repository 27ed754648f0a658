import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CompactSign, createLocalJWKSet, jwtVerify } from 'jose';
import { concatBytes, toBase64Url } from '../../protocol/bytes.ts';
import { canonicalBytes, canonicalize } from '../../protocol/canonical-json.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { decodeJwks, type JwkSet, parseJwks, publishedJwk } from '../../protocol/jwks.ts';
import { ed25519KeyPair, hybridKeyPair } from '../../protocol/signing.ts';
import {
  inspectRuntimeToken,
  newJti,
  type RuntimeClaims,
  signRuntimeToken,
  TENANT_NAMESPACE,
  tenantIdFromDidWeb,
  UUID_NAMESPACE_URL,
  uuidV5,
  type VerifyTokenOptions,
  verifyRuntimeToken,
} from '../../protocol/tokens.ts';
import { seedFromHex, vectorJson } from '../support/protocol-vectors.ts';

interface TokenVector {
  name: string;
  ed25519SeedHex: string;
  mldsaSeedHex?: string;
  kid: string;
  hybrid: boolean;
  claims: RuntimeClaims;
  headerText: string;
  token: string;
}
interface TokenReject {
  name: string;
  token: string;
  error: string;
  verifyAtMs?: number;
  issuer?: string;
  audience?: string;
}

const tokenFile = vectorJson<{
  issuer: string;
  audience: string;
  verifyAtMs: number;
  vectors: TokenVector[];
  rejects: TokenReject[];
}>('tokens', 'runtime-tokens.json');
const jwksFile = vectorJson<{
  vectors: {
    keys: { ed25519SeedHex: string; mldsaSeedHex?: string; status: 'active' | 'overlap'; kid: string }[];
    jwksText: string;
  }[];
  rejects: { name: string; jwksText: string; error: string }[];
}>('tokens', 'jwks.json');
const plain = tokenFile.vectors.find((v) => !v.hybrid)!;
const hybrid = tokenFile.vectors.find((v) => v.hybrid)!;
const plainToken = plain.token;
const hybridToken = hybrid.token;
const jwksText = jwksFile.vectors[0]!.jwksText;
const jwks = parseJwks(jwksText);
const AT = tokenFile.verifyAtMs;

function options(overrides: Partial<VerifyTokenOptions> = {}, atMs = AT): VerifyTokenOptions {
  return { jwks, clock: new FakeClock(atMs), issuer: tokenFile.issuer, audience: tokenFile.audience, ...overrides };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isOutpostError(e), `expected an OutpostError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

const hybridKey = () => ({
  kid: hybrid.kid,
  ed25519Seed: seedFromHex(hybrid.ed25519SeedHex),
  mldsaSeed: seedFromHex(hybrid.mldsaSeedHex!),
});

describe('tenant ids', () => {
  const v = vectorJson<{
    namespaceName: string;
    namespace: string;
    vectors: { name: string; didWeb: string; tid: string }[];
    rejects: { name: string; didWeb: string; error: string }[];
  }>('tokens', 'tenant-id.json');

  it('derives the namespace as documented', () => {
    assert.equal(uuidV5(UUID_NAMESPACE_URL, v.namespaceName), v.namespace);
    assert.equal(TENANT_NAMESPACE, v.namespace);
  });

  for (const c of v.vectors) {
    it(`matches the vector: ${c.name}`, () => assert.equal(tenantIdFromDidWeb(c.didWeb), c.tid));
  }

  for (const c of v.rejects) {
    it(`refuses ${c.name}`, () => assert.throws(() => tenantIdFromDidWeb(c.didWeb), { code: c.error }));
  }
});

describe('runtime tokens: vectors', () => {
  it('signs the plain vector byte for byte', async () => {
    const token = await signRuntimeToken(plain.claims, {
      kid: plain.kid,
      ed25519Seed: seedFromHex(plain.ed25519SeedHex),
    });
    assert.equal(token, plainToken);
    assert.equal(Buffer.from(token.split('.')[0]!, 'base64url').toString(), plain.headerText);
    assert.equal(Buffer.from(token.split('.')[1]!, 'base64url').toString(), canonicalize(plain.claims));
  });

  it('signs the hybrid vector byte for byte', async () => {
    const token = await signRuntimeToken(hybrid.claims, hybridKey());
    assert.equal(token, hybridToken);
    assert.equal(token.split('.').length, 4);
    assert.equal(Buffer.from(token.split('.')[0]!, 'base64url').toString(), hybrid.headerText);
  });

  it('publishes the vector key set byte for byte', () => {
    const v = jwksFile.vectors[0]!;
    const keys = v.keys.map((k) => {
      const pub = k.mldsaSeedHex
        ? hybridKeyPair(seedFromHex(k.ed25519SeedHex), seedFromHex(k.mldsaSeedHex)).publicKey
        : ed25519KeyPair(seedFromHex(k.ed25519SeedHex)).publicKey;
      const jwk = publishedJwk(pub, k.status);
      assert.equal(jwk.kid, k.kid);
      return jwk;
    });
    assert.equal(canonicalize({ keys }), v.jwksText);
  });

  for (const c of jwksFile.rejects) {
    it(`refuses the key set: ${c.name}`, () => assert.throws(() => parseJwks(c.jwksText), { code: c.error }));
  }

  it('verifies both vectors', async () => {
    const p = await verifyRuntimeToken(plainToken, options());
    assert.deepEqual(p.claims, plain.claims);
    assert.equal(p.hybrid, false);
    assert.equal(p.kid, plain.kid);
    const h = await verifyRuntimeToken(hybridToken, options());
    assert.deepEqual(h.claims, hybrid.claims);
    assert.equal(h.hybrid, true);
    assert.equal(h.scopes.length, 2);
  });

  for (const c of tokenFile.rejects) {
    it(`refuses: ${c.name} (${c.error})`, () =>
      rejectsWith(
        verifyRuntimeToken(
          c.token,
          options(
            { ...(c.issuer ? { issuer: c.issuer } : {}), ...(c.audience ? { audience: c.audience } : {}) },
            c.verifyAtMs ?? AT,
          ),
        ),
        c.error,
      ));
  }
});

describe('runtime tokens: interoperability with a plain JOSE verifier', () => {
  const localSet = () => createLocalJWKSet(JSON.parse(jwksText));

  it('a stock jose verifier accepts the plain token', async () => {
    const r = await jwtVerify(plainToken, localSet(), {
      algorithms: ['EdDSA'],
      typ: 'outpost-rt+jwt',
      issuer: tokenFile.issuer,
      audience: tokenFile.audience,
      currentDate: new Date(AT),
    });
    assert.equal(r.payload.sub, plain.claims.sub);
  });

  it('a stock jose verifier refuses the hybrid token, whole or stripped of its ML-DSA-65 half', async () => {
    const [h, p, s] = hybridToken.split('.');
    for (const t of [hybridToken, `${h}.${p}.${s}`]) {
      await assert.rejects(
        jwtVerify(t, localSet(), { algorithms: ['EdDSA'], currentDate: new Date(AT) }),
        (e: Error & { code?: string }) => e.code === 'ERR_JOSE_NOT_SUPPORTED' || e.code === 'ERR_JWS_INVALID',
      );
    }
  });
});

describe('runtime tokens: hybrid stripping attacks', () => {
  it('an attacker holding only the Ed25519 half cannot sign under the hybrid kid', async () => {
    const forged = await signRuntimeToken(hybrid.claims, {
      kid: hybrid.kid,
      ed25519Seed: seedFromHex(hybrid.ed25519SeedHex),
    });
    assert.equal(forged.split('.').length, 3);
    await rejectsWith(verifyRuntimeToken(forged, options()), 'TOKEN_HYBRID_REQUIRED');
  });

  it('an ML-DSA-65 signature moved from another token does not verify', async () => {
    const other = await signRuntimeToken({ ...hybrid.claims, jti: newJti() }, hybridKey());
    const [h, p, s] = hybridToken.split('.');
    const spliced = `${h}.${p}.${s}.${other.split('.')[3]}`;
    await rejectsWith(verifyRuntimeToken(spliced, options()), 'TOKEN_BAD_SIGNATURE');
  });

  it('an Ed25519 signature moved from another token does not verify', async () => {
    const other = await signRuntimeToken({ ...hybrid.claims, jti: newJti() }, hybridKey());
    const [h, p, , q] = hybridToken.split('.');
    const spliced = `${h}.${p}.${other.split('.')[2]}.${q}`;
    await rejectsWith(verifyRuntimeToken(spliced, options()), 'TOKEN_BAD_SIGNATURE');
  });

  it('requireHybrid refuses a plain token under a plain key', async () => {
    await rejectsWith(verifyRuntimeToken(plainToken, options({ requireHybrid: true })), 'TOKEN_HYBRID_REQUIRED');
  });

  it('a hybrid header under a key without an ML-DSA-65 half is refused', async () => {
    // Signed by the plain key but declaring pq: the verifier has nothing to check the second half with.
    const edOnly = { kid: plain.kid, ed25519Seed: seedFromHex(plain.ed25519SeedHex), mldsaSeed: new Uint8Array(32) };
    const t = await signRuntimeToken(plain.claims, edOnly);
    await rejectsWith(verifyRuntimeToken(t, options()), 'TOKEN_BAD_HEADER');
  });

  it('weak-key forgery: a published key of small order verifies no token', async () => {
    // An identity-point key accepts (R = identity, S = 0) over any signing input; such a key must verify nothing.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const weak = publishedJwk(identity, 'active', 'weak-key');
    const set = parseJwks(JSON.stringify({ keys: [weak] }));
    const header = toBase64Url(canonicalBytes({ alg: 'EdDSA', kid: 'weak-key', typ: 'outpost-rt+jwt' }));
    const payload = toBase64Url(canonicalBytes(plain.claims));
    const forged = `${header}.${payload}.${toBase64Url(concatBytes(identity, new Uint8Array(32)))}`;
    await rejectsWith(verifyRuntimeToken(forged, options({ jwks: set })), 'TOKEN_BAD_SIGNATURE');
  });

  it('pq without crit (or crit without pq) is refused', async () => {
    const [, p, s, q] = hybridToken.split('.');
    const noCrit = toBase64Url(
      canonicalBytes({ alg: 'EdDSA', kid: hybrid.kid, pq: 'ML-DSA-65', typ: 'outpost-rt+jwt' }),
    );
    await rejectsWith(verifyRuntimeToken(`${noCrit}.${p}.${s}.${q}`, options()), 'TOKEN_BAD_HEADER');
  });
});

describe('runtime tokens: claims and time', () => {
  const seed = seedFromHex(plain.ed25519SeedHex);
  const sign = (claims: RuntimeClaims) => signRuntimeToken(claims, { kid: plain.kid, ed25519Seed: seed });
  const base = plain.claims;

  it('refuses to sign invalid claims', async () => {
    const other = tenantIdFromDidWeb('did:web:other.example');
    const bad: [string, RuntimeClaims][] = [
      ['machine role without dev', { ...base, dev: undefined }],
      ['dev not equal to sub', { ...base, sub: 'someone' }],
      ['scope of another tenant', { ...base, scope: `${other}/*/*:read` }],
      ['nbf before iat', { ...base, nbf: base.iat - 1 }],
      ['exp not after nbf', { ...base, exp: base.nbf }],
      ['unknown role', { ...base, role: 'root' as never }],
      ['malformed scope', { ...base, scope: 'everything' }],
      ['duplicate scope', { ...base, scope: `${base.scope} ${base.scope}` }],
      ['short jti', { ...base, jti: 'abc' }],
      ['extra claim', { ...base, admin: true } as never],
    ];
    for (const [name, claims] of bad) {
      await rejectsWith(sign(claims), 'TOKEN_BAD_CLAIMS').catch((e) => assert.fail(`${name}: ${e}`));
    }
  });

  it('applies the leeway at both ends, to the second', async () => {
    const t = await sign(base);
    const at = (s: number) => options({}, s * 1000);
    await verifyRuntimeToken(t, at(base.exp + 59));
    await rejectsWith(verifyRuntimeToken(t, at(base.exp + 60)), 'TOKEN_EXPIRED');
    await verifyRuntimeToken(t, at(base.nbf - 60));
    await rejectsWith(verifyRuntimeToken(t, at(base.nbf - 61)), 'TOKEN_NOT_YET_VALID');
    await rejectsWith(verifyRuntimeToken(t, options({ leewayS: 0 }, base.exp * 1000)), 'TOKEN_EXPIRED');
    await assert.rejects(verifyRuntimeToken(t, options({ leewayS: 301 })), RangeError);
  });

  it('refuses lifetimes above the limit', async () => {
    const t = await sign({ ...base, exp: base.iat + 7200 });
    await rejectsWith(verifyRuntimeToken(t, options({ maxLifetimeS: 3600 })), 'TOKEN_LIFETIME_TOO_LONG');
  });

  it('checks the tenant when asked', async () => {
    const t = await sign(base);
    await verifyRuntimeToken(t, options({ tid: base.tid }));
    await rejectsWith(
      verifyRuntimeToken(t, options({ tid: tenantIdFromDidWeb('did:web:other.example') })),
      'TOKEN_WRONG_TENANT',
    );
  });

  it('refuses retired and unknown keys', async () => {
    const retired: JwkSet = { keys: jwks.keys.map((k) => ({ ...k, status: 'retired' as const })) };
    await rejectsWith(verifyRuntimeToken(plainToken, options({ jwks: retired })), 'TOKEN_KEY_RETIRED');
    await rejectsWith(verifyRuntimeToken(plainToken, options({ jwks: { keys: [] } })), 'TOKEN_UNKNOWN_KEY');
  });

  it('refuses tokens over maxTokenBytes', () => {
    assert.throws(() => inspectRuntimeToken(hybridToken, 1000), { code: 'TOKEN_TOO_LARGE' });
  });

  it('round-trips arbitrary valid claims', async () => {
    const devicePub = ed25519KeyPair(seedFromHex('11'.repeat(32))).publicKey;
    const did = didKeyFromEd25519(devicePub);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          role: fc.constantFrom('viewer', 'operator', 'actuator', 'approver', 'admin', 'device', 'gateway' as const),
          tools: fc.uniqueArray(fc.constantFrom('*', 'valve.open', 'valve.*', 'pump.start', 'soil.read'), {
            maxLength: 4,
          }),
          action: fc.constantFrom('call', 'read', 'approve', 'admin' as const),
          lifetime: fc.integer({ min: 1, max: 86_390 }),
          skew: fc.integer({ min: 0, max: 10 }),
        }),
        async ({ role, tools, action, lifetime, skew }) => {
          const machine = role === 'device' || role === 'gateway';
          const claims: RuntimeClaims = {
            ...base,
            role,
            sub: machine ? did : 'operator:x',
            dev: machine ? did : undefined,
            scope: tools.map((t) => `${base.tid}/*/${t}:${action}`).join(' '),
            nbf: base.iat + skew,
            exp: base.iat + skew + lifetime,
            jti: newJti(),
          };
          if (!machine) delete claims.dev;
          const t = await sign(claims);
          const r = await verifyRuntimeToken(t, options({}, (base.iat + skew) * 1000));
          assert.deepEqual(r.claims, claims);
          assert.equal(r.scopes.length, tools.length);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('JWK Sets', () => {
  it('decodeJwks refuses a set that lists one key twice', () => {
    const value = JSON.parse(jwksText);
    assert.throws(() => decodeJwks({ keys: [value.keys[0], value.keys[0]] }), { code: 'JWKS_MALFORMED' });
  });
});
