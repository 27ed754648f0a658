// The public face of the LoRa frame contract (docs/protocol/lora-frames.md): what the agent, the gateway and the
// control plane import. Modules behind it (lora-wire, lora-cbor…) are implementation detail.

export type { LoraBeacon, LoraControl, LoraControlKind, LoraHeartbeat } from './lora-control.ts';
export {
  BEACON_MAX_PENDING,
  decodeBeacon,
  decodeControl,
  decodeHeartbeat,
  encodeBeacon,
  encodeControl,
  encodeHeartbeat,
} from './lora-control.ts';
export type {
  EnrollRequest,
  EnrollRequestInput,
  EnrollResponse,
  EnrollResponseInput,
  EnrollStatus,
} from './lora-enroll.ts';
export {
  checkEnrollRequest,
  loraEnrollTokenKeys,
  MANIFEST_HASH_BYTES,
  openEnrollRequest,
  openEnrollResponse,
  sealEnrollRequest,
  sealEnrollResponse,
} from './lora-enroll.ts';
export type {
  DecodedLoraHeader,
  LoraDirection,
  LoraFragment,
  LoraFrameType,
  LoraHeader,
  LoraProfile,
  LoraProtection,
  OpenedLoraFrame,
} from './lora-frame.ts';
export {
  decodeLoraHeader,
  LORA_HEADER_BYTES,
  LORA_MAX_FRAGMENTS,
  LORA_MAX_FRAME_BYTES,
  LORA_OVERHEAD_BYTES,
  LORA_PROFILES,
  LORA_SEQ_MAX,
  LORA_TAG_BYTES,
  loraFrameCount,
  loraPayloadCapacity,
  loraSessionTag,
  loraTypeInfo,
  openLoraFrame,
  sealLoraFrame,
  sealLoraMessage,
} from './lora-frame.ts';
export type { LoraSession, LoraSessionInput, X25519Key, X25519KeyPair } from './lora-keys.ts';
export { deriveLoraSessionKeys, x25519KeyPair } from './lora-keys.ts';
export type {
  LoraMessage,
  LoraReassembler,
  LoraReassemblerOptions,
  ReassemblyResult,
  ReassemblyStats,
} from './lora-reassembly.ts';
export { createLoraReassembler } from './lora-reassembly.ts';
export type { ReplayVerdict, ReplayWindow, ReplayWindowState } from './lora-replay.ts';
export { createReplayWindow } from './lora-replay.ts';
export type {
  LoraQualityFlag,
  LoraTelemetryAck,
  LoraTelemetryRecord,
  LoraTelemetryValue,
  SeqRange,
  TelemetryPack,
} from './lora-telemetry.ts';
export {
  decodeTelemetry,
  decodeTelemetryAck,
  encodeTelemetry,
  encodeTelemetryAck,
  LORA_QUALITY_FLAGS,
  normalizeSeqRanges,
  packTelemetry,
} from './lora-telemetry.ts';
export type { LoraApproval, LoraQuorum, LoraToolCall, LoraToolResult, LoraToolStatus } from './lora-tool.ts';
export { decodeToolCall, decodeToolResult, encodeToolCall, encodeToolResult } from './lora-tool.ts';
