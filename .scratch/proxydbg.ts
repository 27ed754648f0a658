import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { startTcpProxy } from '/work/wt-proof/test/chaos/harness/tcp-proxy.ts';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await once(server, 'listening');
server.on('connection', (s) =>
  s.on('message', (m) => {
    console.log('srv got', m.toString());
    s.send(m.toString());
  }),
);
const proxy = await startTcpProxy({ targetPort: (server.address() as any).port });
const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}`);
ws.on('message', (m) => console.log('cli got', m.toString()));
ws.on('close', (c) => console.log('close', c));
await once(ws, 'open');
console.log('open');
ws.send('a');
await new Promise((r) => setTimeout(r, 300));
proxy.setMode({ kind: 'delay', ms: 40, jitterMs: 20 });
ws.send('b1');
ws.send('b2');
await new Promise((r) => setTimeout(r, 500));
console.log(proxy.stats());
process.exit(0);
