// The local API's requests as typed values: decodeApiRequest turns (method, target, body text) from the
// unix socket into one member of ApiRequest or throws a typed AgentError. Pure; fuzzed.

import { z } from 'zod';
import { parseJson } from '../../protocol/canonical-json.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { QUALITY_FLAGS, TelemetryValue } from '../../protocol/telemetry.ts';
import { DOTTED_NAME } from '../config.ts';
import { AgentError } from '../errors.ts';

/** Largest runtime token accepted (a hybrid token is about 5.3 kB). */
export const MAX_TOKEN_CHARS = 8192;
/** Largest quorum token accepted (k approvals of a few hundred bytes each). */
export const MAX_QUORUM_CHARS = 64 * 1024;

const ToolName = z.string().max(128).regex(DOTTED_NAME, 'must be a dotted tool name');
const StreamName = z.string().max(128).regex(DOTTED_NAME, 'must be a dotted stream name');
const CallId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8..64 characters of [A-Za-z0-9_-]');
const Token = z.string().min(1).max(MAX_TOKEN_CHARS);
const Quorum = z.string().min(1).max(MAX_QUORUM_CHARS);

/** Authority a caller presents with a call: a runtime token and, for physical_actuation, a quorum token. */
export const CallAuth = z.strictObject({ token: Token.optional(), quorum: Quorum.optional() });
export type CallAuth = z.infer<typeof CallAuth>;

export const ToolCallBody = z.strictObject({
  tool: ToolName,
  args: z.record(z.string(), z.unknown()).default({}),
  /** Chosen by the caller to make retries idempotent in logs; the agent makes one when absent. */
  call_id: CallId.optional(),
  token: Token.optional(),
  quorum: Quorum.optional(),
  /** How the call reached the local API (audit only: every local source has the same rights). */
  via: z.enum(['local_api', 'mcp_stdio']).optional(),
});
export type ToolCallBody = z.infer<typeof ToolCallBody>;

export const UndoBody = z.strictObject({
  call_id: CallId,
  token: Token.optional(),
  quorum: Quorum.optional(),
});
export type UndoBody = z.infer<typeof UndoBody>;

export const IngestRecord = z.strictObject({
  stream: StreamName,
  /** A number, boolean or short string, as the stream's type says (protocol/telemetry.ts). */
  value: TelemetryValue,
  quality: z.array(z.enum(QUALITY_FLAGS)).min(1).max(QUALITY_FLAGS.length).optional(),
  /** When the value was observed (ms since epoch); the agent's clock when absent. */
  ts_ms: z
    .number()
    .int()
    .min(0)
    .max(2 ** 47)
    .optional(),
});
export type IngestRecord = z.infer<typeof IngestRecord>;

export const IngestBody = z.strictObject({ records: z.array(IngestRecord).min(1).max(10_000) });
export type IngestBody = z.infer<typeof IngestBody>;

const TailQuery = z.strictObject({
  stream: StreamName.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  /** Only records with a sequence number above this one. */
  after: z.coerce.number().int().min(0).optional(),
  /** Long poll: wait up to this long for a record newer than `after`. */
  wait_ms: z.coerce.number().int().min(0).max(60_000).default(0),
});

const NoQuery = z.strictObject({});

export type ApiRequest =
  | { kind: 'status' }
  | { kind: 'identity' }
  | { kind: 'manifest' }
  | { kind: 'tools.list' }
  | { kind: 'tools.call'; body: ToolCallBody }
  | { kind: 'tools.undo'; body: UndoBody }
  | { kind: 'telemetry.push'; body: IngestBody }
  | { kind: 'telemetry.tail'; query: z.infer<typeof TailQuery> }
  | { kind: 'queue.stats' }
  | { kind: 'audit.verify' }
  | { kind: 'audit.export' };

type Route = {
  method: 'GET' | 'POST';
  path: string;
  decode(query: Record<string, string>, body: unknown): ApiRequest;
};

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const first = issues[0]!;
  throw new AgentError('REQUEST_MALFORMED', `${what}: ${first.path ? `${first.path}: ` : ''}${first.message}`, {
    details: { issues },
  });
}

function withoutQuery(query: Record<string, string>, then: () => ApiRequest): ApiRequest {
  check(NoQuery, query, 'query');
  return then();
}

function noBody(query: Record<string, string>, kind: ApiRequest['kind']): ApiRequest {
  check(NoQuery, query, 'query');
  return { kind } as ApiRequest;
}

/** The route table: method + path → decoder. Paths are exact; there are no path parameters. */
export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/v1/status', decode: (q) => noBody(q, 'status') },
  { method: 'GET', path: '/v1/identity', decode: (q) => noBody(q, 'identity') },
  { method: 'GET', path: '/v1/manifest', decode: (q) => noBody(q, 'manifest') },
  { method: 'GET', path: '/v1/tools', decode: (q) => noBody(q, 'tools.list') },
  {
    method: 'POST',
    path: '/v1/tools/call',
    decode: (q, b) => withoutQuery(q, () => ({ kind: 'tools.call', body: check(ToolCallBody, b, 'body') })),
  },
  {
    method: 'POST',
    path: '/v1/tools/undo',
    decode: (q, b) => withoutQuery(q, () => ({ kind: 'tools.undo', body: check(UndoBody, b, 'body') })),
  },
  {
    method: 'POST',
    path: '/v1/telemetry',
    decode: (q, b) => withoutQuery(q, () => ({ kind: 'telemetry.push', body: check(IngestBody, b, 'body') })),
  },
  {
    method: 'GET',
    path: '/v1/telemetry',
    decode: (q) => ({ kind: 'telemetry.tail', query: check(TailQuery, q, 'query') }),
  },
  { method: 'GET', path: '/v1/queue', decode: (q) => noBody(q, 'queue.stats') },
  { method: 'POST', path: '/v1/audit/verify', decode: (q) => noBody(q, 'audit.verify') },
  { method: 'GET', path: '/v1/audit', decode: (q) => noBody(q, 'audit.export') },
];

export interface DecodeLimits {
  readonly maxBodyBytes: number;
}

/**
 * Decodes one request. Throws AgentError ROUTE_NOT_FOUND, METHOD_NOT_ALLOWED, REQUEST_TOO_LARGE or
 * REQUEST_MALFORMED (bad target, bad JSON, body or query outside the schema); never anything untyped.
 */
export function decodeApiRequest(method: string, target: string, body: string, limits: DecodeLimits): ApiRequest {
  if (typeof target !== 'string' || !target.startsWith('/') || target.length > 4096) {
    throw new AgentError('REQUEST_MALFORMED', 'request target must be an absolute path');
  }
  let url: URL;
  try {
    url = new URL(target, 'http://agent.invalid');
  } catch (cause) {
    throw new AgentError('REQUEST_MALFORMED', 'request target is not a URL path', { cause });
  }
  const candidates = ROUTES.filter((r) => r.path === url.pathname);
  if (candidates.length === 0) throw new AgentError('ROUTE_NOT_FOUND', `no route ${url.pathname}`);
  const route = candidates.find((r) => r.method === method);
  if (!route) {
    throw new AgentError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`, {
      details: { allow: candidates.map((r) => r.method) },
    });
  }
  const query: Record<string, string> = Object.create(null);
  for (const [k, v] of url.searchParams) {
    if (k in query) throw new AgentError('REQUEST_MALFORMED', `query parameter "${k}" is repeated`);
    query[k] = v;
  }
  let parsed: unknown;
  if (route.method === 'POST') {
    try {
      parsed = parseJson(body, limits.maxBodyBytes);
    } catch (cause) {
      if (isOutpostError(cause, 'JSON_TOO_LARGE')) {
        throw new AgentError('REQUEST_TOO_LARGE', `body exceeds ${limits.maxBodyBytes} bytes`, { cause });
      }
      throw new AgentError('REQUEST_MALFORMED', `body is not JSON: ${(cause as Error).message}`, { cause });
    }
  } else if (body.length > 0) {
    throw new AgentError('REQUEST_MALFORMED', `${method} ${url.pathname} takes no body`);
  }
  return route.decode({ ...query }, parsed);
}
