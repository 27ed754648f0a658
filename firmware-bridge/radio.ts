// The one interface both radio drivers implement, so the agent and the gateway never care which firmware is attached.

/** LoRa modulation and regulatory settings of a radio. */
export interface RadioParams {
  readonly freqHz: number;
  readonly bandwidthHz: number;
  /** Spreading factor 5..12. */
  readonly spreadingFactor: number;
  /** Coding rate denominator 5..8 (4/5 .. 4/8). */
  readonly codingRate: number;
  readonly txPowerDbm: number;
  readonly preambleSymbols: number;
  /** Regulatory region whose airtime law applies (docs/radios.md). */
  readonly region: RegionCode;
}

export type RegionCode = 'EU868' | 'US915' | 'ANY';

export type RadioKind = 'rnode' | 'meshtastic';

/** Status is a discriminated union, computed by the driver from what it has seen on the port. */
export type RadioStatus =
  | { readonly state: 'absent'; readonly reason: string }
  | { readonly state: 'opening' }
  | { readonly state: 'configuring' }
  | { readonly state: 'ready'; readonly firmware: string; readonly params: RadioParams }
  | { readonly state: 'error'; readonly code: string; readonly reason: string };

export interface ReceivedPacket {
  readonly payload: Uint8Array;
  readonly rssiDbm: number;
  readonly snrDb: number;
  /** Wall-clock ms when the driver read the packet. */
  readonly receivedAtMs: number;
  /** Firmware-level sender, when the firmware reports one (Meshtastic node number as "!%08x"). */
  readonly from?: string;
}

/** Final outcome of one send: `sent` = handed to the air (RNode has no ack); `acked` = the firmware confirmed delivery. */
export type SendOutcome =
  | { readonly state: 'sent'; readonly airtimeMs: number }
  | { readonly state: 'acked'; readonly airtimeMs: number }
  | { readonly state: 'failed'; readonly code: string; readonly reason: string };

export interface SendOptions {
  /** Ask the firmware for a delivery acknowledgement where it has one (Meshtastic want_ack). */
  readonly wantAck?: boolean;
  /** Abort waiting (the packet may still go out if already handed to the firmware). */
  readonly signal?: AbortSignal;
}

export interface AirtimeReport {
  /** Total transmit time since open, ms. */
  readonly totalMs: number;
  /** Transmit time within the regulatory observation window (1 h for EU868), ms. */
  readonly windowMs: number;
  /** Fraction of the regulatory budget used in the window, 0..1 (0 where no duty-cycle rule applies). */
  readonly budgetUsed: number;
}

export interface Radio {
  readonly kind: RadioKind;
  /** Serial device path (prefer /dev/serial/by-id/…). */
  readonly path: string;
  /** Largest payload one send() accepts. */
  readonly maxPayloadBytes: number;
  /** Opens the port and runs the firmware's start-up sequence; keeps reopening with backoff until close(). */
  open(): Promise<void>;
  close(): Promise<void>;
  status(): RadioStatus;
  /** Yields every status change until close(). */
  statusChanges(): AsyncIterable<RadioStatus>;
  /** Queues `payload`; resolves with the final outcome. Nothing queued is lost across unplug/replug. */
  send(payload: Uint8Array, options?: SendOptions): Promise<SendOutcome>;
  /** Yields received packets until close(). */
  packets(): AsyncIterable<ReceivedPacket>;
  airtime(): AirtimeReport;
}
