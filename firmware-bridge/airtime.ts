// LoRa time on air (Semtech SX127x/SX126x datasheet formula), symbol time, bitrate, and the RNode
// firmware's on-air framing (1-byte header, split above 254 bytes, preamble rule). Pure functions.

import { RadioError } from './errors.ts';

/** Modulation of one LoRa transmission. */
export interface LoraModulation {
  /** Spreading factor 5..12 (5 and 6 exist on SX126x only). */
  readonly spreadingFactor: number;
  readonly bandwidthHz: number;
  /** Coding rate denominator 5..8 (4/5 .. 4/8). */
  readonly codingRate: number;
  /** Programmed preamble length in symbols (the radio adds 4.25 symbols of sync word and SFD). */
  readonly preambleSymbols: number;
  /** Explicit PHY header (default true; LoRaWAN, Meshtastic and RNode all use it). */
  readonly explicitHeader?: boolean;
  /** Payload CRC (default true). */
  readonly crc?: boolean;
  /** Low Data Rate Optimize; default: on when a symbol lasts more than 16 ms (see isLowDataRateOptimizeRequired). */
  readonly lowDataRateOptimize?: boolean;
}

/** Largest LoRa PHY payload in bytes (8-bit length field). */
export const LORA_MAX_PHY_PAYLOAD_BYTES = 255;

function invalid(message: string, details: Record<string, unknown>): RadioError {
  return new RadioError('AIRTIME_INVALID', message, { details });
}

function checkSfBw(spreadingFactor: number, bandwidthHz: number): void {
  if (!Number.isInteger(spreadingFactor) || spreadingFactor < 5 || spreadingFactor > 12) {
    throw invalid(`spreading factor must be an integer 5..12, got ${spreadingFactor}`, { spreadingFactor });
  }
  if (!Number.isFinite(bandwidthHz) || bandwidthHz <= 0) {
    throw invalid(`bandwidth must be a positive number of Hz, got ${bandwidthHz}`, { bandwidthHz });
  }
}

function checkCr(codingRate: number): void {
  if (!Number.isInteger(codingRate) || codingRate < 5 || codingRate > 8) {
    throw invalid(`coding rate denominator must be 5..8, got ${codingRate}`, { codingRate });
  }
}

/** Duration of one LoRa symbol, 2^SF / BW, in ms. Throws AIRTIME_INVALID for an impossible SF or BW. */
export function symbolTimeMs(spreadingFactor: number, bandwidthHz: number): number {
  checkSfBw(spreadingFactor, bandwidthHz);
  return (2 ** spreadingFactor / bandwidthHz) * 1000;
}

/**
 * True when Low Data Rate Optimize is mandatory: symbol time above 16 ms (SF11 and SF12 at 125 kHz,
 * SF12 at 250 kHz), the condition LoRaMac-node codes in SX1276SetRxConfig.
 */
export function isLowDataRateOptimizeRequired(spreadingFactor: number, bandwidthHz: number): boolean {
  return symbolTimeMs(spreadingFactor, bandwidthHz) > 16;
}

function checkModulation(m: LoraModulation): void {
  checkSfBw(m.spreadingFactor, m.bandwidthHz);
  checkCr(m.codingRate);
  if (!Number.isInteger(m.preambleSymbols) || m.preambleSymbols < 0 || m.preambleSymbols > 65_535) {
    throw invalid(`preamble must be 0..65535 symbols, got ${m.preambleSymbols}`, {
      preambleSymbols: m.preambleSymbols,
    });
  }
}

function checkPayload(payloadBytes: number): void {
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > LORA_MAX_PHY_PAYLOAD_BYTES) {
    throw invalid(`a LoRa PHY payload is 0..255 bytes, got ${payloadBytes}`, { payloadBytes });
  }
}

/**
 * Number of payload symbols (header included) for `payloadBytes` PHY bytes:
 * 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE))) · (CR + 4), 0) for SF ≥ 7;
 * SF5/SF6 follow the SX126x datasheet (no +8 bits, no LDRO). Throws AIRTIME_INVALID.
 */
export function payloadSymbols(payloadBytes: number, m: LoraModulation): number {
  checkModulation(m);
  checkPayload(payloadBytes);
  const sf = m.spreadingFactor;
  const crc = (m.crc ?? true) ? 1 : 0;
  const explicit = (m.explicitHeader ?? true) ? 1 : 0;
  const cr = m.codingRate - 4;
  if (sf < 7) {
    const bits = 8 * payloadBytes + 16 * crc - 4 * sf + 20 * explicit;
    return 8 + Math.ceil(Math.max(bits, 0) / (4 * sf)) * (cr + 4);
  }
  const de = (m.lowDataRateOptimize ?? isLowDataRateOptimizeRequired(sf, m.bandwidthHz)) ? 1 : 0;
  const bits = 8 * payloadBytes - 4 * sf + 28 + 16 * crc - 20 * (1 - explicit);
  return 8 + Math.max(Math.ceil(bits / (4 * (sf - 2 * de))) * (cr + 4), 0);
}

/** Preamble duration in ms: (n + 4.25) symbols, or (n + 6.25) at SF5/SF6 on SX126x. Throws AIRTIME_INVALID. */
export function preambleTimeMs(m: LoraModulation): number {
  checkModulation(m);
  const extra = m.spreadingFactor < 7 ? 6.25 : 4.25;
  return (m.preambleSymbols + extra) * symbolTimeMs(m.spreadingFactor, m.bandwidthHz);
}

/** Time on air in ms of one LoRa frame carrying `payloadBytes` (0..255) PHY bytes. Throws AIRTIME_INVALID. */
export function timeOnAirMs(payloadBytes: number, m: LoraModulation): number {
  return preambleTimeMs(m) + payloadSymbols(payloadBytes, m) * symbolTimeMs(m.spreadingFactor, m.bandwidthHz);
}

/**
 * Nominal bit rate in bit/s: SF · (4/CR) / (2^SF / BW), the figure RNode firmware and Reticulum display
 * (3125 bit/s for SF8, 125 kHz, CR 4/5). Throws AIRTIME_INVALID.
 */
export function bitrateBps(spreadingFactor: number, bandwidthHz: number, codingRate: number): number {
  checkSfBw(spreadingFactor, bandwidthHz);
  checkCr(codingRate);
  return (spreadingFactor * (4 / codingRate)) / (2 ** spreadingFactor / bandwidthHz);
}

// ---- RNode on-air framing (RADIO_PROTOCOLS §1.4; RNode firmware transmit() and updateBitrate()) ----

/** Largest packet one CMD_DATA frame carries (firmware MTU). */
export const RNODE_MTU_BYTES = 508;
/** Packets up to this size go out as one LoRa frame (255 bytes with the 1-byte header). */
export const RNODE_SINGLE_FRAME_PAYLOAD_BYTES = 254;
/** Minimum preamble, and the preamble duration the firmware aims for (6 ms above 30 kbit/s). */
export const RNODE_PREAMBLE_MIN_SYMBOLS = 18;
export const RNODE_PREAMBLE_TARGET_MS = 24;
export const RNODE_PREAMBLE_TARGET_FAST_MS = 6;
const RNODE_FAST_THRESHOLD_BPS = 30_000;

/** RNode modulation settings (the firmware derives the preamble itself). */
export interface RNodeModulation {
  readonly spreadingFactor: number;
  readonly bandwidthHz: number;
  readonly codingRate: number;
}

function rnodeIsFast(m: RNodeModulation): boolean {
  return bitrateBps(m.spreadingFactor, m.bandwidthHz, m.codingRate) > RNODE_FAST_THRESHOLD_BPS;
}

/** Preamble symbols the RNode firmware programs: max(18, ceil(24 ms / T_sym)), 6 ms target above 30 kbit/s. */
export function rnodePreambleSymbols(m: RNodeModulation): number {
  const targetMs = rnodeIsFast(m) ? RNODE_PREAMBLE_TARGET_FAST_MS : RNODE_PREAMBLE_TARGET_MS;
  const symbols = targetMs / symbolTimeMs(m.spreadingFactor, m.bandwidthHz);
  return symbols < RNODE_PREAMBLE_MIN_SYMBOLS ? RNODE_PREAMBLE_MIN_SYMBOLS : Math.ceil(symbols);
}

/** PHY timing the firmware reports in CMD_STAT_PHYPRM and uses for CSMA. */
export interface RNodePhyTimings {
  readonly symbolTimeMs: number;
  readonly symbolRateBaud: number;
  readonly preambleSymbols: number;
  readonly preambleTimeMs: number;
  /** CSMA slot: 12 symbols, at most 100 ms; below 24 ms it becomes 24 ms (6 ms above 30 kbit/s). */
  readonly csmaSlotMs: number;
  /** DIFS = 2 slots. */
  readonly difsMs: number;
}

/** The firmware's PHY timings for `m` (its updateBitrate()). Throws AIRTIME_INVALID. */
export function rnodePhyTimings(m: RNodeModulation): RNodePhyTimings {
  const tSym = symbolTimeMs(m.spreadingFactor, m.bandwidthHz);
  const fast = rnodeIsFast(m);
  let slot = tSym * 12;
  if (slot > 100) slot = 100;
  if (slot < 24) slot = fast ? 6 : 24;
  const preambleSymbols = rnodePreambleSymbols(m);
  return {
    symbolTimeMs: tSym,
    symbolRateBaud: m.bandwidthHz / 2 ** m.spreadingFactor,
    preambleSymbols,
    preambleTimeMs: Math.ceil(preambleSymbols * tSym),
    csmaSlotMs: slot,
    difsMs: 2 * slot,
  };
}

/**
 * PHY frame sizes an RNode puts on air for one packet of `packetBytes` (1..508): one frame of
 * header + packet up to 254 bytes, else 255 bytes (header + 254) and header + the rest.
 * Throws AIRTIME_INVALID outside 1..508.
 */
export function rnodeFrameSizes(packetBytes: number): number[] {
  if (!Number.isInteger(packetBytes) || packetBytes < 1 || packetBytes > RNODE_MTU_BYTES) {
    throw invalid(`an RNode packet is 1..508 bytes, got ${packetBytes}`, { packetBytes });
  }
  if (packetBytes <= RNODE_SINGLE_FRAME_PAYLOAD_BYTES) return [packetBytes + 1];
  return [RNODE_SINGLE_FRAME_PAYLOAD_BYTES + 1, packetBytes - RNODE_SINGLE_FRAME_PAYLOAD_BYTES + 1];
}

/** The explicit-header, CRC-on modulation an RNode transmits with for `m`. */
export function rnodeLoraModulation(m: RNodeModulation): LoraModulation {
  return {
    spreadingFactor: m.spreadingFactor,
    bandwidthHz: m.bandwidthHz,
    codingRate: m.codingRate,
    preambleSymbols: rnodePreambleSymbols(m),
    explicitHeader: true,
    crc: true,
  };
}

/** Total time on air in ms of one RNode packet (one or two LoRa frames). Throws AIRTIME_INVALID. */
export function rnodeAirtimeMs(packetBytes: number, m: RNodeModulation): number {
  const lora = rnodeLoraModulation(m);
  return rnodeFrameSizes(packetBytes).reduce((sum, size) => sum + timeOnAirMs(size, lora), 0);
}
