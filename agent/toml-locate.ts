// Maps a path into parsed TOML data (as zod reports it: ['tools', 0, 'timeout_ms']) back to the line and
// column of the key or table header that defined it, so config errors point at the text the operator wrote.
// A light scanner, not a parser: smol-toml has already accepted the text, so only keys and headers matter.

export type DataPath = readonly (string | number)[];

export interface TomlPosition {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column of the key or header. */
  readonly column: number;
}

interface Entry {
  readonly path: DataPath;
  readonly position: TomlPosition;
}

const BARE = /^[A-Za-z0-9_-]+/;

/** Parses a dotted key at the start of `s`; returns its parts and the length consumed, or undefined. */
function parseKey(s: string): { parts: string[]; length: number } | undefined {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    while (s[i] === ' ' || s[i] === '\t') i++;
    const rest = s.slice(i);
    if (rest.startsWith('"')) {
      const m = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
      if (!m) return undefined;
      parts.push(unescapeBasic(m[1]!));
      i += m[0].length;
    } else if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) return undefined;
      parts.push(rest.slice(1, end));
      i += end + 1;
    } else {
      const m = BARE.exec(rest);
      if (!m) return undefined;
      parts.push(m[0]);
      i += m[0].length;
    }
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] !== '.') return { parts, length: i };
    i++;
  }
}

function unescapeBasic(s: string): string {
  try {
    return JSON.parse(`"${s}"`) as string;
  } catch {
    // An escape JSON does not know (\e, \UXXXXXXXX): the raw text is a good enough name for locating.
    return s;
  }
}

/** Counts how many times a triple-quote delimiter opens or closes on a line (outside single-line strings). */
function toggleMultiline(line: string, inside: '"""' | "'''" | undefined): '"""' | "'''" | undefined {
  let state = inside;
  let i = 0;
  while (i < line.length) {
    if (state) {
      const end = line.indexOf(state, i);
      if (end < 0) return state;
      i = end + 3;
      state = undefined;
      continue;
    }
    const c = line[i];
    if (c === '#') return undefined;
    if (line.startsWith('"""', i) || line.startsWith("'''", i)) {
      state = line.slice(i, i + 3) as '"""' | "'''";
      i += 3;
      continue;
    }
    if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(line.slice(i));
      i += m ? m[0].length : 1;
      continue;
    }
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      i = end < 0 ? line.length : end + 1;
      continue;
    }
    i++;
  }
  return state;
}

/** Every key and table header in `text` with its data path and position. */
export function scanTomlEntries(text: string): Entry[] {
  const entries: Entry[] = [];
  const arrayCounts = new Map<string, number>();
  let table: DataPath = [];
  let multiline: '"""' | "'''" | undefined;
  // Lines inside a multi-line array value hold no keys; track bracket depth of values.
  let valueDepth = 0;
  const lines = text.split(/\r?\n/);

  const withIndices = (parts: readonly string[]): (string | number)[] => {
    const out: (string | number)[] = [];
    for (const p of parts) {
      out.push(p);
      const n = arrayCounts.get(JSON.stringify(out));
      if (n !== undefined) out.push(n - 1);
    }
    return out;
  };

  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    if (multiline) {
      multiline = toggleMultiline(raw, multiline);
      return;
    }
    if (valueDepth > 0) {
      valueDepth = Math.max(0, valueDepth + bracketDelta(raw));
      multiline = toggleMultiline(raw, undefined);
      return;
    }
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trimStart();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('[[')) {
      const key = parseKey(line.slice(2));
      if (!key) return;
      const prefix = withIndices(key.parts.slice(0, -1));
      const full = [...prefix, key.parts[key.parts.length - 1]!];
      const id = JSON.stringify(full);
      const n = (arrayCounts.get(id) ?? 0) + 1;
      arrayCounts.set(id, n);
      table = [...full, n - 1];
      entries.push({ path: table, position: { line: lineNo, column: indent + 1 } });
      return;
    }
    if (line.startsWith('[')) {
      const key = parseKey(line.slice(1));
      if (!key) return;
      table = withIndices(key.parts);
      entries.push({ path: table, position: { line: lineNo, column: indent + 1 } });
      return;
    }
    const key = parseKey(line);
    if (!key || line[key.length] !== '=') return;
    entries.push({ path: [...table, ...key.parts], position: { line: lineNo, column: indent + 1 } });
    const value = line.slice(key.length + 1);
    multiline = toggleMultiline(value, undefined);
    if (!multiline) valueDepth = Math.max(0, bracketDelta(value));
  });
  return entries;
}

/** Net count of `[`/`{` minus `]`/`}` outside strings and comments. */
function bracketDelta(s: string): number {
  let depth = 0;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '#') break;
    if (c === '"' || c === "'") {
      const re = c === '"' ? /^"(?:[^"\\]|\\.)*"/ : /^'[^']*'/;
      const m = re.exec(s.slice(i));
      i += m ? m[0].length : s.length;
      continue;
    }
    if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    i++;
  }
  return depth;
}

function isPrefix(prefix: DataPath, path: DataPath): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => String(p) === String(path[i]));
}

/**
 * The position of the key or header that defines the longest prefix of `path` (so a missing key points at
 * its table). Undefined when nothing matches (an error about the document as a whole).
 */
export function locateTomlPath(
  text: string,
  path: DataPath,
  entries = scanTomlEntries(text),
): TomlPosition | undefined {
  let best: Entry | undefined;
  for (const e of entries) {
    if (isPrefix(e.path, path) && (!best || e.path.length > best.path.length)) best = e;
  }
  return best?.position;
}
