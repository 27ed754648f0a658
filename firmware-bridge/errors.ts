// Typed errors of firmware-bridge: one class, a string union of stable codes, grouped by concern.
// Drivers map device error frames and protocol violations onto these codes in one place each.

import { OutpostError } from '../protocol/errors.ts';

export type RadioErrorCode =
  // parameters, airtime and regulatory limits (airtime.ts, duty-cycle.ts)
  | 'RADIO_PARAMS_INVALID'
  | 'AIRTIME_INVALID'
  | 'OUT_OF_BAND'
  | 'DUTY_CYCLE_EXCEEDED'
  | 'DWELL_TIME_EXCEEDED'
  // driver life cycle and sending (radio.ts contract)
  | 'RADIO_CLOSED'
  | 'PAYLOAD_TOO_LARGE'
  | 'PAYLOAD_EMPTY'
  | 'SEND_QUEUE_FULL'
  | 'SEND_ABORTED'
  | 'PORT_FAILED'
  // KISS framing (rnode/kiss.ts)
  | 'KISS_BAD_ESCAPE'
  | 'KISS_FRAME_TOO_LONG'
  | 'KISS_BAD_FRAME'
  // RNode command arguments and device errors (rnode/commands.ts)
  | 'RNODE_BAD_ARGUMENT'
  | 'RNODE_INIT_RADIO'
  | 'RNODE_TX_FAILED'
  | 'RNODE_EEPROM_LOCKED'
  | 'RNODE_QUEUE_FULL'
  | 'RNODE_MEMORY_LOW'
  | 'RNODE_MODEM_TIMEOUT'
  | 'RNODE_UNKNOWN_ERROR'
  // RNode start-up (rnode/driver.ts)
  | 'RNODE_NOT_DETECTED'
  | 'RNODE_FIRMWARE_TOO_OLD'
  | 'RNODE_PARAM_MISMATCH'
  | 'RNODE_TX_POWER_CLAMPED'
  | 'RNODE_NO_RESPONSE'
  // emulators and the simulated air (emulator/)
  | 'AIR_PORT_IN_USE'
  | 'AIR_PORT_BUSY'
  | 'AIR_CLOSED'
  | 'EMULATOR_FAILED';

/** A radio, its serial protocol, or the airtime law refused something. `code` is stable. */
export class RadioError extends OutpostError<RadioErrorCode> {
  constructor(
    code: RadioErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'RadioError';
  }
}
