// A LoRa site for chaos runs, every part a real process: `outpost radio sim` (one simulated air, one emulated RNode
// per agent plus the gateway's), the control plane, `outpost gateway run` on the first radio with its backhaul
// straight to the control plane, and LoRa-only agents (enrolled over IP once, then [uplink] mode = "lora").

import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { RadioSimInfo } from '../../../cli/radio-sim.ts';
import { DUTY_CYCLE_WINDOW_MS } from '../../../firmware-bridge/duty-cycle.ts';
import type { AirStats } from '../../../firmware-bridge/emulator/simulated-air.ts';
import type { GatewayStatus } from '../../../gateway/gateway.ts';
import { getFromGateway } from '../../../gateway/local-api.ts';
import { CLI, childEnv } from '../../support/agent-process.ts';
import { type AgentRig, agentRig, CHAOS_STREAM, type ProducerTally, reconcile } from './agent-rig.ts';
import { type CpRig, cpRig } from './cp-rig.ts';
import { type ProcessSpec, type SupervisedProcess, superviseProcess } from './process.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/** The simulated air runs this much faster than the wall clock (agents and gateway are told so). */
export const SITE_TIME_SCALE = 20;

/**
 * A sensor's pace per agent: 3 readings a second of wall clock, 540 an hour of the ×20 air. Well inside what an
 * agent's half share of the EU868 1 % duty cycle carries with room for retransmissions; at twice this, a long run of
 * faults exhausts the budget and the agents go quiet for minutes, as the law says they must.
 */
export const SENSOR_PACE = { periodMs: 1000, batch: 3 } as const;

/** Each agent's share of its region's duty-cycle budget (the agents' `[lora] duty_cycle_share`, set below). */
export const AGENT_DUTY_CYCLE_SHARE = 0.5;

/** The law's observation window (one hour of air) in wall-clock ms at the site's time scale: 180 s. */
export const LAW_WINDOW_WALL_MS = DUTY_CYCLE_WINDOW_MS / SITE_TIME_SCALE;

const RNODE_PARAMS = `region = "EU868"
frequency_hz = 867200000
bandwidth_hz = 125000
spreading_factor = 7
coding_rate = 5
tx_power_dbm = 14`;

export interface LoraAgent {
  readonly rig: AgentRig;
  readonly device: string;
  /** What the producers of this agent offered and what it acknowledged. */
  readonly tally: ProducerTally;
}

export interface LoraSite {
  readonly cp: CpRig;
  readonly sim: SupervisedProcess;
  readonly air: RadioSimInfo;
  readonly gateway: SupervisedProcess;
  readonly gatewayConfig: string;
  /** The gateway's state directory as this process reaches it (a tiny disk's host path when on one). */
  readonly gatewayStateDir: string;
  readonly agents: readonly LoraAgent[];
  readonly backhaul?: TcpProxy;
  /** The gateway's own status through its local API (throws while it is down). */
  gatewayStatus(): Promise<GatewayStatus>;
  /** POST to the radio sim's control API (e.g. `/v1/radios/rnode-0/unplug`). */
  simPost(path: string): Promise<unknown>;
  /** The simulated air's own accounting: per emulated radio, frames and airtime sent, budget used, frames heard. */
  airStats(): Promise<AirStats>;
  /** Lost, duplicated and moved over every agent, against what the control plane stored per device. */
  reconcile(): Promise<{ lost: number; duplicated: number; moved: number; distinct: number }>;
  close(): Promise<void>;
}

export interface LoraSiteOptions {
  readonly dir: string;
  readonly agents: number;
  /** The gateway's state directory (default DIR/gateway), e.g. a tiny disk. */
  readonly gatewayStateDir?: string;
  /** Where this process reaches the gateway's state directory (default the same path). */
  readonly gatewayStateHostDir?: string;
  /** Wraps the gateway's command line (nsenter into a tiny disk). */
  readonly gatewayWrap?: ProcessSpec['wrap'];
  /** TOML appended to the gateway's config. */
  readonly gatewayToml?: string;
  /** Put the misbehaving TCP proxy on the gateway's backhaul (e.g. to delay acknowledgements). */
  readonly backhaulProxy?: boolean;
  readonly seed?: number;
}

function simRequest(socketPath: string, method: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`radio sim ${path}: ${body}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`radio sim ${path}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

/** Starts the whole site and waits until the gateway is online and every agent's LoRa uplink is connected. */
export async function startLoraSite(o: LoraSiteOptions): Promise<LoraSite> {
  const started: SupervisedProcess[] = [];
  let backhaul: TcpProxy | undefined;
  const close = async () => {
    for (const p of started.reverse()) {
      // The radio sim closes its emulators' socat pty pairs on SIGTERM; kill -9 alone would leave them running.
      if (p.name === 'radio-sim') await Promise.race([p.stop('SIGTERM'), new Promise((r) => setTimeout(r, 5_000))]);
      await p.kill9();
    }
    await backhaul?.close();
  };
  try {
    const sim = superviseProcess({
      name: 'radio-sim',
      command: process.execPath,
      args: [
        CLI,
        'radio',
        'sim',
        '--rnode',
        String(o.agents + 1),
        '--loss',
        '0',
        '--time-scale',
        String(SITE_TIME_SCALE),
        '--region',
        'EU868',
        '--dir',
        join(o.dir, 'air'),
        '--seed',
        String(o.seed ?? 7),
        '--json',
      ],
      env: childEnv(),
      // --json prints the air's description as one pretty-printed object on stdout.
      ready: /^\}$/,
    });
    started.push(sim);
    await sim.start();
    const printed = sim.lines().map((l) => l.text);
    const air = JSON.parse(printed.slice(printed.indexOf('{'), printed.indexOf('}') + 1).join('\n')) as RadioSimInfo;

    const cp = await cpRig({ dir: o.dir });
    started.push(cp.process);
    await cp.process.start();
    if (o.backhaulProxy) backhaul = await startTcpProxy({ targetPort: cp.port });

    const gatewayStateDir = o.gatewayStateDir ?? join(o.dir, 'gateway');
    const gatewayConfig = join(o.dir, 'gateway.toml');
    writeFileSync(
      gatewayConfig,
      `[gateway]
name = "chaos-gw"
state_dir = "${gatewayStateDir}"

[upstream]
url = "ws://127.0.0.1:${backhaul?.port ?? cp.port}/v1/hub/${cp.tid}"
tenant = "${cp.tid}"
http_url = "${cp.url}"
heartbeat_s = 2
reconnect_initial_s = 0.2
reconnect_max_s = 1

[[radio]]
name = "rnode0"
kind = "rnode"
path = "${air.radios[0]!.path}"
${RNODE_PARAMS}

[api]
socket = "${join(o.dir, 'gateway.sock')}"

[checks]
device_frames_per_min = 600
device_burst = 64

[simulation]
time_scale = ${SITE_TIME_SCALE}
${o.gatewayToml ?? ''}`,
    );
    await cp.enrollGateway(gatewayConfig, o.gatewayWrap);
    const gateway = superviseProcess({
      name: 'gateway',
      command: process.execPath,
      args: [CLI, 'gateway', 'run', '--config', gatewayConfig, '--json'],
      env: childEnv(),
      ready: /"event": ?"running"/,
      ...(o.gatewayWrap ? { wrap: o.gatewayWrap } : {}),
    });
    started.push(gateway);
    await gateway.start();
    const gatewayStatus = async () =>
      JSON.parse(await getFromGateway(join(o.dir, 'gateway.sock'), '/v1/status')) as GatewayStatus;

    const agents: LoraAgent[] = [];
    for (let i = 1; i <= o.agents; i++) {
      const dir = join(o.dir, `sensor-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const rig = agentRig({
        dir,
        name: `sensor-${i}`,
        extraToml: `[uplink]
mode = "lora"

[lora]
time_scale = ${SITE_TIME_SCALE}
ack_timeout_s = 40
frames_per_delivery = 2
duty_cycle_share = ${AGENT_DUTY_CYCLE_SHARE}

[[radios]]
kind = "rnode"
path = "${air.radios[i]!.path}"
role = "uplink"
${RNODE_PARAMS}
`,
      });
      const device = await cp.enroll(rig);
      started.push(rig.process);
      await rig.process.start();
      agents.push({ rig, device, tally: { sent: 0, acked: new Map(), failedRequests: 0, failures: new Map() } });
    }
    for (const a of agents) await a.rig.process.waitForLine(/state=connected/, 60_000, 0);
    for (let t0 = performance.now(); ; ) {
      const s = await gatewayStatus().catch(() => undefined);
      if (s?.link.summary === 'ok') break;
      if (performance.now() - t0 > 60_000) throw new Error(`gateway not online: ${JSON.stringify(s?.link)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      cp,
      sim,
      air,
      gateway,
      gatewayConfig,
      gatewayStateDir: o.gatewayStateHostDir ?? gatewayStateDir,
      agents,
      ...(backhaul ? { backhaul } : {}),
      gatewayStatus,
      simPost: (path) => simRequest(air.control, 'POST', path),
      airStats: async () => ((await simRequest(air.control, 'GET', '/v1/stats')) as { air: AirStats }).air,
      async reconcile() {
        const sum = { lost: 0, duplicated: 0, moved: 0, distinct: 0 };
        for (const a of agents) {
          const r = reconcile(a.tally, await cp.stored(CHAOS_STREAM, a.device));
          sum.lost += r.lost;
          sum.duplicated += r.duplicated;
          sum.moved += r.moved;
          sum.distinct += r.distinct;
        }
        return sum;
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Every `periodMs`, each agent is offered `batch` records (values unique across the site) through its local API —
 * a sensor's pace, not a flood: LoRa carries a few frames a second. Never retries a failed request.
 */
export function startPacedProducers(
  site: LoraSite,
  o: { periodMs: number; batch: number; random: () => number },
): { stop(): Promise<void> } {
  let stopped = false;
  let next = 1;
  const wakers = new Set<() => void>();
  const loops = site.agents.map(async (a) => {
    const client = a.rig.client(10_000);
    while (!stopped) {
      const values = Array.from({ length: o.batch }, () => next++);
      a.tally.sent += values.length;
      try {
        const r = await client.post<{ seqs: number[] }>('/v1/telemetry', {
          records: values.map((value) => ({ stream: CHAOS_STREAM, value })),
        });
        for (const [i, v] of values.entries()) a.tally.acked.set(v, r.seqs[i]!);
      } catch (e) {
        a.tally.failedRequests++;
        const code = (e as { code?: string }).code ?? 'ERROR';
        a.tally.failures.set(code, (a.tally.failures.get(code) ?? 0) + 1);
      }
      // Jittered so the agents do not transmit in lockstep; stop() cuts the wait short.
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(t);
          wakers.delete(wake);
          resolve();
        };
        const t = setTimeout(wake, o.periodMs * (0.5 + o.random()));
        wakers.add(wake);
      });
    }
  });
  return {
    async stop() {
      stopped = true;
      for (const w of [...wakers]) w();
      await Promise.all(loops);
    },
  };
}

/** What the waits for forwarding saw of agents kept quiet by the duty-cycle law (see whileForwarding). */
export interface LawTally {
  /** Waits of a second or more during which every agent had spent its share of the budget and the air was silent. */
  waits: number;
  /** The longest such wait, wall ms. */
  longestMs: number;
  /** All of them together, wall ms. */
  totalMs: number;
}

export const emptyLawTally = (): LawTally => ({ waits: 0, longestMs: 0, totalMs: 0 });

/**
 * An agent whose emulated radio has this much of the law's budget used (the air's own accounting) may not send a
 * full delivery (two frames of up to 254 bytes at SF7, under 1 s of air, counted 1/share times) until old airtime
 * leaves the window.
 */
const HELD_BY_LAW = AGENT_DUTY_CYCLE_SHARE - 0.03;

/**
 * Resolves with the gateway's status once it has forwarded `frames` more frames upstream than now.
 *
 * `timeoutMs` bounds how long the gateway may forward nothing while frames could reach it. Time during which
 * every agent has spent its share of the EU868 budget (by the simulated air's accounting, not the agents' word)
 * and no frame reaches the gateway's radio is the law at work, not a fault: it is not counted against `timeoutMs`
 * (but bounded by one law window more) and is tallied in `law`. The failure says which it was: frames the air
 * delivered to the gateway's radio that the gateway never counted (a deaf gateway), agents silent with budget
 * left, or a gateway that hears and stores but does not forward.
 */
export async function whileForwarding(
  site: LoraSite,
  frames: number,
  timeoutMs: number,
  law: LawTally = emptyLawTally(),
): Promise<GatewayStatus> {
  const t0 = performance.now();
  const gatewayPort = site.air.radios[0]!.name;
  const agentPorts = site.agents.map((_, i) => site.air.radios[i + 1]!.name);
  let start: number | undefined;
  let air: AirStats | undefined;
  let airAtStart: AirStats | undefined;
  let airPolledAt = Number.NEGATIVE_INFINITY;
  let lastPollAt = t0;
  let heldMs = 0;
  let heldNow = 0;
  let radioAtStart: number | undefined;
  const settleHeld = () => {
    // Counted when longer than a second (shorter ones are the gap between two polls); all of it is excluded.
    if (heldNow >= 1_000) {
      law.waits++;
      law.longestMs = Math.max(law.longestMs, heldNow);
      law.totalMs += heldNow;
    }
    heldNow = 0;
  };
  for (;;) {
    const now = performance.now();
    const s = await site.gatewayStatus().catch(() => undefined);
    if (s) {
      start ??= s.uplink.forwarded;
      radioAtStart ??= s.radios[0]?.frames.received;
      if (s.uplink.forwarded >= start + frames) {
        settleHeld();
        return s;
      }
    }
    if (now - airPolledAt >= 250) {
      const previous = air;
      air = await site.airStats().catch(() => air);
      airAtStart ??= air;
      airPolledAt = now;
      // Held by law over the last poll: every agent at its share, and nothing reached the gateway's radio.
      const heard = (a: AirStats | undefined) => a?.ports[gatewayPort]?.rx.delivered ?? 0;
      const held =
        air !== undefined &&
        previous !== undefined &&
        heard(air) === heard(previous) &&
        agentPorts.every((p) => (air!.ports[p]?.budgetUsed ?? 0) >= HELD_BY_LAW);
      if (held) {
        heldMs += now - lastPollAt;
        heldNow += now - lastPollAt;
      } else settleHeld();
      lastPollAt = now;
    }
    const elapsed = now - t0;
    if (elapsed - heldMs > timeoutMs || elapsed > timeoutMs + LAW_WINDOW_WALL_MS) {
      settleHeld();
      throw new Error(
        `the gateway forwarded no ${frames} more frames within ${Math.round(elapsed)} ms (${Math.round(heldMs)} ms of it with every agent held by the duty-cycle law): ${stallVerdict(s, radioAtStart, air, airAtStart, gatewayPort, agentPorts)}; radio ${JSON.stringify(s?.radios[0]?.frames)}, uplink ${JSON.stringify(s?.uplink)}\n${site.gateway.tail(10)}\n${site.agents.map((a) => a.rig.process.tail(8)).join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Why nothing was forwarded, from the air's accounting against the gateway's own counters. */
function stallVerdict(
  s: GatewayStatus | undefined,
  radioAtStart: number | undefined,
  air: AirStats | undefined,
  airAtStart: AirStats | undefined,
  gatewayPort: string,
  agentPorts: readonly string[],
): string {
  if (!s || !air || !airAtStart) return 'no status from the gateway or the air';
  const port = (a: AirStats, id: string) => a.ports[id];
  const delivered = (port(air, gatewayPort)?.rx.delivered ?? 0) - (port(airAtStart, gatewayPort)?.rx.delivered ?? 0);
  const counted = (s.radios[0]?.frames.received ?? 0) - (radioAtStart ?? 0);
  const agents = agentPorts
    .map((id) => {
      const now = port(air, id);
      const then = port(airAtStart, id);
      return `${id} sent ${(now?.tx.frames ?? 0) - (then?.tx.frames ?? 0)} frames, ${Math.round(((now?.budgetUsed ?? 0) / AGENT_DUTY_CYCLE_SHARE) * 100)} % of its share used`;
    })
    .join('; ');
  const why =
    delivered > counted
      ? 'GATEWAY DEAF: the air delivered frames to its radio that it never counted'
      : delivered === 0
        ? "AGENTS SILENT: no frame reached the gateway's radio"
        : 'the gateway heard frames but forwarded none';
  return `${why} (air delivered ${delivered} to ${gatewayPort}, the gateway counted ${counted}; ${agents})`;
}

/** Resolves once every agent's queue is empty (the control plane acknowledged everything over the air). */
export async function loraDrained(site: LoraSite, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  const clients = site.agents.map((a) => a.rig.client(10_000));
  for (;;) {
    const depths = await Promise.all(
      clients.map((c) =>
        c.get<{ depth: number }>('/v1/queue').then(
          (q) => q.depth,
          () => -1,
        ),
      ),
    );
    if (depths.every((d) => d === 0)) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`the agents' queues did not drain within ${timeoutMs} ms (depths ${depths.join(', ')})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Resolves with the gateway's status once it holds frames the control plane has not acknowledged yet. */
export async function whilePending(site: LoraSite, timeoutMs: number): Promise<GatewayStatus> {
  const t0 = performance.now();
  for (;;) {
    const s = await site.gatewayStatus().catch(() => undefined);
    if (s && s.uplink.frames > 0) return s;
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`the gateway held no unacknowledged frame within ${timeoutMs} ms\n${site.gateway.tail(20)}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
