// The client of the local API, used by the CLI and by `outpost mcp`: the only way they reach a running
// agent. Error bodies come back as OutpostErrors with the daemon's code, so exit codes map the same way.

import { request as httpRequest } from 'node:http';
import { OutpostError } from '../../protocol/errors.ts';
import { AgentError } from '../errors.ts';
import type { ErrorBody } from './http-status.ts';

export interface LocalApiClientOptions {
  readonly socketPath: string;
  /** Whole-request timeout; long polls add their wait to it. */
  readonly timeoutMs?: number;
  /** Largest response body accepted. */
  readonly maxResponseBytes?: number;
}

/** An error the daemon reported; `code` is the daemon's stable code. */
export class DaemonError extends OutpostError<string> {
  readonly status: number;
  constructor(status: number, code: string, message: string, details: Record<string, unknown>) {
    super(code, message, { details });
    this.name = 'DaemonError';
    this.status = status;
  }
}

export interface LocalApiClient {
  get<T>(path: string, query?: Readonly<Record<string, string | number | undefined>>): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
  /** GETs a streamed (non-JSON) body, handing each chunk to `write`; errors arrive as for get(). */
  stream(path: string, write: (chunk: string) => void): Promise<void>;
}

function isErrorBody(v: unknown): v is ErrorBody {
  const e = (v as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof e?.code === 'string' && typeof e.message === 'string';
}

export function createLocalApiClient(options: LocalApiClientOptions): LocalApiClient {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;

  function call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    extraMs: number,
    sink?: (chunk: string) => void,
  ): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = httpRequest(
        {
          socketPath: options.socketPath,
          // A fresh connection per request: a pooled one may belong to an agent that has since restarted.
          agent: false,
          method,
          path,
          headers: {
            host: 'outpost-agent',
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
          timeout: timeoutMs + extraMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let total = 0;
          if (sink && res.statusCode === 200) {
            res.setEncoding('utf8');
            res.on('data', (c: string) => sink(c));
            res.on('end', () => resolve(undefined as T));
            res.on('error', (cause) => reject(new AgentError('DAEMON_BAD_RESPONSE', 'response failed', { cause })));
            return;
          }
          res.on('data', (c: Buffer) => {
            total += c.length;
            if (total > maxBytes) {
              req.destroy(new AgentError('DAEMON_BAD_RESPONSE', `response exceeds ${maxBytes} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch (cause) {
              reject(
                new AgentError('DAEMON_BAD_RESPONSE', 'the agent answered with something other than JSON', { cause }),
              );
              return;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed as T);
            else if (isErrorBody(parsed)) {
              reject(new DaemonError(status, parsed.error.code, parsed.error.message, parsed.error.details ?? {}));
            } else reject(new AgentError('DAEMON_BAD_RESPONSE', `the agent answered HTTP ${status}`));
          });
          res.on('error', (cause) => reject(new AgentError('DAEMON_BAD_RESPONSE', 'response failed', { cause })));
        },
      );
      req.on('timeout', () =>
        req.destroy(new AgentError('REQUEST_TIMEOUT', `no answer within ${timeoutMs + extraMs} ms`)),
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof OutpostError) return reject(err);
        if (err.code === 'EACCES' || err.code === 'EPERM') {
          return reject(
            new AgentError('PERMISSION_DENIED', `no permission to use ${options.socketPath} (join the agent's group)`, {
              cause: err,
            }),
          );
        }
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') {
          return reject(
            new AgentError('DAEMON_DOWN', `the agent is not running (no socket at ${options.socketPath})`, {
              cause: err,
              details: { socket: options.socketPath },
            }),
          );
        }
        reject(new AgentError('DAEMON_DOWN', `cannot reach the agent: ${err.message}`, { cause: err }));
      });
      if (payload) req.end(payload);
      else req.end();
    });
  }

  return {
    get(path, query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
      const waitMs = Number(query?.wait_ms ?? 0);
      return call('GET', qs.size > 0 ? `${path}?${qs}` : path, undefined, Number.isFinite(waitMs) ? waitMs : 0);
    },
    post(path, body) {
      return call('POST', path, body, 0);
    },
    stream(path, write) {
      return call<void>('GET', path, undefined, 0, write);
    },
  };
}
