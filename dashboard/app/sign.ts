// An approver's decision signed in the browser (quorum.md §4 and §4.1): the key file (32 raw seed bytes, as
// `outpost approver keygen` writes it) is read here, imported into WebCrypto as a non-extractable Ed25519 key, used
// once and dropped; only the signature leaves the page. Before signing, the arguments shown are checked against the
// hash the request commits to, so the page never signs a call it did not show.

import { canonicalize } from '../../protocol/canonical-json.ts';

export const QUORUM_APPROVAL_CONTEXT = 'outpost/quorum-approval/v1';
export const QUORUM_DENIAL_CONTEXT = 'outpost/quorum-denial/v1';

/** RFC 8410 PKCS#8 wrapping of a raw Ed25519 seed. */
const PKCS8_ED25519_PREFIX = [
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

export type SigningErrorCode = 'KEY_FILE_INVALID' | 'ARGS_MISMATCH' | 'CRYPTO_UNAVAILABLE';

export class SigningError extends Error {
  readonly code: SigningErrorCode;
  constructor(code: SigningErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function base64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** signingInput of canonical-signing.md §4: UTF-8(context) || 0x00 || message. */
export function signingInput(context: string, message: Uint8Array): Uint8Array<ArrayBuffer> {
  const label = new TextEncoder().encode(context);
  const out = new Uint8Array(label.length + 1 + message.length);
  out.set(label, 0);
  out.set(message, label.length + 1);
  return out;
}

/** base64url SHA-256 of the canonical bytes of `args` (quorum.md §3 argsHash). */
export async function argsHashOf(args: unknown): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonicalize(args)));
  return base64Url(new Uint8Array(digest));
}

export interface ApprovalRequestView {
  readonly request: { readonly argsHash: string } & Record<string, unknown>;
  readonly args: unknown;
}

/** The base64url signature of `decision` over the request, with the seed in `keyFile`. */
export async function signDecision(
  view: ApprovalRequestView,
  keyFile: Uint8Array,
  decision: 'approve' | 'deny',
): Promise<string> {
  if (keyFile.length !== 32) {
    throw new SigningError(
      'KEY_FILE_INVALID',
      `an approver key file holds exactly 32 bytes; this one holds ${keyFile.length}`,
    );
  }
  if ((await argsHashOf(view.args)) !== view.request.argsHash) {
    throw new SigningError('ARGS_MISMATCH', 'the arguments shown do not match the request’s hash: refusing to sign');
  }
  if (!crypto?.subtle) throw new SigningError('CRYPTO_UNAVAILABLE', 'this page needs WebCrypto (a secure context)');
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(PKCS8_ED25519_PREFIX, 0);
  pkcs8.set(keyFile, 16);
  try {
    const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    const context = decision === 'approve' ? QUORUM_APPROVAL_CONTEXT : QUORUM_DENIAL_CONTEXT;
    const message = new TextEncoder().encode(canonicalize(view.request));
    const sig = await crypto.subtle.sign({ name: 'Ed25519' }, key, signingInput(context, message));
    return base64Url(new Uint8Array(sig));
  } finally {
    pkcs8.fill(0);
  }
}
