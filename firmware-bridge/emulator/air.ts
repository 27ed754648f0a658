// The contract between emulated radios and the simulated air that carries their LoRa frames.
// The implementation (delays by airtime, loss, collisions, RSSI/SNR, duty cycle) is simulated-air.ts.

import type { RadioKind, RadioParams } from '../radio.ts';

export interface AirReception {
  readonly frame: Uint8Array;
  readonly rssiDbm: number;
  readonly snrDb: number;
  /** Id of the transmitting port (for tests and traces; real radios do not learn it). */
  readonly fromPortId: string;
}

export type TransmitResult =
  | { readonly ok: true; readonly airtimeMs: number }
  | {
      readonly ok: false;
      /** `out-of-band`: the channel is outside the region's band plan (duty-cycle.ts). */
      readonly reason: 'duty-cycle' | 'dwell-time' | 'out-of-band' | 'detached';
      /** Air-time ms until the same frame would be allowed; absent when it never will be. */
      readonly retryAfterMs?: number;
    };

/** One emulated radio's attachment to the air. */
export interface AirPort {
  readonly id: string;
  /**
   * Puts one LoRa PHY frame on the air with the port's current parameters. Resolves when the
   * transmission ends (after its time on air) or at once when the regulatory budget refuses it.
   */
  transmit(frame: Uint8Array): Promise<TransmitResult>;
  /** Called for every frame this port receives intact (same channel and modulation, no collision, not lost). */
  onReceive(handler: (rx: AirReception) => void): void;
  /** Leaves the air (unplug); pending receptions are dropped. */
  detach(): void;
}

export interface AirAttachOptions {
  readonly id: string;
  /** Radios only decode frames of their own firmware family; others still occupy the channel and collide. */
  readonly network: RadioKind;
  /** Position in metres, for the distance model. */
  readonly position?: { readonly xM: number; readonly yM: number };
  /** Read at each transmission, so a reconfigured radio moves channel. */
  readonly params: () => RadioParams;
}

export interface Air {
  attach(options: AirAttachOptions): AirPort;
}
