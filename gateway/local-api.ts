// The gateway's local API: HTTP/1.1 on a unix socket (mode 0660), read-only — GET /v1/status (JSON) and
// GET /metrics (Prometheus) — plus an optional TCP listener for /metrics. The CLI reaches the daemon only here.

import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../protocol/log.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../protocol/metrics.ts';
import { GatewayError } from './errors.ts';

export interface LocalApiOptions {
  readonly socketPath: string;
  readonly socketMode?: number;
  /** Optional "HOST:PORT" for a TCP metrics listener. */
  readonly metricsListen?: string;
  readonly status: () => unknown;
  readonly metrics: () => string;
  readonly log: Logger;
}

export interface LocalApi {
  listen(): Promise<{ socketPath: string; metricsUrl?: string }>;
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

export function createLocalApi(options: LocalApiOptions): LocalApi {
  const servers: Server[] = [];
  const handler = (onlyMetrics: boolean) =>
    createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET') return reply(res, 405, 'text/plain', 'only GET\n');
      try {
        if (path === '/metrics') return reply(res, 200, PROMETHEUS_CONTENT_TYPE, options.metrics());
        if (!onlyMetrics && path === '/v1/status') {
          return reply(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(options.status())}\n`);
        }
      } catch (e) {
        options.log.error('api.failed', { path, error: e });
        return reply(res, 500, 'text/plain', 'internal error\n');
      }
      return reply(res, 404, 'text/plain', onlyMetrics ? 'metrics are at /metrics\n' : 'not found\n');
    });

  return {
    async listen() {
      // A socket left by a killed daemon would make listen() fail with EADDRINUSE.
      try {
        if (lstatSync(options.socketPath).isSocket()) unlinkSync(options.socketPath);
      } catch {
        // absent
      }
      const unix = handler(false);
      await new Promise<void>((resolve, reject) => {
        unix.once('error', reject);
        unix.listen(options.socketPath, () => {
          unix.off('error', reject);
          resolve();
        });
      });
      chmodSync(options.socketPath, options.socketMode ?? 0o660);
      servers.push(unix);
      let metricsUrl: string | undefined;
      if (options.metricsListen) {
        const at = options.metricsListen.lastIndexOf(':');
        const host = options.metricsListen.slice(0, at).replace(/^\[|\]$/g, '');
        const port = Number(options.metricsListen.slice(at + 1));
        const tcp = handler(true);
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, host, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
        servers.push(tcp);
        metricsUrl = `http://${options.metricsListen.slice(0, at)}:${(tcp.address() as AddressInfo).port}/metrics`;
      }
      options.log.info('api.listening', { socket: options.socketPath, ...(metricsUrl ? { metrics: metricsUrl } : {}) });
      return { socketPath: options.socketPath, ...(metricsUrl ? { metricsUrl } : {}) };
    },
    async close() {
      await Promise.all(
        servers.splice(0).map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      try {
        unlinkSync(options.socketPath);
      } catch {
        // already gone
      }
    },
  };
}

/** GETs `path` from the daemon's socket. Throws DAEMON_DOWN when nothing answers there. */
export function getFromGateway(socketPath: string, path: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 16 << 20) req.destroy(new Error('response too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 200) resolve(body);
        else reject(new GatewayError('API_BAD_REQUEST', `gateway answered ${res.statusCode}: ${body.trim()}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) =>
      reject(
        new GatewayError(
          'DAEMON_DOWN',
          `no gateway answers on ${socketPath} (is outpost-gateway running?): ${e.message}`,
          {
            cause: e,
          },
        ),
      ),
    );
    req.end();
  });
}
