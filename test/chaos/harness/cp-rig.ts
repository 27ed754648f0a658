// A real control plane for chaos runs: `outpost controlplane init` in a temp dir on a free loopback port, the
// `controlplane run` process under the supervisor, enrollment of chaos agents, and what its store holds.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CLI, childEnv } from '../../support/agent-process.ts';
import type { AgentRig, QueuedRecord } from './agent-rig.ts';
import { type ProcessSpec, type SupervisedProcess, superviseProcess } from './process.ts';

export interface CpRig {
  readonly stateDir: string;
  readonly url: string;
  readonly port: number;
  /** The tenant's id (a gateway's hub URL and config name it). */
  readonly tid: string;
  readonly process: SupervisedProcess;
  /** Mints an enroll token and runs `outpost enroll` for the agent (which must not be running yet); its device id. */
  enroll(agent: AgentRig): Promise<string>;
  /** Mints a gateway enroll token and runs `outpost gateway enroll` (wrapped like the gateway, e.g. on a tiny disk). */
  enrollGateway(configFile: string, wrap?: ProcessSpec['wrap']): Promise<void>;
  /** Every stored record of `stream` (of one device, or all when there is one), read through the operator API. */
  stored(stream: string, device?: string): Promise<QueuedRecord[]>;
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Runs one CLI command to completion; resolves with stdout, rejects with its output on a non-zero exit. */
export async function cli(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  wrap?: ProcessSpec['wrap'],
): Promise<string> {
  const [command, argv] = wrap ? wrap(process.execPath, [CLI, ...args]) : [process.execPath, [CLI, ...args]];
  const child = spawn(command, [...argv], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`outpost ${args.join(' ')} exited ${code}:\n${err}${out}`);
  return out;
}

export async function cpRig(o: {
  dir: string;
  /** Loopback port to listen on (default a free one). */
  port?: number;
  /** The URL devices are told to use (default the control plane's own): a proxy's URL puts them behind it. */
  publicUrl?: string;
  env?: Readonly<Record<string, string>>;
  wrap?: ProcessSpec['wrap'];
  nodeArgs?: readonly string[];
}): Promise<CpRig> {
  const stateDir = join(o.dir, 'cp');
  const port = o.port ?? (await freePort());
  const init = JSON.parse(
    await cli([
      'controlplane',
      'init',
      '--state-dir',
      stateDir,
      '--listen',
      `127.0.0.1:${port}`,
      ...(o.publicUrl ? ['--public-url', o.publicUrl] : []),
      '--tenant',
      'chaos',
      '--json',
    ]),
  ) as { operatorKey: string; tenant: { tid: string } };
  const url = `http://127.0.0.1:${port}`;
  const proc = superviseProcess({
    name: 'controlplane',
    command: process.execPath,
    args: [...(o.nodeArgs ?? []), CLI, 'controlplane', 'run', '--state-dir', stateDir],
    env: childEnv(o.env),
    ready: /server\.listening/,
    ...(o.wrap ? { wrap: o.wrap } : {}),
  });
  let tokens = 0;
  return {
    stateDir,
    url,
    port,
    tid: init.tenant.tid,
    process: proc,
    async enroll(agent) {
      const tokenFile = join(o.dir, `enroll-${++tokens}.token`);
      // The operator talks to the control plane directly, not through the public URL (maybe a proxy).
      await cli(['controlplane', 'enroll-token', '--state-dir', stateDir, '--url', url, '--out', tokenFile]);
      const out = await cli([
        'enroll',
        '--url',
        url,
        '--token-file',
        tokenFile,
        '--config',
        agent.configFile,
        '--json',
      ]);
      return (JSON.parse(out) as { device: string }).device;
    },
    async enrollGateway(configFile, wrap) {
      const tokenFile = join(o.dir, `enroll-${++tokens}.token`);
      await cli([
        'controlplane',
        'enroll-token',
        '--state-dir',
        stateDir,
        '--url',
        url,
        '--role',
        'gateway',
        '--out',
        tokenFile,
      ]);
      await cli(['gateway', 'enroll', '--url', url, '--token-file', tokenFile, '--config', configFile], {}, wrap);
    },
    async stored(stream, device) {
      const out: QueuedRecord[] = [];
      for (let after = -1; ; ) {
        const q = new URLSearchParams({
          stream,
          limit: '1000',
          ...(device ? { device } : {}),
          ...(after >= 0 ? { after: String(after) } : {}),
        });
        const res = await fetch(`${url}/v1/operator/telemetry?${q}`, {
          headers: { authorization: `Bearer ${init.operatorKey}` },
        });
        if (!res.ok) throw new Error(`GET /v1/operator/telemetry: ${res.status} ${await res.text()}`);
        const page = (await res.json()) as { records: { seq: number; value: unknown }[] };
        for (const r of page.records) out.push({ seq: r.seq, value: r.value });
        if (page.records.length === 0) break;
        after = page.records[page.records.length - 1]!.seq;
      }
      return out;
    },
  };
}
