// What `outpost radio sim|probe|send|listen` do (cli/commands/radio.ts declares them and loads this module only
// when one runs, so other commands never load the serial-port addon).

import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createMeshtasticRadio } from '../firmware-bridge/meshtastic/driver.ts';
import { probeMeshtastic } from '../firmware-bridge/meshtastic/probe.ts';
import type { Radio, RadioKind, ReceivedPacket, RegionCode } from '../firmware-bridge/radio.ts';
import { createRNodeRadio, type RNodeParams } from '../firmware-bridge/rnode/driver.ts';
import { probeRNode } from '../firmware-bridge/rnode/probe.ts';
import { OutpostError } from '../protocol/errors.ts';
import { createLogger, type Logger } from '../protocol/log.ts';
import { decodeLoraHeader } from '../protocol/lora.ts';
import { type CommandContext, optString, print } from './command.ts';
import { EXIT } from './exit.ts';
import { createNativeAddonLoader } from './native-addons.ts';
import { startRadioSim } from './radio-sim.ts';

function usage(message: string): OutpostError {
  return new OutpostError('USAGE', message);
}

function number(ctx: CommandContext, name: string, fallback: number, min: number, max: number): number {
  const text = optString(ctx, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) throw usage(`--${name} must be a number in ${min}..${max}`);
  return n;
}

function region(ctx: CommandContext): RegionCode {
  const r = optString(ctx, 'region') ?? 'EU868';
  if (r !== 'EU868' && r !== 'US915' && r !== 'ANY') throw usage('--region is EU868, US915 or ANY');
  return r;
}

function stderrLogger(ctx: CommandContext): Logger {
  return createLogger({
    sink: (line) => ctx.io.stderr(`${line}\n`),
    level: ctx.values.verbose === true ? 'debug' : 'warning',
    format: 'logfmt',
  });
}

/** Resolves when the process is asked to stop. */
function stopped(ctx: CommandContext): Promise<void> {
  return new Promise((r) => {
    if (ctx.io.stopSignal.aborted) r();
    else ctx.io.stopSignal.addEventListener('abort', () => r(), { once: true });
  });
}

function rnodeParams(ctx: CommandContext): RNodeParams {
  return {
    freqHz: number(ctx, 'frequency-hz', 867_200_000, 137_000_000, 3_000_000_000),
    bandwidthHz: number(ctx, 'bandwidth-hz', 125_000, 7_800, 1_625_000),
    spreadingFactor: number(ctx, 'sf', 7, 5, 12),
    codingRate: number(ctx, 'cr', 5, 5, 8),
    txPowerDbm: number(ctx, 'tx-power-dbm', 14, 0, 37),
    region: region(ctx),
  };
}

/** Which firmware is on `path`: --kind when given, else probe (RNode first: its detect is quick and harmless). */
async function kindOf(ctx: CommandContext, path: string, log: Logger): Promise<RadioKind> {
  const k = optString(ctx, 'kind');
  if (k === 'rnode' || k === 'meshtastic') return k;
  if (k !== undefined) throw usage('--kind is rnode or meshtastic');
  try {
    await probeRNode(path, { log, bootDelayMs: 100, detectAttempts: 2, detectTimeoutMs: 500 });
    return 'rnode';
  } catch {
    await probeMeshtastic(path, { log, timeoutMs: 5_000 });
    return 'meshtastic';
  }
}

function openRadio(ctx: CommandContext, kind: RadioKind, path: string, log: Logger): Radio {
  if (kind === 'rnode') return createRNodeRadio({ path, params: rnodeParams(ctx), log, timing: { bootDelayMs: 200 } });
  return createMeshtasticRadio({ path, log, wantAckByDefault: false });
}

async function waitReady(radio: Radio, timeoutMs: number): Promise<void> {
  if (radio.status().state === 'ready') return;
  const it = radio.statusChanges()[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const s = radio.status();
      reject(
        new OutpostError(
          'UNAVAILABLE',
          `radio at ${radio.path} not ready within ${timeoutMs} ms (${s.state}${'reason' in s ? `: ${s.reason}` : ''})`,
        ),
      );
    }, timeoutMs);
  });
  try {
    for (;;) {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new OutpostError('UNAVAILABLE', 'radio closed');
      if (r.value.state === 'ready') return;
    }
  } finally {
    clearTimeout(timer);
    await it.return?.();
  }
}

function describePacket(p: ReceivedPacket): Record<string, unknown> {
  let lora: Record<string, unknown> | undefined;
  try {
    const h = decodeLoraHeader(p.payload).header;
    lora = {
      type: h.type,
      direction: h.direction,
      shortId: Buffer.from(h.shortId).toString('hex'),
      seq: h.seq,
      ...(h.fragment ? { fragment: `${h.fragment.index + 1}/${h.fragment.count}` } : {}),
    };
  } catch {
    // not an Outpost LoRa frame: shown as bytes only
  }
  return {
    receivedAt: new Date(p.receivedAtMs).toISOString(),
    bytes: p.payload.length,
    rssiDbm: Number.isFinite(p.rssiDbm) ? p.rssiDbm : null,
    snrDb: Number.isFinite(p.snrDb) ? p.snrDb : null,
    ...(p.from ? { from: p.from } : {}),
    hex: Buffer.from(p.payload).toString('hex'),
    ...(lora ? { lora } : {}),
  };
}

export async function runSim(ctx: CommandContext): Promise<number> {
  const rnodes = number(ctx, 'rnode', 2, 0, 64);
  const meshtastics = number(ctx, 'meshtastic', 0, 0, 64);
  if (!Number.isInteger(rnodes) || !Number.isInteger(meshtastics) || rnodes + meshtastics === 0) {
    throw usage('--rnode and --meshtastic are whole numbers, at least one radio in all');
  }
  const dir = resolve(ctx.io.cwd, optString(ctx, 'dir') ?? join(tmpdir(), `outpost-radio-sim-${process.pid}`));
  createNativeAddonLoader({ env: ctx.io.env }).load('serialport');
  const simulation = await startRadioSim({
    dir,
    rnodes,
    meshtastics,
    lossRate: number(ctx, 'loss', 0, 0, 1),
    timeScale: number(ctx, 'time-scale', 1, 0.001, 100_000),
    region: region(ctx),
    seed: number(ctx, 'seed', 1, 0, 2 ** 31),
    log: stderrLogger(ctx),
  });
  const info = simulation.info;
  print(ctx, info, () =>
    [
      `simulated air: ${info.radios.length} radios, loss ${info.lossRate}, time ×${info.timeScale}, region ${info.region}`,
      ...info.radios.map((r) => `  ${r.kind.padEnd(10)} ${r.path}`),
      `control: ${info.control} (GET /v1/stats)`,
      'Ctrl-C stops the simulation.',
    ].join('\n'),
  );
  await stopped(ctx);
  await simulation.close();
  return EXIT.ok;
}

export async function runProbe(ctx: CommandContext): Promise<number> {
  const path = ctx.positionals[0];
  if (!path || ctx.positionals.length > 1) throw usage('outpost radio probe PATH');
  createNativeAddonLoader({ env: ctx.io.env }).load('serialport');
  const log = stderrLogger(ctx);
  let result: Record<string, unknown>;
  try {
    const r = await probeRNode(path, { log, bootDelayMs: 200, detectAttempts: 2, detectTimeoutMs: 500 });
    result = { kind: 'rnode', ...r };
  } catch (rnodeError) {
    try {
      result = { ...(await probeMeshtastic(path, { log })) };
    } catch (meshError) {
      throw new OutpostError(
        'UNAVAILABLE',
        `no RNode or Meshtastic radio answered on ${path} (${(rnodeError as Error).message}; ${(meshError as Error).message})`,
      );
    }
  }
  print(ctx, result, () =>
    Object.entries(result)
      .filter(([k]) => k !== 'consoleText')
      .map(([k, v]) => `${k.padEnd(18)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join('\n'),
  );
  return EXIT.ok;
}

export async function runSend(ctx: CommandContext): Promise<number> {
  const path = ctx.positionals[0];
  if (!path || ctx.positionals.length > 1) throw usage('outpost radio send PATH (--hex HEX | --text TEXT)');
  const hex = optString(ctx, 'hex');
  const text = optString(ctx, 'text');
  if ((hex === undefined) === (text === undefined)) throw usage('give exactly one of --hex and --text');
  if (hex !== undefined && !/^([0-9a-fA-F]{2})+$/.test(hex)) throw usage('--hex needs an even number of hex digits');
  const payload = hex !== undefined ? Buffer.from(hex, 'hex') : Buffer.from(text!, 'utf8');
  const count = number(ctx, 'count', 1, 1, 10_000);
  createNativeAddonLoader({ env: ctx.io.env }).load('serialport');
  const log = stderrLogger(ctx);
  const radio = openRadio(ctx, await kindOf(ctx, path, log), path, log);
  const outcomes: unknown[] = [];
  try {
    void radio.open();
    await waitReady(radio, 15_000);
    for (let i = 0; i < count; i++) {
      const o = await radio.send(new Uint8Array(payload), { signal: ctx.io.stopSignal });
      outcomes.push(o);
      if (!ctx.json)
        ctx.io.stdout(
          `${i + 1}: ${o.state}${'airtimeMs' in o ? ` (${o.airtimeMs.toFixed(1)} ms on air)` : ''}${'reason' in o ? `: ${o.reason}` : ''}\n`,
        );
      if (o.state === 'failed') break;
    }
  } finally {
    await radio.close();
  }
  if (ctx.json) print(ctx, { path, kind: radio.kind, bytes: payload.length, outcomes }, () => '');
  return outcomes.every((o) => (o as { state: string }).state !== 'failed') ? EXIT.ok : EXIT.failure;
}

export async function runListen(ctx: CommandContext): Promise<number> {
  const path = ctx.positionals[0];
  if (!path || ctx.positionals.length > 1) throw usage('outpost radio listen PATH');
  const count = number(ctx, 'count', Number.POSITIVE_INFINITY, 1, Number.POSITIVE_INFINITY);
  createNativeAddonLoader({ env: ctx.io.env }).load('serialport');
  const log = stderrLogger(ctx);
  const radio = openRadio(ctx, await kindOf(ctx, path, log), path, log);
  let n = 0;
  try {
    void radio.open();
    await waitReady(radio, 15_000);
    ctx.io.stderr(`listening on ${path} (${radio.kind}); Ctrl-C stops\n`);
    const it = radio.packets()[Symbol.asyncIterator]();
    const stop = stopped(ctx).then(() => ({ done: true as const, value: undefined }));
    while (n < count) {
      const r = await Promise.race([it.next(), stop]);
      if (r.done) break;
      n++;
      const d = describePacket(r.value);
      if (ctx.json) ctx.io.stdout(`${JSON.stringify(d)}\n`);
      else {
        const lora = d.lora as Record<string, unknown> | undefined;
        ctx.io.stdout(
          `${d.receivedAt} ${String(d.bytes).padStart(3)} B rssi ${d.rssiDbm} dBm snr ${d.snrDb} dB${lora ? ` ${lora.type} ${lora.shortId} seq ${lora.seq}${lora.fragment ? ` frag ${lora.fragment}` : ''}` : ''} ${String(d.hex).slice(0, 64)}${String(d.hex).length > 64 ? '…' : ''}\n`,
        );
      }
    }
    await it.return?.();
  } finally {
    await radio.close();
  }
  return EXIT.ok;
}
