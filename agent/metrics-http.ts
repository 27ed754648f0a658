// Prometheus exposition on http://127.0.0.1:PORT/metrics (loopback only: metrics reveal tool names and rates).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../protocol/log.ts';
import { type MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '../protocol/metrics.ts';

export interface MetricsHttpServer {
  listen(): Promise<string>;
  close(): Promise<void>;
}

export function createMetricsHttpServer(o: {
  port: number;
  registry: MetricsRegistry;
  refresh: () => void;
  log: Logger;
}): MetricsHttpServer {
  let server: Server | undefined;
  return {
    async listen() {
      const s = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
        if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found: metrics are at /metrics\n');
          return;
        }
        let body: string;
        try {
          o.refresh();
          body = o.registry.render();
        } catch (e) {
          o.log.error('metrics.render_failed', { err: e as Error });
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('metrics unavailable\n');
          return;
        }
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(o.port, '127.0.0.1', () => {
          s.off('error', reject);
          resolve();
        });
      });
      server = s;
      const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`;
      o.log.info('metrics.listening', { url });
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
