// Serves release directories over HTTP on 127.0.0.1 (node:http) for the installer tests, with injectable
// faults per path: an HTTP status, a body cut short (with or without a Content-Length), or other bytes.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';

export type Fault =
  | { kind: 'status'; status: number }
  /** Announces the full Content-Length, sends half, then drops the connection. */
  | { kind: 'truncate' }
  /** Sends half of the file as a complete chunked response: only the signature can notice. */
  | { kind: 'short' }
  | { kind: 'body'; body: Buffer };

export interface ReleaseServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** Request path → fault; tests set and clear entries. */
  faults: Map<string, Fault>;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Serves the files under `root` read-only; resolves once listening on an ephemeral loopback port. */
export async function serveRelease(root: string): Promise<ReleaseServer> {
  const faults = new Map<string, Fault>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const fault = faults.get(path);
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'text/plain' }).end(`error ${fault.status}\n`);
      return;
    }
    if (fault?.kind === 'body') {
      res.writeHead(200, { 'content-length': fault.body.length }).end(fault.body);
      return;
    }
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    stat(file).then(
      (s) => {
        if (!s.isFile()) {
          res.writeHead(404).end();
          return;
        }
        if (fault?.kind === 'truncate' || fault?.kind === 'short') {
          const half = Math.floor(s.size / 2);
          res.writeHead(200, fault.kind === 'truncate' ? { 'content-length': s.size } : {});
          const stream = createReadStream(file, { start: 0, end: half - 1 });
          stream.pipe(res, { end: fault.kind === 'short' });
          if (fault.kind === 'truncate') stream.on('end', () => res.socket?.destroy());
          return;
        }
        res.writeHead(200, { 'content-length': s.size, 'content-type': 'application/octet-stream' });
        createReadStream(file).pipe(res);
      },
      () => res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    faults,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
