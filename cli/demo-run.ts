// `outpost demo`: brings up a whole site on 127.0.0.1 from this same executable — the simulated air with emulated
// radios, the reference control plane, a gateway behind a backhaul the user can pull, two WSS agents and two
// LoRa-only agents — then shows what the parts' own APIs say, until Ctrl-C stops every child.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { isSea } from 'node:sea';
import type { StatusView } from '../agent/api-types.ts';
import { createLocalApiClient } from '../agent/local-api/client.ts';
import { getFromGateway } from '../gateway/local-api.ts';
import { agentConfig, DEMO_TIME_SCALE, gatewayConfig } from './demo-site.ts';
import { type DemoSnapshot, renderSnapshot } from './demo-view.ts';
import type { RadioSimInfo } from './radio-sim.ts';
import { RUNTIME_V8_FLAGS } from './runtime-flags.ts';

export interface DemoOptions {
  readonly stateDir: string;
  readonly port: number;
  /** Redraw in place (a TTY) or print one JSON snapshot per line. */
  readonly mode: 'tty' | 'json';
  readonly refreshMs: number;
  readonly write: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** Keys from the user: `b` toggles the backhaul (the caller turns `q` and Ctrl-C into `signal`). */
  readonly keys: AsyncIterable<string>;
  readonly signal: AbortSignal;
}

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly exited: Promise<unknown>;
}

/** argv that runs this same Outpost executable: the single binary itself, or node with cli/bin.ts in development. */
function self(args: readonly string[]): [string, string[]] {
  return isSea()
    ? [process.execPath, [...args]]
    : [process.execPath, [...RUNTIME_V8_FLAGS, resolve(import.meta.dirname, 'bin.ts'), ...args]];
}

/** A TCP relay standing for the gateway's backhaul: `down` cuts every connection and refuses new ones. */
async function startBackhaul(
  targetPort: number,
): Promise<{ port: number; up: boolean; set(up: boolean): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let up = true;
  const server: Server = createServer((client) => {
    if (!up) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get up() {
      return up;
    },
    set(next: boolean) {
      up = next;
      if (!up) for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const dir = resolve(o.stateDir);
  const children: Child[] = [];
  const say = (line: string) =>
    o.write(o.mode === 'json' ? `${JSON.stringify({ event: 'step', message: line })}\n` : `${line}\n`);

  function start(name: string, args: readonly string[], input?: string): Child {
    const [cmd, argv] = self(args);
    const proc = spawn(cmd, argv, {
      cwd: dir,
      env: { ...o.env, NO_COLOR: '1' },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (input !== undefined) proc.stdin!.end(input);
    const c: Child = { name, proc, stdout: [], stderr: [], exited: once(proc, 'exit').catch(() => undefined) };
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const lines = out.split('\n');
      out = lines.pop()!;
      c.stdout.push(...lines);
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      c.stderr.push(...d.split('\n').filter(Boolean));
      if (c.stderr.length > 400) c.stderr.splice(0, c.stderr.length - 200);
    });
    children.push(c);
    return c;
  }

  async function finish(c: Child): Promise<string> {
    const [code] = (await c.exited) as [number | null];
    if (code !== 0) throw new Error(`${c.name} failed (exit ${code}):\n${c.stderr.slice(-15).join('\n')}`);
    return c.stdout.join('\n');
  }

  async function firstJson<T>(c: Child, what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // One JSON document: a single line, or printed across lines from `{` to `}`.
      const start = c.stdout.findIndex((l) => l.startsWith('{'));
      if (start >= 0) {
        for (let end = start; end < c.stdout.length; end++) {
          try {
            return JSON.parse(c.stdout.slice(start, end + 1).join('\n')) as T;
          } catch {
            // not complete yet
          }
        }
      }
      if (c.proc.exitCode !== null)
        throw new Error(`${what}: ${c.name} exited ${c.proc.exitCode}:\n${c.stderr.slice(-15).join('\n')}`);
      if (Date.now() > deadline || o.signal.aborted) throw new Error(`${what}: no answer from ${c.name}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline || o.signal.aborted) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  const cli = (name: string, args: readonly string[], input?: string) => finish(start(name, args, input));
  const cliJson = async <T>(name: string, args: readonly string[], input?: string) =>
    JSON.parse(await cli(name, [...args, '--json'], input)) as T;

  let backhaul: Awaited<ReturnType<typeof startBackhaul>> | undefined;
  try {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    say(`state directory ${dir}`);

    say('starting the simulated air: 2 emulated RNodes, 2 emulated Meshtastic nodes on pseudo-terminals …');
    const sim = start('radio sim', [
      'radio',
      'sim',
      '--rnode',
      '2',
      '--meshtastic',
      '2',
      '--time-scale',
      String(DEMO_TIME_SCALE),
      '--region',
      'EU868',
      '--dir',
      join(dir, 'air'),
      '--json',
    ]);
    const air = await firstJson<RadioSimInfo>(sim, 'the simulated air');
    const rnodes = air.radios.filter((r) => r.kind === 'rnode').map((r) => r.path);
    const meshes = air.radios.filter((r) => r.kind === 'meshtastic').map((r) => r.path);

    say(`starting the control plane on http://127.0.0.1:${o.port} …`);
    const cpDir = join(dir, 'controlplane');
    const init = await cliJson<{ operatorKeyFile: string; tenant: { tid: string } }>('controlplane init', [
      'controlplane',
      'init',
      '--state-dir',
      cpDir,
      '--listen',
      `127.0.0.1:${o.port}`,
      '--tenant',
      'demo',
    ]);
    const tid = init.tenant.tid;
    const cpUrl = `http://127.0.0.1:${o.port}`;
    const cp = start('control plane', ['controlplane', 'run', '--state-dir', cpDir]);
    const operatorKey = readFileSync(init.operatorKeyFile, 'utf8').trim();
    const operator = async <T>(path: string): Promise<T> => {
      const r = await fetch(`${cpUrl}${path}`, {
        headers: { authorization: `Bearer ${operatorKey}` },
        signal: AbortSignal.timeout(3_000),
      });
      if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
      return (await r.json()) as T;
    };
    await waitFor('the control plane', async () => (await fetch(`${cpUrl}/healthz`)).ok || cp.proc.exitCode !== null);
    if (cp.proc.exitCode !== null) throw new Error(`the control plane exited:\n${cp.stderr.slice(-15).join('\n')}`);

    say('two approvers (ann, bob), each with a key file only they hold; physical actuation needs both …');
    for (const who of ['ann', 'bob']) {
      const k = await cliJson<{ publicKey: string }>('approver keygen', [
        'approver',
        'keygen',
        '--out',
        join(dir, `${who}.key`),
      ]);
      await cliJson('policy', [
        'controlplane',
        'policy',
        'add-approver',
        who,
        `--public-key=${k.publicKey}`,
        '--state-dir',
        cpDir,
      ]);
    }
    await cliJson('token mint', [
      'controlplane',
      'token',
      'mint',
      '--state-dir',
      cpDir,
      '--role',
      'actuator',
      '--subject',
      'demo-llm',
      '--ttl',
      '24h',
      '--out',
      join(dir, 'mcp.token'),
    ]);

    const enrollToken = async (role: 'device' | 'gateway') => {
      const file = join(dir, `enroll-${role}-${children.length}.token`);
      await cliJson('enroll-token', [
        'controlplane',
        'enroll-token',
        '--state-dir',
        cpDir,
        '--role',
        role,
        '--out',
        file,
      ]);
      const t = readFileSync(file, 'utf8');
      rmSync(file);
      return t;
    };

    say('enrolling the gateway and starting it on rnode-0 and meshtastic-0, its backhaul through a pullable link …');
    backhaul = await startBackhaul(o.port);
    const gwConfig = join(dir, 'gateway.toml');
    writeFileSync(
      gwConfig,
      gatewayConfig({ proxyPort: backhaul.port, cpUrl, tid, rnodePath: rnodes[0]!, meshtasticPath: meshes[0]! }),
    );
    await cli(
      'gateway enroll',
      ['gateway', 'enroll', '--url', cpUrl, '--token-file', '-', '--config', gwConfig],
      await enrollToken('gateway'),
    );
    start('gateway', ['gateway', 'run', '--config', gwConfig, '--json']);
    const gwSocket = join(dir, 'gateway', 'gateway.sock');

    const agents = [
      { name: 'greenhouse-1', uplink: 'wss' as const },
      { name: 'greenhouse-2', uplink: 'wss' as const },
      { name: 'field-rnode', uplink: 'lora' as const, radioKind: 'rnode' as const, radioPath: rnodes[1]! },
      { name: 'field-mesh', uplink: 'lora' as const, radioKind: 'meshtastic' as const, radioPath: meshes[1]! },
    ];
    for (const a of agents) {
      say(
        `enrolling ${a.name} (${a.uplink === 'wss' ? 'WSS' : `LoRa over an emulated ${a.radioKind}`}) and starting it …`,
      );
      const file = join(dir, `${a.name}.toml`);
      writeFileSync(file, agentConfig(a));
      mkdirSync(join(dir, a.name), { recursive: true, mode: 0o700 });
      await cli(
        `enroll ${a.name}`,
        ['enroll', '--url', cpUrl, '--token-file', '-', '--config', file],
        await enrollToken('device'),
      );
      start(a.name, ['agent', 'run', '--config', file]);
    }
    await waitFor('every agent running', async () => {
      for (const a of agents)
        await createLocalApiClient({ socketPath: join(dir, a.name, 'agent.sock'), timeoutMs: 2_000 }).get('/v1/status');
      return true;
    });

    const snapshot = async (): Promise<DemoSnapshot> => {
      const devices = await operator<{ devices: DemoSnapshot['devices'] }>('/v1/operator/devices').catch(() => ({
        devices: [],
      }));
      const telemetry: DemoSnapshot['telemetry'][number][] = [];
      for (const d of devices.devices.filter((x) => x.role === 'device')) {
        const t = await operator<{ total: number; records: { stream: string; value: unknown; ts: number }[] }>(
          `/v1/operator/telemetry?device=${encodeURIComponent(d.device)}&limit=1&after=0`,
        ).catch(() => undefined);
        telemetry.push({ device: d.name, total: t?.total ?? 0, last: t?.records.at(-1) ?? null });
      }
      const queues: DemoSnapshot['queues'][number][] = [];
      for (const a of agents) {
        const s = await createLocalApiClient({ socketPath: join(dir, a.name, 'agent.sock'), timeoutMs: 2_000 })
          .get<StatusView>('/v1/status')
          .catch(() => undefined);
        queues.push({ agent: a.name, uplink: a.uplink, link: s?.status.link ?? 'down', depth: s?.queue.depth ?? null });
      }
      const gw = await getFromGateway(gwSocket, '/v1/status', 3_000)
        .then((text) => JSON.parse(text) as DemoSnapshot['gateway'])
        .catch(() => null);
      const audit = await operator<{ lines?: string[] } | { entries?: unknown[] }>('/v1/operator/audit/export').catch(
        () => undefined,
      );
      const lines = (audit as { lines?: string[] } | undefined)?.lines ?? [];
      return {
        atMs: Date.now(),
        backhaulUp: backhaul!.up,
        devices: devices.devices,
        telemetry,
        queues,
        gateway: gw,
        audit: lines.slice(-5),
        pids: children.filter((c) => c.proc.exitCode === null).map((c) => c.proc.pid!),
      };
    };

    const help = [
      '',
      'Outpost demo is running. Everything is on 127.0.0.1; state in ' + dir,
      '',
      `  control plane   ${cpUrl}   (operator key in ${init.operatorKeyFile}, 0600)`,
      `  dashboard       ${cpUrl}/dashboard/   sign in with that operator key; approve there with ann.key / bob.key`,
      `  call a tool     outpost controlplane devices --state-dir ${cpDir}`,
      `                  an MCP client with the caller token in ${join(dir, 'mcp.token')}:`,
      `                  {"mcpServers": {"outpost-demo": {"type": "http", "url": "${cpUrl}/mcp",`,
      '                   "headers": {"Authorization": "Bearer <contents of mcp.token>"}}}}',
      '                  then call greenhouse-1.env.sample, or field-rnode.env.sample (over LoRa)',
      `  approve         valve.open is held for approval; list: outpost controlplane approvals --state-dir ${cpDir}`,
      `                  outpost approve REQUEST_ID --approver ann --key-file ${join(dir, 'ann.key')} --state-dir ${cpDir}`,
      `                  (and bob with ${join(dir, 'bob.key')}); then call valve.open again`,
      "  backhaul        press b to pull or restore the gateway's backhaul and watch its queue fill and drain",
      '  stop            Ctrl-C stops everything',
      '',
    ].join('\n');
    if (o.mode === 'json') o.write(`${JSON.stringify({ event: 'ready', controlPlane: cpUrl, stateDir: dir, tid })}\n`);
    else o.write(`${help}\n`);

    void (async () => {
      for await (const key of o.keys) {
        if (key === 'b') {
          backhaul!.set(!backhaul!.up);
          if (o.mode === 'json') o.write(`${JSON.stringify({ event: 'backhaul', up: backhaul!.up })}\n`);
        }
      }
    })().catch(() => undefined);

    while (!o.signal.aborted) {
      const s = await snapshot();
      if (o.mode === 'json') o.write(`${JSON.stringify({ event: 'snapshot', ...s })}\n`);
      else o.write(`\x1b[2J\x1b[H${renderSnapshot(s)}\n${help}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, o.refreshMs);
        o.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            r();
          },
          { once: true },
        );
      });
    }
    return 0;
  } catch (e) {
    if (o.signal.aborted) return 0;
    o.write(
      `${o.mode === 'json' ? JSON.stringify({ event: 'error', message: (e as Error).message }) : `demo failed: ${(e as Error).message}`}\n`,
    );
    return 1;
  } finally {
    say('stopping …');
    for (const c of [...children].reverse())
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
    const all = Promise.all(children.map((c) => c.exited));
    const timer = setTimeout(() => {
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    }, 10_000);
    await all;
    clearTimeout(timer);
    await backhaul?.close();
    say('stopped');
  }
}
