// Typed errors of the Meshtastic stream-API codecs, driver and emulator: one class, stable codes.
// Decoders of bytes from the radio throw only these; the driver maps them to counters, never crashes.

import { OutpostError } from '../../protocol/errors.ts';

export type MeshtasticErrorCode =
  // stream framing (stream-framer.ts)
  | 'MT_FRAME_TOO_LONG'
  // protobuf wire format (protobuf-wire.ts, protobuf.ts)
  | 'MT_PB_TRUNCATED'
  | 'MT_PB_BAD_VARINT'
  | 'MT_PB_BAD_TAG'
  | 'MT_PB_BAD_WIRE_TYPE'
  | 'MT_PB_WIRE_TYPE_MISMATCH'
  | 'MT_PB_TOO_LARGE'
  | 'MT_PB_TOO_DEEP'
  | 'MT_PB_INVALID_VALUE'
  // driver (driver.ts, probe.ts)
  | 'MT_INVALID_OPTION'
  | 'MT_NOT_DETECTED'
  | 'MT_HANDSHAKE_INCOMPLETE'
  // emulator (emulator/meshtastic-emulator.ts)
  | 'MT_EMULATOR_FAILED';

/** Bytes from (or for) a Meshtastic radio broke the stream API or protobuf rules, or an option was invalid. */
export class MeshtasticError extends OutpostError<MeshtasticErrorCode> {
  constructor(
    code: MeshtasticErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'MeshtasticError';
  }
}
