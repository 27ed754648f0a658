// Loads the normative test vectors of docs/protocol/vectors/<contract>/ for the protocol tests.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const VECTORS = resolve(import.meta.dirname, '../../docs/protocol/vectors');

/** Parsed JSON of docs/protocol/vectors/<contract>/<file>. */
export function vectorJson<T = Record<string, unknown>>(contract: string, file: string): T {
  return JSON.parse(readFileSync(resolve(VECTORS, contract, file), 'utf8')) as T;
}

/** Exact bytes of docs/protocol/vectors/<contract>/<file>. */
export function vectorBytes(contract: string, file: string): Uint8Array {
  return new Uint8Array(readFileSync(resolve(VECTORS, contract, file)));
}

/** Exact text (UTF-8) of docs/protocol/vectors/<contract>/<file>. */
export function vectorText(contract: string, file: string): string {
  return readFileSync(resolve(VECTORS, contract, file), 'utf8');
}

export function seedFromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
