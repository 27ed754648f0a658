// Tool-call round trip on loopback at the agent's own endpoints (its local API and local MCP endpoint, p50/p99),
// against a bare `ws` echo of a tool.call-sized message, measured in the same run. The round trips through the
// control plane's WSS hub and MCP gateway are in controlplane.bench.ts.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { WebSocket, WebSocketServer } from 'ws';
import { createLocalApiClient } from '../agent/local-api/client.ts';
import { type BenchContext, ECHO_MESSAGE, runBench, summarizeLatencies, timeCalls } from './harness.ts';

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

/** Sequential round trips of ECHO_MESSAGE over one connection to a bare echo server; per-trip ms. */
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
      client.send(ECHO_MESSAGE);
    });
    t = process.hrtime.bigint();
    client.send(ECHO_MESSAGE);
  });
  client.close();
  await once(client, 'close');
  await server.close();
  return out;
}

const ROOT = resolve(import.meta.dirname, '..');

/** A running agent (from source, off-grid) with its local API socket and local MCP endpoint. */
async function startAgent(dir: string): Promise<{ socket: string; mcpUrl: string; stop(): Promise<void> }> {
  const configFile = join(dir, 'agent.toml');
  const socket = join(dir, 'agent.sock');
  writeFileSync(
    configFile,
    `[agent]\nname = "bench"\n[paths]\nstate_dir = "${join(dir, 'state')}"\nsocket = "${socket}"\n[mcp]\nhttp_port = 0\n[metrics]\nport = 0\n`,
  );
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OUTPOST_')) env[k] = v;
  const child = spawn(process.execPath, [join(ROOT, 'cli/bin.ts'), 'agent', 'run', '--config', configFile], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const started = await new Promise<string>((resolveStarted, reject) => {
    const lines: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => {
      lines.push(l);
      if (l.includes('agent.started')) resolveStarted(l);
    });
    child.once('exit', (c) => reject(new Error(`the agent exited (${c}):\n${lines.join('\n')}`)));
  });
  const mcpUrl = /mcp_http=(\S+)/.exec(started)?.[1];
  if (!mcpUrl) throw new Error(`no mcp_http in ${started}`);
  return {
    socket,
    mcpUrl,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Sequential calls of `call`; per-call ms. */
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
      label: `baseline: bare ws echo of ${ECHO_MESSAGE.length} B, ${what}, p50`,
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

  // The agent's own endpoints (off-grid, no control plane): a read_only built-in through the safety gate.
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-toolcall-'));
  const agent = await startAgent(dir);
  try {
    const calls = ctx.size(1_000, 50);
    const api = createLocalApiClient({ socketPath: agent.socket, timeoutMs: 10_000 });
    const local = await ctx.repeat('agent local API tool call', async () =>
      summarizeLatencies(
        await timeCalls(calls, () => api.post('/v1/tools/call', { tool: 'system.echo', args: { message: 'x' } })),
      ),
    );
    ctx.figure({
      id: 'local.api.p50',
      label: 'agent local API (HTTP on its unix socket): system.echo through the gate, p50',
      ...ms,
      baseline: 'ws.p50',
      samples: local.map((s) => s.p50),
    });
    ctx.figure({
      id: 'local.api.p99',
      label: 'agent local API: system.echo, p99',
      ...ms,
      baseline: 'ws.p99',
      samples: local.map((s) => s.p99),
    });
    const mcp = new Client({ name: 'outpost-bench', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(agent.mcpUrl)));
    try {
      const viaMcp = await ctx.repeat('agent local MCP tool call', async () =>
        summarizeLatencies(
          await timeCalls(calls, () => mcp.callTool({ name: 'system.echo', arguments: { message: 'x' } })),
        ),
      );
      ctx.figure({
        id: 'local.mcp.p50',
        label: 'agent local MCP endpoint (Streamable HTTP, MCP SDK client): system.echo, p50',
        ...ms,
        baseline: 'ws.p50',
        samples: viaMcp.map((s) => s.p50),
      });
      ctx.figure({
        id: 'local.mcp.p99',
        label: 'agent local MCP endpoint: system.echo, p99',
        ...ms,
        baseline: 'ws.p99',
        samples: viaMcp.map((s) => s.p99),
      });
    } finally {
      await mcp.close();
    }
    ctx.note(
      `Agent endpoints: ${calls.toLocaleString('en-US')} sequential calls per run of the read_only built-in system.echo, each through the safety gate and the audit log (off-grid agent, from source).`,
    );
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await runBench({ name: 'tool-call', title: 'Tool-call round trip on loopback', run });
