// Tool-call round trip on loopback: via the control plane's WSS hub to a connected agent and back, and via
// the MCP gateway (p50/p99/max), against a bare `ws` echo of a message the same size, measured in the same run.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { WebSocket, WebSocketServer } from 'ws';
import { type BenchContext, runBench, summarizeLatencies } from './harness.ts';

/** A tool.call envelope's size on the wire (protocol/envelope.ts vectors are 300–400 bytes). */
const MESSAGE = JSON.stringify({
  v: 2,
  id: 'AAAAAAAAAAAAAAAAAAAAAA',
  tid: '0e6c3a3d-952c-55af-be8a-3d562dcf52c7',
  type: 'tool.call',
  ts: 1767225660000,
  seq: 1,
  src: 'cp:bench',
  dst: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
  body: { callId: 'c-000000000001', tool: 'climate.read', args: { zone: 3 }, deadlineMs: 1767225690000 },
});

const ECHO_SERVER = `
import { WebSocketServer } from 'ws';
const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
server.on('connection', (s) => s.on('message', (data, isBinary) => s.send(data, { binary: isBinary })));
server.on('listening', () => console.log(server.address().port));
`;

/** A bare echo server in this process, or in a child process (as the hub and the agent are). */
async function echoServer(where: 'in-process' | 'child'): Promise<{ port: number; close(): Promise<void> }> {
  if (where === 'in-process') {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    server.on('connection', (s) => s.on('message', (data, isBinary) => s.send(data, { binary: isBinary })));
    return {
      port: (server.address() as AddressInfo).port,
      close: () => new Promise<void>((done) => server.close(() => done())),
    };
  }
  const child = spawn(process.execPath, ['--input-type=module', '-e', ECHO_SERVER], {
    cwd: resolve(import.meta.dirname, '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return {
    port: Number(line),
    async close() {
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

/** Sequential round trips of MESSAGE over one connection to a bare echo server; per-trip ms. */
async function wsEcho(trips: number, where: 'in-process' | 'child'): Promise<Float64Array> {
  const server = await echoServer(where);
  const client = new WebSocket(`ws://127.0.0.1:${server.port}`);
  await once(client, 'open');
  const out = new Float64Array(trips);
  let i = 0;
  let t = 0n;
  await new Promise<void>((done) => {
    client.on('message', () => {
      out[i++] = Number(process.hrtime.bigint() - t) / 1e6;
      if (i === trips) return done();
      t = process.hrtime.bigint();
      client.send(MESSAGE);
    });
    t = process.hrtime.bigint();
    client.send(MESSAGE);
  });
  client.close();
  await once(client, 'close');
  await server.close();
  return out;
}

async function run(ctx: BenchContext): Promise<void> {
  const trips = ctx.size(5_000, 200);
  const ms = { unit: 'ms', better: 'lower' as const };
  for (const where of ['in-process', 'child'] as const) {
    const echo = await ctx.repeat(`bare ws echo (${where})`, async () =>
      summarizeLatencies(await wsEcho(trips, where)),
    );
    const id = where === 'child' ? 'ws' : 'ws.inproc';
    const what = where === 'child' ? 'server in another process' : 'server in the same process';
    ctx.figure({
      id: `${id}.p50`,
      label: `baseline: bare ws echo of ${MESSAGE.length} B, ${what}, p50`,
      ...ms,
      samples: echo.map((s) => s.p50),
    });
    ctx.figure({
      id: `${id}.p99`,
      label: `baseline: bare ws echo, ${what}, p99`,
      ...ms,
      samples: echo.map((s) => s.p99),
    });
    ctx.figure({
      id: `${id}.max`,
      label: `baseline: bare ws echo, ${what}, max`,
      ...ms,
      samples: echo.map((s) => s.max),
    });
  }
  ctx.note(`${trips.toLocaleString('en-US')} sequential round trips per run over one loopback connection (no TLS).`);
}

await runBench({ name: 'tool-call', title: 'Tool-call round trip on loopback', run });
