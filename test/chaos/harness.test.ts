// The chaos harness itself, on real processes and sockets: the supervisor kills and restarts, the TCP proxy
// passes, delays, stalls half-open, drops and reorders WebSocket frames, the tiny disk fills and frees, the
// file-size limit bites, and the clock preload moves a child's wall clock but not its monotonic clock.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { clockControl } from './harness/clock-offset.ts';
import { canMakeTinyDisk, fileSizeLimit, tinyDisk } from './harness/disk.ts';
import { superviseProcess } from './harness/process.ts';
import { startTcpProxy } from './harness/tcp-proxy.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-chaos-harness-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('process supervisor', () => {
  it('starts, sees ready, kills -9, restarts with a new pid', async () => {
    const p = superviseProcess({
      name: 'ticker',
      command: process.execPath,
      args: ['-e', 'console.log("ready " + process.pid); setInterval(() => console.error("tick"), 20)'],
      ready: /^ready/,
    });
    await p.start();
    const first = p.pid();
    await p.waitForLine(/^tick$/, 10_000);
    await p.kill9();
    assert.equal(p.isRunning(), false);
    await p.restart();
    assert.notEqual(p.pid(), first);
    assert.equal(p.starts(), 2);
    assert.ok(p.lines().some((l) => l.run === 2 && l.text === `ready ${p.pid()}`));
    assert.equal(await p.stop(), null); // ended by SIGTERM: no exit code
  });

  it('a process that dies before it is ready fails start() with its last lines', async () => {
    const p = superviseProcess({
      name: 'dies',
      command: process.execPath,
      args: ['-e', 'console.error("bad config"); process.exit(78)'],
      ready: /^ready/,
    });
    await assert.rejects(p.start(), /dies exited \(78\) before it was ready[\s\S]*bad config/);
  });
});

async function echoServer(): Promise<{ server: WebSocketServer; port: number; received: string[] }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const received: string[] = [];
  server.on('connection', (s) =>
    s.on('message', (m: RawData) => {
      received.push(m.toString());
      s.send(m.toString());
    }),
  );
  return { server, port: (server.address() as { port: number }).port, received };
}

function client(port: number): Promise<{ ws: WebSocket; got: string[]; next(): Promise<string> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  const got: string[] = [];
  let taken = 0;
  const waiters: (() => void)[] = [];
  ws.on('message', (m: RawData) => {
    got.push(m.toString());
    waiters.shift()?.();
  });
  /** The next message not yet taken, waiting for it if it has not arrived. */
  const next = async (): Promise<string> => {
    while (taken >= got.length) await new Promise<void>((resolve) => waiters.push(resolve));
    return got[taken++]!;
  };
  return once(ws, 'open').then(() => ({ ws, got, next }));
}

describe('TCP proxy', () => {
  it('passes, delays (order kept), stalls half-open, drops and reorders WebSocket frames', async () => {
    const { server, port, received } = await echoServer();
    const proxy = await startTcpProxy({ targetPort: port });
    try {
      const c = await client(proxy.port);
      c.ws.send('a');
      assert.equal(await c.next(), 'a');

      proxy.setMode({ kind: 'delay', ms: 40, jitterMs: 20 });
      const t = performance.now();
      for (const m of ['b1', 'b2', 'b3']) c.ws.send(m);
      assert.equal(await c.next(), 'b1');
      assert.ok(performance.now() - t >= 80, 'a round trip crosses the proxy twice, each at least 40 ms late');
      assert.equal(await c.next(), 'b2');
      assert.equal(await c.next(), 'b3');

      // Stalled: both directions silent, nothing closed; the frame sent meanwhile is gone.
      proxy.setMode({ kind: 'stall' });
      let closed = false;
      c.ws.on('close', () => (closed = true));
      const stalledSent = proxy.stats().bytesStalled;
      c.ws.send('lost');
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (proxy.stats().bytesStalled > stalledSent) {
            clearInterval(poll);
            resolve();
          }
        }, 5);
      });
      proxy.setMode({ kind: 'pass' });
      c.ws.send('after');
      assert.equal(await c.next(), 'after');
      assert.ok(!received.includes('lost') && !c.got.includes('lost') && !closed);

      // Reorder: four frames held and delivered in reverse (both ways, so check what the server saw).
      proxy.setMode({ kind: 'reorder', window: 4 });
      const before = received.length;
      for (const m of ['r1', 'r2', 'r3', 'r4']) c.ws.send(m);
      for (let i = 0; i < 4; i++) await c.next();
      assert.deepEqual(received.slice(before), ['r4', 'r3', 'r2', 'r1']);
      assert.ok(proxy.stats().framesReordered >= 4);

      // Drop: the open connection is reset and so is the next one.
      // (events.once would reject on the 'error' that comes before 'close'.)
      const closeOf = (ws: WebSocket) =>
        new Promise<number>((resolve) => ws.on('error', () => {}).on('close', resolve));
      const droppedClose = closeOf(c.ws);
      proxy.setMode({ kind: 'drop' });
      assert.equal(await droppedClose, 1006);
      assert.equal(await closeOf(new WebSocket(`ws://127.0.0.1:${proxy.port}`)), 1006);
      assert.ok(proxy.stats().resets >= 2);
    } finally {
      await proxy.close();
      server.close();
    }
  });

  it('passes plain HTTP requests and responses with bodies whole (not taken for WebSocket frames)', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => res.end(JSON.stringify({ echoed: body })));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = await startTcpProxy({ targetPort: (server.address() as { port: number }).port });
    try {
      for (const mode of [{ kind: 'pass' }, { kind: 'reorder', window: 4 }] as const) {
        proxy.setMode(mode);
        const payload = JSON.stringify({ mode: mode.kind, pad: 'x'.repeat(5_000) });
        const res = await fetch(`http://127.0.0.1:${proxy.port}/enroll`, {
          method: 'POST',
          body: payload,
          signal: AbortSignal.timeout(10_000),
        });
        assert.deepEqual(await res.json(), { echoed: payload });
      }
    } finally {
      await proxy.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('full disks', () => {
  const writer = (path: string, bytes: number) => [
    '-e',
    `try { require('fs').writeFileSync(${JSON.stringify(path)}, Buffer.alloc(${bytes})); console.log('ok') } catch (e) { console.log(e.code) }`,
  ];
  const run = async (cmd: readonly [string, readonly string[]]) => {
    const c = spawn(cmd[0], [...cmd[1]], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(createInterface({ input: c.stdout }), 'line')) as [string];
    await once(c, 'exit');
    return line;
  };

  it('a tiny tmpfs disk fills (ENOSPC) and frees, seen from inside its namespace', {
    skip: !canMakeTinyDisk() && 'no unprivileged user+mount namespaces here',
  }, async () => {
    const mount = mkdtempSync(join(dir, 'disk-'));
    const disk = await tinyDisk(mount, 256 * 1024);
    try {
      assert.equal(await run(disk.wrap(process.execPath, writer(join(mount, 'a'), 4096))), 'ok');
      disk.fill(0);
      assert.ok(disk.freeBytes() < 4096);
      assert.equal(await run(disk.wrap(process.execPath, writer(join(mount, 'b'), 4096))), 'ENOSPC');
      disk.free();
      assert.equal(await run(disk.wrap(process.execPath, writer(join(mount, 'b'), 4096))), 'ok');
    } finally {
      await disk.close();
    }
  });

  it('RLIMIT_FSIZE makes a write past the limit fail with EFBIG', async () => {
    const limited = fileSizeLimit(10_000)(process.execPath, writer(join(dir, 'big'), 20_000));
    assert.equal(await run(limited), 'EFBIG');
  });
});

describe('clock offset preload', () => {
  it('moves Date.now and new Date() by the offset, leaves performance.now alone', async () => {
    const clock = clockControl(dir);
    const child = spawn(
      process.execPath,
      [
        ...clock.nodeArgs,
        '-e',
        `require('readline').createInterface({ input: process.stdin }).on('line', () =>
          console.log(JSON.stringify({ now: Date.now(), date: new Date().getTime(), mono: performance.now(), real: Number(process.hrtime.bigint() / 1000000n) })))`,
      ],
      { env: { ...process.env, ...clock.env }, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout });
    const ask = async () => {
      child.stdin.write('\n');
      const [l] = (await once(lines, 'line')) as [string];
      return JSON.parse(l) as { now: number; date: number; mono: number };
    };
    try {
      const before = await ask();
      const day = 86_400_000;
      clock.jump(-day);
      let askedAt = Date.now();
      let later = await ask();
      while (later.now > before.now - day / 2) {
        askedAt = Date.now();
        later = await ask(); // the child re-reads within ~100 ms
      }
      // Against this process's own wall clock read around the same moment (not against monotonic time: the host's
      // wall clock may be stepped by time sync while the test runs, and that moves both processes alike).
      const answeredAt = Date.now();
      assert.ok(later.now >= askedAt - day - 5 && later.now <= answeredAt - day + 5, 'shifted back by one day');
      assert.ok(Math.abs(later.date - later.now) < 50, 'new Date() agrees with Date.now()');
      assert.ok(later.mono >= before.mono, 'monotonic time did not jump');
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
});
