// Byte encodings used on the wire: base64url (no padding), hex, base58btc (did:key), UTF-8.

import { ProtocolError } from './errors.ts';

const B64URL = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Decodes unpadded base64url; throws BAD_ENCODING on any other alphabet, padding or non-canonical tail. */
export function fromBase64Url(text: string, what = 'base64url value'): Uint8Array {
  if (typeof text !== 'string' || !B64URL.test(text) || text.length % 4 === 1) {
    throw new ProtocolError('BAD_ENCODING', `${what} is not unpadded base64url`);
  }
  const out = new Uint8Array(Buffer.from(text, 'base64url'));
  // Reject non-canonical encodings (stray low bits in the last character) so each value has one spelling.
  if (toBase64Url(out) !== text) throw new ProtocolError('BAD_ENCODING', `${what} is not canonical base64url`);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(text: string, what = 'hex value'): Uint8Array {
  if (typeof text !== 'string' || !/^([0-9a-f]{2})*$/i.test(text)) {
    throw new ProtocolError('BAD_ENCODING', `${what} is not hex`);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const B58_INDEX = new Map([...B58].map((c, i) => [c, i]));

/** base58btc (Bitcoin alphabet), as used by multibase 'z' in did:key. */
export function toBase58btc(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  return '1'.repeat(zeros) + out;
}

export function fromBase58btc(text: string, what = 'base58btc value'): Uint8Array {
  if (typeof text !== 'string' || text.length > 256) throw new ProtocolError('BAD_ENCODING', `${what} is too long`);
  let zeros = 0;
  while (zeros < text.length && text[zeros] === '1') zeros++;
  let n = 0n;
  for (const c of text) {
    const v = B58_INDEX.get(c);
    if (v === undefined) throw new ProtocolError('BAD_ENCODING', `${what} has a character outside base58btc`);
    n = n * 58n + BigInt(v);
  }
  const body: number[] = [];
  while (n > 0n) {
    body.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  return new Uint8Array([...new Array<number>(zeros).fill(0), ...body]);
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, throwing BAD_ENCODING on invalid sequences instead of substituting U+FFFD. */
export function fromUtf8(bytes: Uint8Array, what = 'text'): string {
  try {
    return strictDecoder.decode(bytes);
  } catch (cause) {
    throw new ProtocolError('BAD_ENCODING', `${what} is not valid UTF-8`, { cause });
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Equality of public bytes. Returns at the first difference: never use it for MACs, tags or secrets (timingSafeEqual). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
