// Structured logs: one line per event, pure formatting; the caller supplies the sink.
// Under journald each line starts with the syslog priority (<N>) so `journalctl -p` works.

import type { Clock } from './clock.ts';

export type LogLevel = 'debug' | 'info' | 'notice' | 'warning' | 'error' | 'crit';
export type LogFormat = 'journald' | 'logfmt' | 'json';
export type LogFields = Readonly<Record<string, unknown>>;

/** syslog priorities (RFC 5424 §6.2.1), as journald reads them from a `<N>` prefix. */
export const SYSLOG_PRIORITY: Readonly<Record<LogLevel, number>> = Object.freeze({
  crit: 2,
  error: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
});

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  notice(event: string, fields?: LogFields): void;
  warning(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  crit(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  sink: (line: string) => void;
  level?: LogLevel;
  format?: LogFormat;
  clock?: Clock;
  fields?: LogFields;
}

// Field names that may carry secrets are never printed, whatever the caller passes, at any depth.
const SECRET_KEY =
  /(token|secret|password|passphrase|privatekey|private_key|apikey|api_key|seed|credential|authorization|cookie)$/i;
/** Nesting printed in a field value; deeper parts become "[…]". */
const MAX_FIELD_DEPTH = 8;

/** Renders one field value for logfmt: bare when safe, else JSON-quoted. */
function logfmtValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Error) return JSON.stringify(`${value.name}: ${value.message}`);
  const text = typeof value === 'string' ? value : safeJson(value);
  return /^[A-Za-z0-9_./:@+-]+$/.test(text) ? text : JSON.stringify(text);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'null';
  } catch {
    // Cyclic or otherwise unserialisable values still produce a line rather than a crash.
    return '[unserialisable]';
  }
}

/**
 * A copy of `v` safe to print: secret-named members redacted at every depth, byte arrays shown by length only (keys
 * and nonces are bytes), errors by name, message and code, cycles and excess depth cut.
 */
function redactValue(v: unknown, depth: number, path: readonly object[]): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v)) return `[${v.byteLength} bytes]`;
  if (v instanceof ArrayBuffer) return `[${v.byteLength} bytes]`;
  if (v instanceof Error) return { name: v.name, message: v.message, code: (v as { code?: unknown }).code };
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  if (path.includes(v)) return '[cycle]';
  if (depth >= MAX_FIELD_DEPTH) return '[…]';
  const inner = [...path, v];
  if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1, inner));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) continue;
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactValue(x, depth + 1, inner);
  }
  return out;
}

function redact(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactValue(v, 0, []);
  }
  return out;
}

/** Formats one event as a single line (no trailing newline) in the given format. */
export function formatLogLine(
  format: LogFormat,
  level: LogLevel,
  event: string,
  fields: LogFields,
  timeMs: number,
): string {
  const safe = redact(fields);
  const oneLine = event.replace(/[\r\n]+/g, ' ');
  if (format === 'json') {
    return safeJson({ ts: new Date(timeMs).toISOString(), level, event: oneLine, ...safe });
  }
  const pairs = Object.entries(safe)
    .map(([k, v]) => `${k}=${logfmtValue(v).replace(/[\r\n]+/g, ' ')}`)
    .join(' ');
  const body = pairs.length > 0 ? `${oneLine} ${pairs}` : oneLine;
  if (format === 'journald') return `<${SYSLOG_PRIORITY[level]}>${body}`;
  return `${new Date(timeMs).toISOString()} ${level.padEnd(7)} ${body}`;
}

/** Creates a logger writing one formatted line per event to `sink`. */
export function createLogger(options: LoggerOptions): Logger {
  const threshold = SYSLOG_PRIORITY[options.level ?? 'info'];
  const format = options.format ?? 'logfmt';
  const now = options.clock ? () => options.clock!.nowMs() : () => Date.now();
  const base = options.fields ?? {};
  const emit = (level: LogLevel, event: string, fields?: LogFields) => {
    if (SYSLOG_PRIORITY[level] > threshold) return;
    options.sink(formatLogLine(format, level, event, { ...base, ...fields }, now()));
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    notice: (e, f) => emit('notice', e, f),
    warning: (e, f) => emit('warning', e, f),
    error: (e, f) => emit('error', e, f),
    crit: (e, f) => emit('crit', e, f),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything; for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({ sink: () => {}, level: 'crit' });

/** A logger that records lines in memory; for tests that assert on logs. */
export function createMemoryLogger(level: LogLevel = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ sink: (l) => lines.push(l), level, format: 'json' }), lines };
}
