// `outpost radio sim`: one process hosts the simulated air and every emulated radio on it, each on its own
// socat pty, so several processes (a gateway, agents, manual `outpost radio listen`) share one air. A small
// HTTP API on a unix socket next to the ptys reports the air's accounting and injects faults.

import { mkdirSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { type MeshtasticEmulator, startMeshtasticEmulator } from '../firmware-bridge/emulator/meshtastic-emulator.ts';
import { type RNodeEmulator, startRNodeEmulator } from '../firmware-bridge/emulator/rnode-emulator.ts';
import { type AirStats, createSimulatedAir, type SimulatedAir } from '../firmware-bridge/emulator/simulated-air.ts';
import { RegionNumber } from '../firmware-bridge/meshtastic/lora-params.ts';
import type { RadioKind, RegionCode } from '../firmware-bridge/radio.ts';
import type { Logger } from '../protocol/log.ts';

export interface RadioSimOptions {
  readonly dir: string;
  readonly rnodes: number;
  readonly meshtastics: number;
  readonly lossRate: number;
  readonly timeScale: number;
  readonly region: RegionCode;
  readonly seed: number;
  /** Metres between neighbouring radios on a line (default 100). */
  readonly spacingM?: number;
  readonly log: Logger;
}

export interface SimRadio {
  readonly name: string;
  readonly kind: RadioKind;
  readonly path: string;
}

export interface RadioSimInfo {
  readonly dir: string;
  /** Unix socket of the control API: GET /v1/stats, POST /v1/loss?rate=R, POST /v1/radios/NAME/unplug|replug. */
  readonly control: string;
  readonly timeScale: number;
  readonly lossRate: number;
  readonly region: RegionCode;
  readonly radios: readonly SimRadio[];
}

export interface RadioSim {
  readonly info: RadioSimInfo;
  readonly air: SimulatedAir;
  stats(): { air: AirStats; radios: { name: string; kind: RadioKind; plugged: boolean }[] };
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Starts the air, the emulators and the control API. */
export async function startRadioSim(o: RadioSimOptions): Promise<RadioSim> {
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const air = createSimulatedAir({ timeScale: o.timeScale, lossRate: o.lossRate, seed: o.seed, log: o.log });
  const spacing = o.spacingM ?? 100;
  const rnodes: { name: string; emu: RNodeEmulator }[] = [];
  const meshes: { name: string; emu: MeshtasticEmulator }[] = [];
  let slot = 0;
  try {
    for (let i = 0; i < o.rnodes; i++) {
      const name = `rnode-${i}`;
      const emu = await startRNodeEmulator({
        dir: o.dir,
        name,
        air,
        region: o.region,
        position: { xM: spacing * slot++, yM: 0 },
        seed: o.seed + i,
        log: o.log,
      });
      rnodes.push({ name, emu });
    }
    for (let i = 0; i < o.meshtastics; i++) {
      const name = `meshtastic-${i}`;
      const emu = await startMeshtasticEmulator({
        dir: o.dir,
        name,
        air,
        nodeNum: 0x1000 + i,
        position: { xM: spacing * slot++, yM: 0 },
        longName: `Outpost sim ${i}`,
        shortName: `S${i}`,
        ...(o.region === 'US915' ? { lora: { region: RegionNumber.US } } : {}),
        seed: o.seed + 1000 + i,
        log: o.log,
      });
      meshes.push({ name, emu });
    }
  } catch (e) {
    for (const r of rnodes) await r.emu.close();
    for (const m of meshes) await m.emu.close();
    air.close();
    throw e;
  }
  const radios: SimRadio[] = [
    ...rnodes.map((r) => ({ name: r.name, kind: 'rnode' as const, path: r.emu.hostPath })),
    ...meshes.map((m) => ({ name: m.name, kind: 'meshtastic' as const, path: m.emu.hostPath })),
  ];
  const byName = new Map<string, RNodeEmulator | MeshtasticEmulator>([
    ...rnodes.map((r) => [r.name, r.emu] as const),
    ...meshes.map((m) => [m.name, m.emu] as const),
  ]);
  const stats = () => ({
    air: air.stats(),
    radios: radios.map((r) => ({ name: r.name, kind: r.kind, plugged: byName.get(r.name)!.state().plugged })),
  });
  const control = join(o.dir, 'sim.sock');
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sim');
    void (async () => {
      if (req.method === 'GET' && url.pathname === '/v1/stats') return json(res, 200, stats());
      if (req.method === 'POST' && url.pathname === '/v1/loss') {
        const rate = Number(url.searchParams.get('rate'));
        if (!(rate >= 0 && rate <= 1)) return json(res, 400, { error: 'rate must be 0..1' });
        air.setLossRate(rate);
        return json(res, 200, { lossRate: rate });
      }
      const m = /^\/v1\/radios\/([a-z0-9-]+)\/(unplug|replug)$/.exec(url.pathname);
      if (req.method === 'POST' && m) {
        const emu = byName.get(m[1]!);
        if (!emu) return json(res, 404, { error: `no radio ${m[1]}` });
        if (m[2] === 'unplug') await emu.unplug();
        else await emu.replug();
        return json(res, 200, { radio: m[1], plugged: emu.state().plugged });
      }
      return json(res, 404, { error: 'not found' });
    })().catch((e) => json(res, 500, { error: (e as Error).message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(control, () => resolve());
  });
  return {
    info: { dir: o.dir, control, timeScale: o.timeScale, lossRate: o.lossRate, region: o.region, radios },
    air,
    stats,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      for (const r of rnodes) await r.emu.close();
      for (const m of meshes) await m.emu.close();
      air.close();
    },
  };
}
