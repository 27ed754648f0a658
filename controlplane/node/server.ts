// The Node host's network edge: one HTTP (or HTTPS) server on one port carrying the HTTP API, the MCP endpoint and
// the WSS hub (ws, maxPayload set, no compression). Requests become Fetch API Requests for the host-independent
// handler; upgrades are checked (path, tenant, subprotocol) before ws accepts them.

import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { WebSocketServer } from 'ws';
import { WSS_SUBPROTOCOL } from '../../protocol/envelope.ts';
import type { Logger } from '../../protocol/log.ts';
import type { ControlPlane } from '../control-plane.ts';
import { ControlPlaneError } from '../errors.ts';
import type { Scheduler } from '../ports.ts';

/** Timers on Node's event loop. */
export const nodeScheduler: Scheduler = Object.freeze({
  after(ms: number, fn: () => void) {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, 2_147_483_647)));
    return () => clearTimeout(t);
  },
});

export interface NodeServerOptions {
  readonly controlPlane: ControlPlane;
  readonly host: string;
  readonly port: number;
  /** PEM files: with both, the server speaks HTTPS and WSS. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly log: Logger;
  readonly maxPayloadBytes: number;
}

export interface NodeServer {
  /** The address actually bound (port 0 picks one). */
  readonly port: number;
  readonly url: string;
  /** Stops accepting, tells sessions SHUTTING_DOWN, closes every connection. */
  close(): Promise<void>;
}

function remoteAddress(socket: Socket): string {
  return socket.remoteAddress ?? 'unknown';
}

function toRequest(req: IncomingMessage, scheme: string, fallbackHost: string): Request {
  const host = /^[A-Za-z0-9.[\]:-]{1,255}$/.test(req.headers.host ?? '') ? req.headers.host! : fallbackHost;
  const url = new URL(req.url ?? '/', `${scheme}://${host}`);
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    for (const value of Array.isArray(v) ? v : [v]) headers.append(k, value);
  }
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(url, {
    method: req.method ?? 'GET',
    headers,
    ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: 'half' } : {}),
  } as RequestInit);
}

async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  // A long response (the event stream) ends when the client goes away: cancel it so its producer lets go.
  res.once('close', () => void reader.cancel().catch(() => undefined));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once('drain', resolve));
    }
  } finally {
    res.end();
  }
}

/** Starts listening. Throws ControlPlaneError CONFIG_INVALID for unreadable TLS files; rejects on listen errors. */
export async function startNodeServer(o: NodeServerOptions): Promise<NodeServer> {
  const log = o.log.child({ part: 'server' });
  let tlsOptions: { cert: Buffer; key: Buffer } | undefined;
  if (o.tls) {
    try {
      tlsOptions = { cert: readFileSync(o.tls.certFile), key: readFileSync(o.tls.keyFile) };
    } catch (cause) {
      throw new ControlPlaneError('CONFIG_INVALID', `cannot read the TLS files: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
  const scheme = tlsOptions ? 'https' : 'http';
  let fallbackHost = `${o.host}:${o.port}`;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    let request: Request;
    try {
      request = toRequest(req, scheme, fallbackHost);
    } catch {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end('{"error":{"code":"BAD_REQUEST","message":"bad request line"}}');
      return;
    }
    o.controlPlane
      .handleHttp(request, { address: remoteAddress(req.socket) })
      .then((response) => writeResponse(res, response))
      .catch((e) => {
        log.error('http.write_failed', { err: e as Error });
        res.destroy();
      });
  };
  const serverOptions = {
    requestTimeout: 60_000,
    headersTimeout: 15_000,
    maxHeaderSize: 16 * 1024,
    keepAliveTimeout: 5_000,
  };
  const server: Server = tlsOptions
    ? createHttpsServer({ ...serverOptions, ...tlsOptions }, onRequest)
    : createHttpServer(serverOptions, onRequest);

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: o.maxPayloadBytes,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(WSS_SUBPROTOCOL) ? WSS_SUBPROTOCOL : false),
  });

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined); // a reset during the upgrade is the peer's problem
    const refuse = (status: number, message: string) => {
      const body = JSON.stringify({ error: { code: status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', message } });
      socket.end(
        `HTTP/1.1 ${status} ${status === 426 ? 'Upgrade Required' : status === 404 ? 'Not Found' : 'Bad Request'}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://x').pathname;
    } catch {
      refuse(400, 'bad URL');
      return;
    }
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    o.controlPlane
      .checkUpgrade(pathname, protocols)
      .then((check) => {
        if ('status' in check) {
          refuse(check.status, check.message);
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          const address = remoteAddress(socket);
          const hub = o.controlPlane.acceptHub(
            check.tid,
            {
              send: (text) => ws.send(text),
              close: (code, reason) => ws.close(code, reason),
              bufferedBytes: () => ws.bufferedAmount,
              pause: () => ws.pause(),
              resume: () => ws.resume(),
            },
            address,
          );
          ws.on('message', (data, isBinary) => {
            if (isBinary) hub.onBinary();
            else
              void hub.onText(
                Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'),
              );
          });
          ws.on('close', () => hub.onClose());
          ws.on('error', (e) => log.info('ws.error', { address, err: e }));
        });
      })
      .catch((e) => {
        log.error('ws.upgrade_failed', { err: e as Error });
        refuse(400, 'upgrade failed');
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  fallbackHost = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  const url = `${scheme}://${fallbackHost}`;
  log.notice('server.listening', { url });
  return {
    port,
    url,
    async close() {
      o.controlPlane.shutdown();
      // Let the SHUTTING_DOWN close handshakes finish (bounded by a deadline), then cut whatever is left.
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...wss.clients].map((ws) => new Promise((resolve) => ws.once('close', resolve)))),
        new Promise((resolve) => {
          deadline = setTimeout(resolve, 1000);
        }),
      ]);
      clearTimeout(deadline);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
