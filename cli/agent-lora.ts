// Wires the agent's LoRa uplink from its configuration ([uplink] mode, [lora], [[radios]]): the radio driver, the
// link's time (scaled only with a simulated air), and enrollment over LoRa for a device that never had IP.

import { randomBytes } from 'node:crypto';
import type { AgentConfig } from '../agent/config.ts';
import { loadIdentity } from '../agent/identity.ts';
import { createLoraLink } from '../agent/lora-link.ts';
import { loadLoraKey, writeLoraSession } from '../agent/lora-session.ts';
import { createLoraUplink, type LoraUplink } from '../agent/lora-uplink.ts';
import type { AgentPaths } from '../agent/paths.ts';
import { rnodePreambleSymbols } from '../firmware-bridge/airtime.ts';
import { createRealtimeScheduler } from '../firmware-bridge/emulator/air-scheduler.ts';
import { createMeshtasticRadio } from '../firmware-bridge/meshtastic/driver.ts';
import type { Radio, RadioParams, RegionCode } from '../firmware-bridge/radio.ts';
import { createRNodeRadio, type RNodeParams } from '../firmware-bridge/rnode/driver.ts';
import { systemClock } from '../protocol/clock.ts';
import { OutpostError } from '../protocol/errors.ts';
import type { Logger } from '../protocol/log.ts';
import { LORA_PROFILES } from '../protocol/lora.ts';

type RadioEntry = AgentConfig['radios'][number];

function region(r: string): RegionCode {
  return r === 'EU868' || r === 'US915' ? r : 'ANY';
}

/** The uplink radio's driver and what the link needs to know about it. */
export function agentRadio(
  config: AgentConfig,
  log: Logger,
): { radio: Radio; params?: RadioParams; maxFrameBytes: number; entry: RadioEntry } {
  const entry = config.radios[config.lora.radio];
  if (entry?.role !== 'uplink') {
    throw new OutpostError('CONFIG_INVALID', `[[radios]] entry ${config.lora.radio} with role "uplink" is needed`);
  }
  const dutyCycle = config.lora.time_scale === 1 ? ('enforce' as const) : ('account' as const);
  if (entry.kind === 'rnode') {
    const params: RNodeParams = {
      freqHz: entry.frequency_hz,
      bandwidthHz: entry.bandwidth_hz,
      spreadingFactor: entry.spreading_factor,
      codingRate: entry.coding_rate,
      txPowerDbm: entry.tx_power_dbm,
      region: region(entry.region),
    };
    return {
      radio: createRNodeRadio({ path: entry.path, params, clock: systemClock, log, dutyCycle }),
      params: { ...params, preambleSymbols: rnodePreambleSymbols(params) },
      maxFrameBytes: LORA_PROFILES.rnode.maxFrameBytes,
      entry,
    };
  }
  return {
    radio: createMeshtasticRadio({
      path: entry.path,
      clock: systemClock,
      log,
      channel: entry.channel_index ?? 0,
      dutyCycle,
      wantAckByDefault: false,
    }),
    maxFrameBytes: LORA_PROFILES.meshtastic.maxFrameBytes,
    entry,
  };
}

/** The LoRa uplink through the configured uplink radio (its driver opens when the agent starts the link). */
export function agentLoraUplink(config: AgentConfig, log: Logger): LoraUplink {
  const { radio, params, maxFrameBytes } = agentRadio(config, log.child({ radio: 'uplink' }));
  return createLoraUplink({
    radio,
    ...(params ? { params } : {}),
    maxFrameBytes,
    clock: systemClock,
    timers: createRealtimeScheduler({ timeScale: config.lora.time_scale }),
    log,
    dutyCycleShare: config.lora.duty_cycle_share,
    heartbeatIntervalMs: config.lora.heartbeat_s * 1000,
    ackTimeoutMs: config.lora.ack_timeout_s * 1000,
    framesPerDelivery: config.lora.frames_per_delivery,
  });
}

/**
 * Enrollment over LoRa (lora-frames.md §4.10) for a device that never had IP: the enroll token is entered here, on
 * the device, and never goes on air; the control plane must already hold this device's manifest (its hash is sent).
 * Writes lora-session.json. The agent must not be running (it would hold the radio).
 */
export async function enrollOverLora(input: {
  readonly config: AgentConfig;
  readonly paths: AgentPaths;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly token: string;
  readonly manifestHash: Uint8Array;
  readonly timeoutMs: number;
  readonly log: Logger;
}): Promise<{ did: string; tid: string }> {
  const identity = loadIdentity({ keyFile: input.paths.identityKeyFile, env: input.env, create: true });
  const x = loadLoraKey(input.paths.stateDir);
  const { radio, params, maxFrameBytes } = agentRadio(input.config, input.log);
  const timers = createRealtimeScheduler({ timeScale: input.config.lora.time_scale });
  // Enroll requests take seqs from a random start: the session's own counter begins after enrollment.
  let seq = randomBytes(3).readUIntBE(0, 3);
  const link = createLoraLink({
    radio,
    ...(params ? { params } : {}),
    maxFrameBytes,
    seq: {
      take: (count) => {
        const first = seq + 1;
        seq += count;
        return { first, count };
      },
    },
    handlers: { toolCall: async () => ({ status: 'error', durationMs: 0, value: null }) },
    timers,
    clock: systemClock,
    log: input.log,
  });
  link.start();
  void radio.open();
  try {
    const r = await link.enroll({
      keys: { seed: identity.seed, publicKey: identity.publicKey },
      x25519Public: x.publicKey,
      token: input.token,
      manifestHash: input.manifestHash,
      retryMs: Math.max(5_000, input.config.lora.ack_timeout_s * 1000),
      timeoutMs: input.timeoutMs,
    });
    if (!r) throw new OutpostError('UNAVAILABLE', 'no enrollment answer over LoRa (is a gateway in range and online?)');
    if (r.status !== 'accepted' || !r.controlPlaneX25519 || !r.tid) {
      throw new OutpostError('DENIED', `the control plane answered ${r.status}`);
    }
    writeLoraSession(input.paths.stateDir, { tid: r.tid, controlPlaneX25519: r.controlPlaneX25519, via: 'lora' });
    return { did: identity.did, tid: r.tid };
  } finally {
    await link.stop();
    await radio.close();
  }
}
