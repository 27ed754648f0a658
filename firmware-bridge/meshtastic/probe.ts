// `radio probe` for Meshtastic: open the port, wake the radio, ask for its config without the node
// database (nonce 69420), report who it is and how it transmits, say goodbye, close.

import { isOutpostError } from '../../protocol/errors.ts';
import type { Logger } from '../../protocol/log.ts';
import { silentLogger } from '../../protocol/log.ts';
import { RadioError } from '../errors.ts';
import type { RadioParams } from '../radio.ts';
import { wakeBytes } from './driver.ts';
import { MeshtasticError } from './errors.ts';
import { MODEM_PRESETS, REGIONS, radioParamsFromLoRaConfig } from './lora-params.ts';
import {
  type Channel,
  ChannelRole,
  createLoRaConfig,
  type DeviceMetadata,
  decodeFromRadio,
  encodeToRadio,
  isPlausibleFromRadio,
  type LoRaConfig,
  type MyNodeInfo,
  NONCE_ONLY_CONFIG,
  type NodeInfo,
} from './protobuf.ts';
import { clearHupcl, closeQuietly, openFailure, openMeshtasticPort, writeAll } from './serial-port.ts';
import { createStreamDecoder, encodeStreamFrame } from './stream-framer.ts';

export interface MeshtasticProbeResult {
  readonly kind: 'meshtastic';
  readonly path: string;
  readonly nodeNum: number;
  readonly nodeId: string;
  readonly longName: string;
  readonly shortName: string;
  readonly firmware: string;
  readonly hwModel: number;
  readonly rebootCount: number;
  readonly region: string;
  readonly preset: string;
  readonly hopLimit: number;
  readonly channels: number;
  readonly params: RadioParams;
  /** Console text the radio printed before it answered (its boot log, when it had just booted). */
  readonly consoleText: string;
}

export interface MeshtasticProbeOptions {
  /** Give up after this long without config_complete (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Clear HUPCL before opening (default: on Linux), so the probe's close does not reset the board (M4). */
  readonly clearHupcl?: boolean;
  readonly log?: Logger;
}

/**
 * Identifies the Meshtastic radio at `path`. Throws RadioError PORT_FAILED when the port cannot be
 * opened (or is absent) and MeshtasticError MT_NOT_DETECTED when nothing answered like Meshtastic.
 */
export async function probeMeshtastic(
  path: string,
  options: MeshtasticProbeOptions = {},
): Promise<MeshtasticProbeResult> {
  const log = options.log ?? silentLogger;
  const timeoutMs = options.timeoutMs ?? 5_000;
  if (options.clearHupcl ?? process.platform === 'linux') await clearHupcl(path, log);
  let port: Awaited<ReturnType<typeof openMeshtasticPort>>;
  try {
    port = await openMeshtasticPort(path);
  } catch (e) {
    throw openFailure(path, e) ?? new RadioError('PORT_FAILED', `${path} is not present`, { cause: e });
  }
  const decoder = createStreamDecoder({ accept: isPlausibleFromRadio });
  let consoleText = '';
  let myInfo: MyNodeInfo | undefined;
  let metadata: DeviceMetadata | undefined;
  let lora: LoRaConfig | undefined;
  const nodes: NodeInfo[] = [];
  const channels: Channel[] = [];
  try {
    const complete = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      port.on('data', (chunk: Buffer) => {
        for (const ev of decoder.push(new Uint8Array(chunk))) {
          if (ev.kind === 'debug') consoleText = (consoleText + ev.text).slice(-4096);
          if (ev.kind !== 'frame') continue;
          const p = decodeFromRadio(ev.body).payload;
          if (p.kind === 'myInfo') myInfo = p.myInfo;
          else if (p.kind === 'nodeInfo') nodes.push(p.nodeInfo);
          else if (p.kind === 'metadata') metadata = p.metadata;
          else if (p.kind === 'channel') channels.push(p.channel);
          else if (p.kind === 'config' && p.config.kind === 'lora') lora = p.config.lora;
          else if (p.kind === 'configCompleteId' && p.configCompleteId === NONCE_ONLY_CONFIG) {
            clearTimeout(timer);
            resolve(true);
          }
        }
      });
      port.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    await writeAll(port, wakeBytes(), 2_000);
    await new Promise((r) => setTimeout(r, 100));
    await writeAll(
      port,
      encodeStreamFrame(encodeToRadio({ payload: { kind: 'wantConfigId', wantConfigId: NONCE_ONLY_CONFIG } })),
      2_000,
    );
    const ok = await complete;
    const own = myInfo && nodes.find((n) => n.num === myInfo!.myNodeNum);
    if (!ok || !myInfo || !own?.user) {
      throw new MeshtasticError('MT_NOT_DETECTED', `no Meshtastic config from ${path} within ${timeoutMs} ms`, {
        details: { path, consoleBytes: consoleText.length },
      });
    }
    await writeAll(
      port,
      encodeStreamFrame(encodeToRadio({ payload: { kind: 'disconnect', disconnect: true } })),
      2_000,
    ).catch(() => undefined);
    const l = lora ?? createLoRaConfig({ usePreset: true });
    const primary = channels.find((c) => c.role === ChannelRole.PRIMARY);
    return {
      kind: 'meshtastic',
      path,
      nodeNum: myInfo.myNodeNum,
      nodeId: own.user.id,
      longName: own.user.longName,
      shortName: own.user.shortName,
      firmware: metadata?.firmwareVersion ?? 'unknown',
      hwModel: own.user.hwModel,
      rebootCount: myInfo.rebootCount,
      region: REGIONS[l.region]?.name ?? `REGION_${l.region}`,
      preset: l.usePreset ? (MODEM_PRESETS[l.modemPreset]?.name ?? 'Invalid') : 'Custom',
      hopLimit: l.hopLimit,
      channels: channels.filter((c) => c.role !== ChannelRole.DISABLED).length,
      params: radioParamsFromLoRaConfig(l, primary?.settings?.name ?? ''),
      consoleText,
    };
  } catch (e) {
    if (isOutpostError(e)) throw e;
    throw new RadioError('PORT_FAILED', `talking to ${path} failed: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  } finally {
    await closeQuietly(port);
  }
}
