// A control plane and an enrolled agent as real processes, optionally with the TCP proxy between them (the
// control plane's public URL is the proxy's, so the WSS URL the agent is given at enrollment goes through it),
// and the end-to-end checks.

import { type AgentRig, agentRig, CHAOS_STREAM, type ProducerTally, reconcile } from './agent-rig.ts';
import { type CpRig, cpRig, freePort } from './cp-rig.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

export interface System {
  readonly cp: CpRig;
  readonly agent: AgentRig;
  readonly proxy?: TcpProxy;
  close(): Promise<void>;
}

export interface SystemOptions {
  readonly dir: string;
  /** Put the misbehaving proxy between agent and control plane. */
  readonly proxy?: boolean;
  /** Environment of the agent (link heartbeat, clock preload…). */
  readonly agentEnv?: Readonly<Record<string, string>>;
  readonly agentToml?: string;
}

export async function startSystem(o: SystemOptions): Promise<System> {
  // With a proxy, devices are told the proxy's URL at enrollment (the control plane's public URL), so every
  // connection of the agent's link goes through it while the operator talks to the control plane directly.
  const port = await freePort();
  const proxy = o.proxy ? await startTcpProxy({ targetPort: port }) : undefined;
  const cp = await cpRig({ dir: o.dir, port, ...(proxy ? { publicUrl: `http://127.0.0.1:${proxy.port}` } : {}) });
  const agent = agentRig({
    dir: o.dir,
    ...(o.agentEnv ? { env: o.agentEnv } : {}),
    ...(o.agentToml ? { extraToml: o.agentToml } : {}),
  });
  const close = async () => {
    await agent.process.kill9();
    await cp.process.kill9();
    await proxy?.close();
  };
  try {
    await cp.process.start();
    await cp.enroll(agent);
    await agent.process.start();
  } catch (e) {
    await close();
    throw e;
  }
  return { cp, agent, ...(proxy ? { proxy } : {}), close };
}

/** Resolves when the agent's queue is empty (everything acknowledged by the control plane). */
export async function drained(agent: AgentRig, timeoutMs: number): Promise<number> {
  const client = agent.client(10_000);
  const t0 = performance.now();
  for (;;) {
    const q = await client.get<{ depth: number }>('/v1/queue').catch(() => undefined);
    if (q?.depth === 0) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`the agent's queue did not drain within ${timeoutMs} ms (depth ${q?.depth})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Lost, duplicated and moved against what the control plane stored of the chaos stream. */
export async function reconcileUpstream(cp: CpRig, tally: ProducerTally) {
  const stored = await cp.stored(CHAOS_STREAM);
  return reconcile(tally, stored);
}
