// Envelope bodies of the gateway relay (docs/protocol/lora-relay.md): a gateway forwards LoRa frames it heard
// to the control plane and transmits the frames the control plane routes to it. The frames themselves are
// opaque here (end-to-end AEAD between device and control plane, lora-frames.md); these bodies carry them
// with what the radio reported, acknowledgements, delivery states and the served-device list.

import { z } from 'zod';
import { fromBase64Url } from './bytes.ts';
import { DeviceId, SafeUint } from './identifiers.ts';

/** Frames per `lora.uplink` envelope. */
export const MAX_RELAY_FRAMES = 64;
/** Reports or ids per `lora.downlink.report` / `lora.downlink.cancel`. */
export const MAX_RELAY_REPORTS = 256;
/** Devices per `lora.devices`. */
export const MAX_RELAY_DEVICES = 10_000;
/** Longest time to live of a downlink: a week. */
export const MAX_DOWNLINK_TTL_MS = 7 * 24 * 3600 * 1000;
/** Fragments of one downlink message (lora-frames.md §7). */
export const MAX_DOWNLINK_FRAMES = 16;
/** Longest frame (lora-frames.md §6: the RNode serial MTU). */
export const MAX_RELAY_FRAME_BYTES = 508;
/** Radios per `lora.health`. */
export const MAX_HEALTH_RADIOS = 8;
/** Buckets per histogram of a `lora.health` radio (the last one is +Inf). */
export const MAX_HEALTH_BUCKETS = 32;

/** Relay ids (downlink ids): 16..64 base64url characters, as envelope ids. */
export const RelayId = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'bad relay id');
/** A 4-byte LoRa short id as 8 lowercase hex digits. */
export const ShortIdHex = z.string().regex(/^[0-9a-f]{8}$/, 'short id must be 8 lowercase hex digits');
/** A gateway's radio, as named in its configuration. */
export const RadioName = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'radio names are lowercase words, 1..32');
/** Store class of an uplink frame at the gateway (its forwarding priority). */
export const UplinkStream = z.enum(['result', 'enroll', 'telemetry', 'heartbeat']);
export const DOWNLINK_FAILURES = [
  'max_attempts',
  'too_large',
  'dwell_time',
  'duty_cycle',
  'out_of_band',
  'no_radio',
] as const;

function canonicalFrame(s: string): boolean {
  try {
    const n = fromBase64Url(s).length;
    return n >= 1 && n <= MAX_RELAY_FRAME_BYTES;
  } catch {
    return false;
  }
}

/** One LoRa frame, canonical unpadded base64url of 1..508 bytes. */
export const FrameText = z
  .string()
  .max(Math.ceil((MAX_RELAY_FRAME_BYTES * 4) / 3))
  .refine(canonicalFrame, 'must be canonical base64url of 1..508 bytes');

export const RelayedFrame = z.strictObject({
  stream: UplinkStream,
  /** Per-stream sequence number of the gateway's store: what `lora.ack` releases. */
  seq: SafeUint,
  frame: FrameText,
  radio: RadioName,
  /** As the radio reported them; null when it did not. */
  rssiDbm: z.number().min(-200).max(50).nullable(),
  snrDb: z.number().min(-64).max(64).nullable(),
  /** Gateway wall clock when the frame was read from the radio. */
  rxMs: SafeUint,
});
export type RelayedFrame = z.infer<typeof RelayedFrame>;

export const DownlinkReport = z.strictObject({
  downlinkId: RelayId,
  state: z.enum(['transmitted', 'expired', 'failed']),
  /** Transmissions so far. */
  attempts: z.int().min(0).max(100),
  reason: z.enum(DOWNLINK_FAILURES).nullable(),
  /** Gateway wall clock of the last transmission. */
  lastTxMs: SafeUint.nullable(),
  radio: RadioName.nullable(),
});
export type DownlinkReport = z.infer<typeof DownlinkReport>;

/** A Prometheus-style histogram: cumulative counts per upper bound, the last bound `+Inf`. */
export const HealthHistogram = z.strictObject({
  buckets: z
    .array(z.strictObject({ le: z.union([z.number().min(-1e6).max(1e6), z.literal('+Inf')]), count: SafeUint }))
    .max(MAX_HEALTH_BUCKETS),
  count: SafeUint,
  sum: z.number().min(-1e15).max(1e15),
});
export type HealthHistogram = z.infer<typeof HealthHistogram>;

/** The states of a radio driver (firmware-bridge/radio.ts `RadioStatus['state']`). */
export const RADIO_STATES = ['absent', 'opening', 'configuring', 'ready', 'error'] as const;

/** One radio of a gateway as it reports it in `lora.health`. */
export const RadioHealthReport = z.strictObject({
  name: RadioName,
  kind: z.enum(['rnode', 'meshtastic']),
  state: z.enum(RADIO_STATES),
  ready: z.boolean(),
  airtime: z.strictObject({
    /** Transmit time inside the regional duty-cycle window ending now (one hour), all sub-bands together. */
    windowMs: SafeUint,
    /**
     * Largest fraction of any sub-band's duty-cycle budget used in that window (0 where no duty cycle applies, or
     * while the modulation is unknown); above 1 only if the radio already overran it.
     */
    budgetUsed: z.number().min(0).max(1e6),
    /** Airtime since the gateway started. */
    totalMs: SafeUint,
  }),
  /** Counters since the gateway started; `dropped` sums every reason. */
  frames: z.strictObject({ received: SafeUint, sent: SafeUint, dropped: SafeUint }),
  /** Null until the radio reported a value. */
  rssiDbm: HealthHistogram.nullable(),
  snrDb: HealthHistogram.nullable(),
  /** Gateway wall clock of the last frame heard, null before the first. */
  lastRxMs: SafeUint.nullable(),
});
export type RadioHealthReport = z.infer<typeof RadioHealthReport>;

/** The `lora.health` body: the gateway's radios and its queue backlogs. */
export const LoraHealth = z.strictObject({
  radios: z.array(RadioHealthReport).max(MAX_HEALTH_RADIOS),
  /** Uplink frames stored at the gateway, not yet acknowledged by the control plane. */
  uplinkBacklog: SafeUint,
  /** Downlink items the gateway holds (any state, until reported and pruned). */
  downlinkBacklog: SafeUint,
});
export type LoraHealth = z.infer<typeof LoraHealth>;

/** Bodies of the relay envelope types, registered in envelope.ts. */
export const LORA_RELAY_BODIES = {
  /** gateway → cp, signed: frames heard, stored, not yet acknowledged. */
  'lora.uplink': z.strictObject({ frames: z.array(RelayedFrame).min(1).max(MAX_RELAY_FRAMES) }),
  /** either way: the envelope `inReplyTo` (a lora.uplink, lora.downlink or lora.downlink.report) is durably handled. */
  'lora.ack': z.strictObject({ inReplyTo: RelayId }),
  /** cp → gateway: transmit these frames to one device until cancelled, expired or out of attempts. */
  'lora.downlink': z.strictObject({
    downlinkId: RelayId,
    device: DeviceId,
    shortId: ShortIdHex,
    /** 0 most urgent .. 7. */
    priority: z.int().min(0).max(7),
    frames: z.array(FrameText).min(1).max(MAX_DOWNLINK_FRAMES),
    /** From receipt at the gateway (relative, so clocks need not agree). */
    ttlMs: z.int().min(1).max(MAX_DOWNLINK_TTL_MS),
    maxAttempts: z.int().min(1).max(100),
  }),
  /** cp → gateway: stop transmitting these (the device answered, or a newer message replaces them). */
  'lora.downlink.cancel': z.strictObject({
    downlinkIds: z.array(RelayId).min(1).max(MAX_RELAY_REPORTS),
    reason: z.enum(['delivered', 'superseded', 'expired', 'revoked']),
  }),
  /** gateway → cp, signed: delivery states not yet reported. */
  'lora.downlink.report': z.strictObject({ reports: z.array(DownlinkReport).min(1).max(MAX_RELAY_REPORTS) }),
  /** cp → gateway: the devices this gateway serves (the whole list; revoked devices are dropped at the gateway). */
  'lora.devices': z.strictObject({
    devices: z
      .array(z.strictObject({ device: DeviceId, shortId: ShortIdHex, standing: z.enum(['served', 'revoked']) }))
      .max(MAX_RELAY_DEVICES),
  }),
  /** gateway → cp, signed: radio health and backlogs, after connecting and every heartbeat; not acknowledged. */
  'lora.health': LoraHealth,
} as const;
