// The local API: HTTP/1.1 with JSON bodies on a unix socket (mode 0660 by default), with body-size limits
// and timeouts. Routes are thin: decode (requests.ts), call one action, encode; errors map in http-status.ts.

import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Logger } from '../../protocol/log.ts';
import { AgentError } from '../errors.ts';
import { errorResponse } from './http-status.ts';
import { type ApiRequest, decodeApiRequest } from './requests.ts';

/** A handler result sent as a stream of text chunks (e.g. NDJSON) instead of one JSON body. */
export class StreamingBody {
  readonly contentType: string;
  readonly chunks: Iterable<string>;
  constructor(contentType: string, chunks: Iterable<string>) {
    this.contentType = contentType;
    this.chunks = chunks;
  }
}

async function sendStream(res: ServerResponse, body: StreamingBody): Promise<void> {
  res.writeHead(200, { 'content-type': body.contentType, 'cache-control': 'no-store' });
  for (const chunk of body.chunks) {
    if (res.destroyed) return;
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

/**
 * What the daemon does for each request kind (implemented by the actions module). `signal` aborts when the
 * client goes away or the server closes; only waits that are safe to cut short (long polls) should heed it.
 */
export type ApiHandler = (request: ApiRequest, signal: AbortSignal) => Promise<unknown>;

export interface LocalApiOptions {
  readonly socketPath: string;
  readonly socketMode: number;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly handle: ApiHandler;
  readonly log: Logger;
}

export interface LocalApiServer {
  listen(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (up to the request timeout), removes the socket. */
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    // After a refused body the connection's framing cannot be trusted: close it.
    ...(status === 413 ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** Bytes of an oversized body read and thrown away so the client sees the 413 instead of a broken pipe. */
const DISCARD_LIMIT_BYTES = 8 * 1024 * 1024;

function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const tooLarge = () =>
      new AgentError('REQUEST_TOO_LARGE', `body exceeds ${maxBytes} bytes`, { details: { maxBytes } });
    const declared = Number(req.headers['content-length'] ?? '0');
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = declared > maxBytes;
    if (failed) reject(tooLarge());
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > DISCARD_LIMIT_BYTES) {
        req.socket.destroy();
        return;
      }
      if (failed) return;
      if (total > maxBytes) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', (cause) => reject(new AgentError('REQUEST_MALFORMED', 'request body failed', { cause })));
  });
}

/** Removes a socket file left by a crashed agent; refuses when another agent answers on it. */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) {
    throw new AgentError('STATE_DIR_UNUSABLE', `${path} exists and is not a socket`, { details: { path } });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new AgentError('ALREADY_RUNNING', `another agent is listening on ${path}`, { details: { path } });
  unlinkSync(path);
}

export function createLocalApiServer(options: LocalApiOptions): LocalApiServer {
  const { log } = options;
  let server: Server | undefined;
  // Aborted on close so long polls return at once; tool calls ignore it and are awaited instead.
  const stopping = new AbortController();

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const method = req.method ?? 'GET';
    try {
      if (method === 'POST') {
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'application/json') {
          throw new AgentError('UNSUPPORTED_MEDIA_TYPE', 'POST bodies must be application/json');
        }
      }
      const body = await readBody(req, options.maxBodyBytes);
      const request = decodeApiRequest(method, req.url ?? '', body, { maxBodyBytes: options.maxBodyBytes });
      const result = await options.handle(request, AbortSignal.any([abort.signal, stopping.signal]));
      if (result instanceof StreamingBody) await sendStream(res, result);
      else send(res, 200, result);
    } catch (err) {
      const { status, body } = errorResponse(err);
      if (status >= 500) log.error('local_api.error', { method, path: req.url?.split('?')[0], err: err as Error });
      send(res, status, body);
    }
  }

  return {
    async listen() {
      await clearStaleSocket(options.socketPath);
      const s = createServer(
        {
          requestTimeout: options.requestTimeoutMs,
          headersTimeout: Math.min(options.requestTimeoutMs, 10_000),
          maxHeaderSize: 16 * 1024,
          keepAliveTimeout: 5_000,
        },
        (req, res) => void onRequest(req, res),
      );
      s.on('clientError', (_err, socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
        else socket.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(options.socketPath, () => {
          s.off('error', reject);
          resolve();
        });
      });
      chmodSync(options.socketPath, options.socketMode);
      server = s;
      log.info('local_api.listening', { socket: options.socketPath, mode: options.socketMode.toString(8) });
    },
    async close() {
      const s = server;
      server = undefined;
      if (!s) return;
      stopping.abort();
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeIdleConnections();
      });
      try {
        unlinkSync(options.socketPath);
      } catch {
        // Already gone (server.close removes it on some platforms): nothing to clean.
      }
    },
  };
}
