// A TCP proxy on 127.0.0.1 that plays the backhaul: while "up" it relays connections to a target port; "down"
// cuts every open connection and refuses new ones, as a dead 4G or satellite link would look to a client.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface BackhaulProxy {
  readonly port: number;
  isUp(): boolean;
  up(): void;
  /** Cuts every relayed connection (reset) and refuses new ones until up(). */
  down(): void;
  /** Connections accepted and relayed so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startBackhaulProxy(targetPort: number): Promise<BackhaulProxy> {
  let up = true;
  let relayed = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!up) {
      client.resetAndDestroy();
      return;
    }
    relayed++;
    const upstream = connect(targetPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const drop = () => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    isUp: () => up,
    up() {
      up = true;
    },
    down() {
      up = false;
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    connections: () => relayed,
    close: () =>
      new Promise<void>((resolve) => {
        up = false;
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
