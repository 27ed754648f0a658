// The trust bundle: what an off-grid device needs to judge callers without any upstream — the tenant
// issuer's JWK Set (runtime tokens) and the tenant's approval policy (quorum tokens for physical
// actuation). Read from the files named in [trust]; the upstream link will refresh the same files later.

import { readFileSync } from 'node:fs';
import { parseJson } from '../protocol/canonical-json.ts';
import { isOutpostError } from '../protocol/errors.ts';
import { type JwkSet, parseJwks } from '../protocol/jwks.ts';
import { parseQuorumPolicy, type QuorumPolicy } from '../protocol/quorum.ts';
import { AgentError } from './errors.ts';

/** Largest trust file read (a JWK Set with hybrid keys is tens of kB). */
const MAX_TRUST_FILE_BYTES = 256 * 1024;

export interface TrustBundle {
  /** The tenant id, from the approval policy. */
  readonly tenantId: string;
  readonly issuer: string;
  readonly audience: string;
  readonly jwks: JwkSet;
  readonly policy: QuorumPolicy;
}

export interface TrustFiles {
  readonly jwksFile: string;
  readonly approvalPolicyFile: string;
}

export interface TrustSettings {
  readonly issuer: string;
  readonly audience: string;
  /** When set, the policy's tenant must equal it. */
  readonly tenant_id?: string;
}

function readBounded(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AgentError('CONFIG_TRUST_INVALID', `cannot read trust file ${file}: ${(cause as Error).message}`, {
      cause,
      details: { file },
    });
  }
  if (Buffer.byteLength(text) > MAX_TRUST_FILE_BYTES) {
    throw new AgentError('CONFIG_TRUST_INVALID', `${file} exceeds ${MAX_TRUST_FILE_BYTES} bytes`, {
      details: { file },
    });
  }
  return text;
}

function wrap<T>(file: string, what: string, read: () => T): T {
  try {
    return read();
  } catch (cause) {
    if (!isOutpostError(cause)) throw cause;
    throw new AgentError('CONFIG_TRUST_INVALID', `${file}: not a valid ${what}: ${cause.message}`, {
      cause,
      details: { file, code: cause.code },
    });
  }
}

/** Reads the issuer's JWK Set from `file`. Throws CONFIG_TRUST_INVALID. */
export function readJwksFile(file: string): JwkSet {
  const text = readBounded(file);
  return wrap(file, 'JWK Set', () => parseJwks(text, MAX_TRUST_FILE_BYTES));
}

/** Reads and checks both files. Throws AgentError CONFIG_TRUST_INVALID naming the file at fault. */
export function loadTrustBundle(files: TrustFiles, settings: TrustSettings): TrustBundle {
  const jwks = readJwksFile(files.jwksFile);
  const policyText = readBounded(files.approvalPolicyFile);
  const policy = wrap(files.approvalPolicyFile, 'approval policy', () =>
    parseQuorumPolicy(parseJson(policyText, MAX_TRUST_FILE_BYTES)),
  );
  if (settings.tenant_id !== undefined && settings.tenant_id !== policy.tid) {
    throw new AgentError(
      'CONFIG_TRUST_INVALID',
      `the approval policy is for tenant ${policy.tid}, but [trust] tenant_id is ${settings.tenant_id}`,
      { details: { file: files.approvalPolicyFile } },
    );
  }
  if (!jwks.keys.some((k) => k.status !== 'retired')) {
    throw new AgentError('CONFIG_TRUST_INVALID', `${files.jwksFile} holds no usable key`, {
      details: { file: files.jwksFile },
    });
  }
  return { tenantId: policy.tid, issuer: settings.issuer, audience: settings.audience, jwks, policy };
}
