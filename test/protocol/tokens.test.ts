import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CompactSign, createLocalJWKSet, jwtVerify } from 'jose';
import { toBase64Url } from '../../protocol/bytes.ts';
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
import { assertDecoderTotal, byteInputs, fuzzCases, jsonTextInputs } from '../support/fuzz.ts';
import { seedFromHex, vectorJson, vectorText } from '../support/protocol-vectors.ts';

interface TokenVector {
  ed25519SeedHex: string;
  mldsaSeedHex?: string;
  kid: string;
  verifyAtMs: number;
  issuer: string;
  audience: string;
  claims: RuntimeClaims;
  header: string;
  token: string;
}

const plain = vectorJson<TokenVector>('tokens', 'runtime-token.json');
const hybrid = vectorJson<TokenVector>('tokens', 'runtime-token-hybrid.json');
const plainToken = vectorText('tokens', plain.token);
const hybridToken = vectorText('tokens', hybrid.token);
const jwks = parseJwks(vectorText('tokens', 'jwks.published.json'));

function options(overrides: Partial<VerifyTokenOptions> = {}, atMs = plain.verifyAtMs): VerifyTokenOptions {
  return { jwks, clock: new FakeClock(atMs), issuer: plain.issuer, audience: plain.audience, ...overrides };
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
    cases: { didWeb: string; tid: string }[];
    invalid: string[];
  }>('tokens', 'tenant-id.json');

  it('derives the namespace as documented', () => {
    assert.equal(uuidV5(UUID_NAMESPACE_URL, v.namespaceName), v.namespace);
    assert.equal(TENANT_NAMESPACE, v.namespace);
  });

  for (const c of v.cases) {
    it(`matches the vector for ${c.didWeb}`, () => assert.equal(tenantIdFromDidWeb(c.didWeb), c.tid));
  }

  for (const bad of v.invalid) {
    it(`refuses ${JSON.stringify(bad)}`, () =>
      assert.throws(() => tenantIdFromDidWeb(bad), { code: 'TENANT_DID_MALFORMED' }));
  }

  it('is total on arbitrary strings', () => {
    const r = assertDecoderTotal(
      fc.oneof(
        fc.string(),
        fc.constantFrom(...v.cases.map((c) => c.didWeb)).map((s) => `${s}x`),
      ),
      tenantIdFromDidWeb,
      { cases: 2000 },
    );
    assert.ok(r.rejected > 0);
  });
});

describe('runtime tokens: vectors', () => {
  it('signs the plain vector byte for byte', async () => {
    const token = await signRuntimeToken(plain.claims, {
      kid: plain.kid,
      ed25519Seed: seedFromHex(plain.ed25519SeedHex),
    });
    assert.equal(token, plainToken);
    assert.equal(Buffer.from(token.split('.')[0]!, 'base64url').toString(), plain.header);
    assert.equal(Buffer.from(token.split('.')[1]!, 'base64url').toString(), canonicalize(plain.claims));
  });

  it('signs the hybrid vector byte for byte', async () => {
    const token = await signRuntimeToken(hybrid.claims, hybridKey());
    assert.equal(token, hybridToken);
    assert.equal(token.split('.').length, 4);
    assert.equal(Buffer.from(token.split('.')[0]!, 'base64url').toString(), hybrid.header);
  });

  it('publishes the vector key set byte for byte', () => {
    const v = vectorJson<{ keys: { ed25519SeedHex: string; mldsaSeedHex?: string; status: 'active' | 'overlap' }[] }>(
      'tokens',
      'jwks.json',
    );
    const keys = v.keys.map((k) =>
      publishedJwk(
        k.mldsaSeedHex
          ? hybridKeyPair(seedFromHex(k.ed25519SeedHex), seedFromHex(k.mldsaSeedHex)).publicKey
          : ed25519KeyPair(seedFromHex(k.ed25519SeedHex)).publicKey,
        k.status,
      ),
    );
    assert.equal(canonicalize({ keys }), vectorText('tokens', 'jwks.published.json'));
  });

  it('verifies both vectors', async () => {
    const p = await verifyRuntimeToken(plainToken, options());
    assert.deepEqual(p.claims, plain.claims);
    assert.equal(p.hybrid, false);
    assert.equal(p.kid, plain.kid);
    const h = await verifyRuntimeToken(hybridToken, options({}, hybrid.verifyAtMs));
    assert.deepEqual(h.claims, hybrid.claims);
    assert.equal(h.hybrid, true);
    assert.equal(h.scopes.length, 2);
  });

  const deny = vectorJson<{
    verifyAtMs: number;
    cases: { name: string; token: string; code: string; verifyAtMs?: number; issuer?: string; audience?: string }[];
  }>('tokens', 'deny.json');
  for (const c of deny.cases) {
    it(`refuses: ${c.name} (${c.code})`, () =>
      rejectsWith(
        verifyRuntimeToken(
          c.token,
          options(
            { ...(c.issuer ? { issuer: c.issuer } : {}), ...(c.audience ? { audience: c.audience } : {}) },
            c.verifyAtMs ?? deny.verifyAtMs,
          ),
        ),
        c.code,
      ));
  }
});

describe('runtime tokens: interoperability with a plain JOSE verifier', () => {
  const localSet = () => createLocalJWKSet(JSON.parse(vectorText('tokens', 'jwks.published.json')));

  it('a stock jose verifier accepts the plain token', async () => {
    const r = await jwtVerify(plainToken, localSet(), {
      algorithms: ['EdDSA'],
      typ: 'outpost-rt+jwt',
      issuer: plain.issuer,
      audience: plain.audience,
      currentDate: new Date(plain.verifyAtMs),
    });
    assert.equal(r.payload.sub, plain.claims.sub);
  });

  it('a stock jose verifier refuses the hybrid token, whole or stripped of its ML-DSA-65 half', async () => {
    const [h, p, s] = hybridToken.split('.');
    for (const t of [hybridToken, `${h}.${p}.${s}`]) {
      await assert.rejects(
        jwtVerify(t, localSet(), { algorithms: ['EdDSA'], currentDate: new Date(hybrid.verifyAtMs) }),
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
    await rejectsWith(verifyRuntimeToken(forged, options({}, hybrid.verifyAtMs)), 'TOKEN_HYBRID_REQUIRED');
  });

  it('an ML-DSA-65 signature moved from another token does not verify', async () => {
    const other = await signRuntimeToken({ ...hybrid.claims, jti: newJti() }, hybridKey());
    const [h, p, s] = hybridToken.split('.');
    const spliced = `${h}.${p}.${s}.${other.split('.')[3]}`;
    await rejectsWith(verifyRuntimeToken(spliced, options({}, hybrid.verifyAtMs)), 'TOKEN_BAD_SIGNATURE');
  });

  it('an Ed25519 signature moved from another token does not verify', async () => {
    const other = await signRuntimeToken({ ...hybrid.claims, jti: newJti() }, hybridKey());
    const [h, p, , q] = hybridToken.split('.');
    const spliced = `${h}.${p}.${other.split('.')[2]}.${q}`;
    await rejectsWith(verifyRuntimeToken(spliced, options({}, hybrid.verifyAtMs)), 'TOKEN_BAD_SIGNATURE');
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

describe('runtime tokens: fuzz', () => {
  it('inspectRuntimeToken is total over mutated tokens and arbitrary text', () => {
    const seeds = [plainToken, hybridToken].map((t) => new Uint8Array(Buffer.from(t)));
    const r = assertDecoderTotal(
      fc.oneof(
        byteInputs(seeds, 256).map((b) => Buffer.from(b).toString('latin1')),
        fc.string({ maxLength: 300 }),
      ),
      (t) => inspectRuntimeToken(t),
    );
    assert.ok(r.accepted > 0 && r.rejected > 0);
  });

  it('verifyRuntimeToken never rejects with anything but a ProtocolError (mutated tokens, signed junk claims)', async () => {
    const privateKey = createPrivateKey({
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        x: jwks.keys[0]!.x,
        d: toBase64Url(seedFromHex(plain.ed25519SeedHex)),
      },
      format: 'jwk',
    });
    const header = { alg: 'EdDSA', kid: plain.kid, typ: 'outpost-rt+jwt' };
    // Junk claims get a valid signature, so the claims decoder itself is what is fuzzed.
    const signedJunk = jsonTextInputs([plain.claims, hybrid.claims]).map((text) => ({ kind: 'claims' as const, text }));
    const mutated = byteInputs([new Uint8Array(Buffer.from(plainToken))], 256).map((b) => ({
      kind: 'token' as const,
      text: Buffer.from(b).toString('latin1'),
    }));
    let accepted = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(signedJunk, mutated), async (input) => {
        const token =
          input.kind === 'token'
            ? input.text
            : await new CompactSign(Buffer.from(input.text)).setProtectedHeader(header).sign(privateKey);
        try {
          await verifyRuntimeToken(token, options());
          accepted++;
        } catch (e) {
          if (!isOutpostError(e)) assert.fail(`untyped rejection: ${e}`);
          rejected++;
        }
      }),
      { numRuns: fuzzCases() },
    );
    assert.ok(accepted > 0 && rejected > 0, `accepted ${accepted}, rejected ${rejected}`);
  });

  it('parseJwks / decodeJwks are total', () => {
    const value = JSON.parse(vectorText('tokens', 'jwks.published.json'));
    const r = assertDecoderTotal(jsonTextInputs([value]), (t) => parseJwks(t));
    assert.ok(r.accepted > 0 && r.rejected > 0);
    assert.throws(() => decodeJwks({ keys: [value.keys[0], value.keys[0]] }), { code: 'JWKS_MALFORMED' });
  });
});
