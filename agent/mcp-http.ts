// The agent's MCP endpoint over Streamable HTTP, on 127.0.0.1 only, with DNS-rebinding protection: the
// Host header must name the loopback address and port, and a browser Origin must be loopback too.
// Stateless: each POST /mcp gets a fresh server bound to the daemon's actions.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Logger } from '../protocol/log.ts';
import { createMcpServer, type McpBackend } from './mcp-server.ts';

export interface McpHttpOptions {
  readonly port: number;
  readonly backend: McpBackend;
  readonly name: string;
  readonly version: string;
  readonly log: Logger;
  readonly maxBodyBytes: number;
}

export interface McpHttpServer {
  /** Resolves with the URL served (`http://127.0.0.1:PORT/mcp`). */
  listen(): Promise<string>;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost'];

function reject(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** True when the Host header names a loopback name and our port (DNS rebinding defence). */
export function isAllowedHost(host: string | undefined, port: number): boolean {
  return host !== undefined && LOOPBACK_HOSTS.some((h) => host === `${h}:${port}`);
}

/** Absent Origin (not a browser) or a loopback origin on our port. */
export function isAllowedOrigin(origin: string | undefined, port: number): boolean {
  return origin === undefined || LOOPBACK_HOSTS.some((h) => origin === `http://${h}:${port}`);
}

export function createMcpHttpServer(o: McpHttpOptions): McpHttpServer {
  let server: Server | undefined;
  let port = 0;

  async function onRequest(
    req: IncomingMessage & { auth?: { token: string; clientId: string; scopes: string[] } },
    res: ServerResponse,
  ) {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/mcp') return reject(res, 404, 'not found: the MCP endpoint is /mcp');
    if (!isAllowedHost(req.headers.host, port)) return reject(res, 403, 'forbidden host');
    if (!isAllowedOrigin(req.headers.origin, port)) return reject(res, 403, 'forbidden origin');
    if (req.method !== 'POST') return reject(res, 405, 'method not allowed: this endpoint is stateless, use POST');
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) req.auth = { token: auth.slice(7).trim(), clientId: 'local-http', scopes: [] };
    const mcp = createMcpServer({ backend: o.backend, name: o.name, version: o.version });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      enableDnsRebindingProtection: true,
      allowedHosts: LOOPBACK_HOSTS.map((h) => `${h}:${port}`),
      allowedOrigins: LOOPBACK_HOSTS.map((h) => `http://${h}:${port}`),
      maxRequestBodySize: o.maxBodyBytes,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    try {
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    } catch (e) {
      o.log.error('mcp_http.error', { err: e as Error });
      if (!res.headersSent) reject(res, 500, 'internal error');
    }
  }

  return {
    async listen() {
      const s = createServer(
        { requestTimeout: 120_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 },
        (req, res) => {
          void onRequest(req, res);
        },
      );
      await new Promise<void>((resolve, rejectListen) => {
        s.once('error', rejectListen);
        s.listen(o.port, '127.0.0.1', () => {
          s.off('error', rejectListen);
          resolve();
        });
      });
      port = (s.address() as AddressInfo).port;
      server = s;
      const url = `http://127.0.0.1:${port}/mcp`;
      o.log.info('mcp_http.listening', { url });
      return url;
    },
    async close() {
      const s = server;
      server = undefined;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
  };
}
