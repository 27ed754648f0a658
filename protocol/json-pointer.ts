// JSON Pointer (RFC 6901): how every protocol error locates the offending part of a JSON document,
// and how a manifest's undo mapping names a value inside a call's arguments or result.

import { ProtocolError } from './errors.ts';

export type JsonPath = readonly (string | number)[];

/** Longest pointer accepted from outside, in characters. */
export const MAX_JSON_POINTER_LENGTH = 256;

/** RFC 6901 §3 text of a path: '' for the whole document, '/a/0/b~1c' for ['a', 0, 'b/c']. */
export function formatJsonPointer(path: JsonPath): string {
  return path.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/**
 * Reference tokens of a pointer (RFC 6901 §3-4). Throws JSON_POINTER_MALFORMED for text that does not start with
 * '/', holds a '~' not followed by 0 or 1, or is longer than MAX_JSON_POINTER_LENGTH.
 */
export function parseJsonPointer(pointer: string): string[] {
  if (typeof pointer !== 'string' || pointer.length > MAX_JSON_POINTER_LENGTH) {
    throw new ProtocolError('JSON_POINTER_MALFORMED', 'JSON Pointer must be a string of at most 256 characters');
  }
  if (pointer === '') return [];
  if (!pointer.startsWith('/') || /~(?![01])/.test(pointer)) {
    throw new ProtocolError('JSON_POINTER_MALFORMED', `malformed JSON Pointer ${JSON.stringify(pointer)}`);
  }
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/**
 * The value `pointer` names inside `doc`, or undefined when nothing is there. Only own members of plain
 * objects and in-range array indices (RFC 6901 §4: no leading zeros, no '-') are followed.
 */
export function resolveJsonPointer(doc: unknown, pointer: string): unknown {
  let at: unknown = doc;
  for (const token of parseJsonPointer(pointer)) {
    if (Array.isArray(at)) {
      if (!/^(0|[1-9][0-9]{0,8})$/.test(token)) return undefined;
      at = at[Number(token)];
    } else if (at !== null && typeof at === 'object') {
      if (!Object.hasOwn(at, token)) return undefined;
      at = (at as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
    if (at === undefined) return undefined;
  }
  return at;
}
