// Reads the normative test vectors in docs/protocol/vectors/<contract>/ (layout: docs/protocol/README.md).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const VECTORS_DIR = resolve(import.meta.dirname, '../../docs/protocol/vectors');

/** Parses docs/protocol/vectors/<contract>/<file>; the caller states the shape it expects. */
export function readVectors<T>(contract: string, file: string): T {
  return JSON.parse(readFileSync(resolve(VECTORS_DIR, contract, file), 'utf8')) as T;
}

/** Bytes of a lowercase hex string from a vector file (throws on anything else: a broken vector file is a bug). */
export function hexBytes(hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error(`vector field is not lowercase hex: ${hex.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Parsed JSON of docs/protocol/vectors/<contract>/<file>. */
export function vectorJson<T = Record<string, unknown>>(contract: string, file: string): T {
  return JSON.parse(readFileSync(resolve(VECTORS_DIR, contract, file), 'utf8')) as T;
}

/** Exact bytes of docs/protocol/vectors/<contract>/<file>. */
export function vectorBytes(contract: string, file: string): Uint8Array {
  return new Uint8Array(readFileSync(resolve(VECTORS_DIR, contract, file)));
}

/** Exact text (UTF-8) of docs/protocol/vectors/<contract>/<file>. */
export function vectorText(contract: string, file: string): string {
  return readFileSync(resolve(VECTORS_DIR, contract, file), 'utf8');
}

export function seedFromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
