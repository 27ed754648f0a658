// A local issuer and approvers for tests and off-grid sites: creates the trust bundle files, mints
// runtime tokens and quorum tokens. In a real deployment the control plane issues tokens and each
// approver signs with a key only they hold; here the keys sit side by side in one directory, 0600,
// for whoever runs the test or the site. Key files are written and read by the caller's key store.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toBase64Url } from '../protocol/bytes.ts';
import type { Clock } from '../protocol/clock.ts';
import { publishedJwk } from '../protocol/jwks.ts';
import {
  type ApprovalRequest,
  approverPublicKey,
  argsHash,
  MIN_PHYSICAL_K,
  QUORUM_VERSION,
  type QuorumPolicy,
  quorumTokenToText,
  signApproval,
} from '../protocol/quorum.ts';
import type { Role } from '../protocol/roles.ts';
import { formatScope } from '../protocol/scopes.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { newJti, signRuntimeToken, tenantIdFromDidWeb } from '../protocol/tokens.ts';
import { writeFileAtomic } from '../store/atomic-file.ts';
import { loadOrCreateKeyFile } from '../store/key-file.ts';
import { AgentError } from './errors.ts';

export const DEV_ISSUER = 'urn:outpost:dev-issuer';
export const DEFAULT_AUDIENCE = 'outpost-device';
export const DEV_FILES = Object.freeze({
  issuerKey: 'issuer.key',
  approversDir: 'approvers',
  jwks: 'jwks.json',
  policy: 'approval-policy.json',
});

/** How the dev tools reach 0600 key files and plain files (fileDevKeyStore: store/key-file.ts and store/atomic-file.ts). */
export interface DevKeyStore {
  writeKey(path: string, seed: Uint8Array): void;
  readKey(path: string): Uint8Array;
  writeFile(path: string, text: string): void;
  readFile(path: string): string;
  makeDir(path: string): void;
}

/** Key files through store/key-file.ts (0600, atomic, never clobbered); other files written atomically too. */
export function fileDevKeyStore(): DevKeyStore {
  return {
    writeKey(path, seed) {
      if (!writeFileAtomic(path, seed, { mode: 0o600, overwrite: false })) {
        throw new AgentError('CONFIG_INVALID', `${path} already exists; choose an empty directory`);
      }
    },
    readKey: (path) => loadOrCreateKeyFile(path, { create: false }).seed,
    writeFile: (path, text) => {
      writeFileAtomic(path, text, { mode: 0o644 });
    },
    readFile: (path) => {
      try {
        return readFileSync(path, 'utf8');
      } catch (e) {
        throw new AgentError('CONFIG_NOT_FOUND', `cannot read ${path} (run \`outpost dev trust init\` first)`, {
          cause: e,
        });
      }
    },
    makeDir: (path) => {
      mkdirSync(path, { recursive: true, mode: 0o700 });
    },
  };
}

export interface DevTrustInit {
  readonly dir: string;
  readonly tenantId: string;
  readonly tenantDid: string;
  readonly issuer: string;
  readonly kid: string;
  readonly approvers: readonly string[];
  readonly k: number;
}

/**
 * Creates an issuer key, `approvers.length` approver keys, jwks.json and approval-policy.json (physical
 * actuation needs `k` of them) under `dir`. Refuses a directory that already holds an issuer key.
 */
export function initDevTrust(
  keys: DevKeyStore,
  options: { dir: string; approvers: readonly string[]; k: number; tenantDid?: string },
): DevTrustInit {
  const { dir, approvers, k } = options;
  if (approvers.length === 0 || new Set(approvers).size !== approvers.length) {
    throw new AgentError('CONFIG_INVALID', 'approver names must be distinct and at least one');
  }
  if (!(k >= MIN_PHYSICAL_K && k <= approvers.length)) {
    throw new AgentError('CONFIG_INVALID', `k must be between ${MIN_PHYSICAL_K} and the number of approvers`);
  }
  const tenantDid = options.tenantDid ?? `did:web:outpost.test:dev-${randomBytes(6).toString('hex')}`;
  const tenantId = tenantIdFromDidWeb(tenantDid);
  keys.makeDir(dir);
  keys.makeDir(join(dir, DEV_FILES.approversDir));
  const issuerSeed = randomBytes(32);
  const issuerKey = ed25519KeyPair(issuerSeed);
  const jwk = publishedJwk(issuerKey.publicKey, 'active');
  const members = approvers.map((id) => {
    const seed = randomBytes(32);
    keys.writeKey(join(dir, DEV_FILES.approversDir, `${id}.key`), seed);
    return { id, publicKey: approverPublicKey(seed) };
  });
  const policy: QuorumPolicy = {
    v: QUORUM_VERSION,
    tid: tenantId,
    approvers: members,
    rules: [{ safetyClass: 'physical_actuation', k }],
  };
  keys.writeKey(join(dir, DEV_FILES.issuerKey), issuerSeed);
  keys.writeFile(join(dir, DEV_FILES.jwks), `${JSON.stringify({ keys: [jwk] }, null, 2)}\n`);
  keys.writeFile(join(dir, DEV_FILES.policy), `${JSON.stringify(policy, null, 2)}\n`);
  return { dir, tenantId, tenantDid, issuer: DEV_ISSUER, kid: jwk.kid, approvers, k };
}

function readPolicy(keys: DevKeyStore, dir: string): QuorumPolicy {
  return JSON.parse(keys.readFile(join(dir, DEV_FILES.policy))) as QuorumPolicy;
}

export interface DevTokenOptions {
  readonly dir: string;
  /** The device the token is for (its did:key), or '*' for every device of the tenant. */
  readonly device: string;
  readonly role: Role;
  /** Tool patterns granted (`greenhouse.fan.set`, `greenhouse.*`, `*`). */
  readonly tools: readonly string[];
  readonly ttlS: number;
  readonly subject: string;
  readonly audience: string;
  readonly clock: Clock;
}

/** Mints a runtime token signed by the dev issuer. Single use on the device (its jti is spent by the call). */
export async function mintDevToken(keys: DevKeyStore, o: DevTokenOptions): Promise<string> {
  const policy = readPolicy(keys, o.dir);
  const seed = keys.readKey(join(o.dir, DEV_FILES.issuerKey));
  const jwk = publishedJwk(ed25519KeyPair(seed).publicKey, 'active');
  const nowS = Math.floor(o.clock.nowMs() / 1000);
  const scope = o.tools
    .map((tool) => formatScope({ tenant: policy.tid, device: o.device, tool, action: 'call' }))
    .join(' ');
  return signRuntimeToken(
    {
      iss: DEV_ISSUER,
      aud: o.audience,
      sub: o.subject,
      tid: policy.tid,
      ...(o.device !== '*' ? { dev: o.device } : {}),
      role: o.role,
      scope,
      iat: nowS,
      nbf: nowS,
      exp: nowS + o.ttlS,
      jti: newJti(),
    },
    { kid: jwk.kid, ed25519Seed: seed },
  );
}

export interface DevApproveOptions {
  readonly dir: string;
  readonly device: string;
  readonly tool: string;
  /** The exact arguments of the call being approved (their canonical hash is signed). */
  readonly args: unknown;
  /** Approvers who sign; default the first k of the policy. */
  readonly approvers?: readonly string[];
  readonly ttlS: number;
  readonly clock: Clock;
}

/** A quorum token (base64url text) approving one exact call, signed by each named approver's key. */
export function devApprove(keys: DevKeyStore, o: DevApproveOptions): { token: string; request: ApprovalRequest } {
  const policy = readPolicy(keys, o.dir);
  const k = policy.rules.reduce((m, r) => Math.max(m, r.k), MIN_PHYSICAL_K);
  const who = o.approvers ?? policy.approvers.slice(0, k).map((a) => a.id);
  const request: ApprovalRequest = {
    v: QUORUM_VERSION,
    tid: policy.tid,
    requestId: toBase64Url(randomBytes(16)),
    device: o.device,
    tool: o.tool,
    argsHash: argsHash(o.args),
    nonce: toBase64Url(randomBytes(16)),
    expMs: o.clock.nowMs() + o.ttlS * 1000,
  };
  const approvals = who.map((id) =>
    signApproval(request, id, keys.readKey(join(o.dir, DEV_FILES.approversDir, `${id}.key`))),
  );
  return { token: quorumTokenToText({ request, approvals }), request };
}
