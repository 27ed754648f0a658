// RNode KISS command set (RADIO_PROTOCOLS §1.2): command bytes, and typed encode/decode of every
// argument in both directions (host → device for the driver, device → host for the emulator).
// Multi-byte integers are big-endian; RSSI is sent +157, SNR ×4 as int8, airtime locks as % × 100.

import { RadioError } from '../errors.ts';
import type { KissFrame } from './kiss.ts';

export const CMD = Object.freeze({
  DATA: 0x00,
  FREQUENCY: 0x01,
  BANDWIDTH: 0x02,
  TXPOWER: 0x03,
  SF: 0x04,
  CR: 0x05,
  RADIO_STATE: 0x06,
  RADIO_LOCK: 0x07,
  DETECT: 0x08,
  IMPLICIT: 0x09,
  LEAVE: 0x0a,
  ST_ALOCK: 0x0b,
  LT_ALOCK: 0x0c,
  PROMISC: 0x0e,
  READY: 0x0f,
  STAT_RX: 0x21,
  STAT_TX: 0x22,
  STAT_RSSI: 0x23,
  STAT_SNR: 0x24,
  STAT_CHTM: 0x25,
  STAT_PHYPRM: 0x26,
  STAT_BAT: 0x27,
  STAT_CSMA: 0x28,
  STAT_TEMP: 0x29,
  BLINK: 0x30,
  RANDOM: 0x40,
  FB_EXT: 0x41,
  FB_READ: 0x42,
  FB_WRITE: 0x43,
  BOARD: 0x47,
  PLATFORM: 0x48,
  MCU: 0x49,
  FW_VERSION: 0x50,
  ROM_READ: 0x51,
  RESET: 0x55,
  DISP_READ: 0x66,
  ERROR: 0x90,
} as const);

export const DETECT_REQ = 0x73;
export const DETECT_RESP = 0x46;
export const RESET_BYTE = 0xf8;
export const LEAVE_BYTE = 0xff;
/** Argument meaning "query" for the one-byte settings (TXPOWER, SF, CR, RADIO_STATE, FB_EXT). */
export const QUERY_BYTE = 0xff;
export const RSSI_OFFSET = 157;
export const TEMPERATURE_OFFSET = 120;

export const PLATFORM = Object.freeze({ AVR: 0x90, ESP32: 0x80, NRF52: 0x70 } as const);
export const MCU = Object.freeze({ ATMEGA1284P: 0x91, ATMEGA2560: 0x92, ESP32: 0x81, NRF52: 0x71 } as const);

/** Oldest firmware the host accepts (RNS REQUIRED_FW_VER_MAJ/MIN). */
export const MIN_FIRMWARE_VERSION = Object.freeze({ major: 1, minor: 52 });

export const RNODE_ERROR = Object.freeze({
  INITRADIO: 0x01,
  TXFAILED: 0x02,
  EEPROM_LOCKED: 0x03,
  QUEUE_FULL: 0x04,
  MEMORY_LOW: 0x05,
  MODEM_TIMEOUT: 0x06,
} as const);

/** Maps a CMD_ERROR code byte to its typed error. */
export function rnodeError(code: number): RadioError {
  const details = { deviceCode: code };
  switch (code) {
    case RNODE_ERROR.INITRADIO:
      return new RadioError('RNODE_INIT_RADIO', 'the RNode could not initialise its radio', { details });
    case RNODE_ERROR.TXFAILED:
      return new RadioError('RNODE_TX_FAILED', 'the RNode failed to transmit (radio off or modem fault)', { details });
    case RNODE_ERROR.EEPROM_LOCKED:
      return new RadioError('RNODE_EEPROM_LOCKED', 'the RNode EEPROM is locked (device not provisioned)', { details });
    case RNODE_ERROR.QUEUE_FULL:
      return new RadioError('RNODE_QUEUE_FULL', 'the RNode transmit queue is full', { details });
    case RNODE_ERROR.MEMORY_LOW:
      return new RadioError('RNODE_MEMORY_LOW', 'the RNode reports low memory', { details });
    case RNODE_ERROR.MODEM_TIMEOUT:
      return new RadioError('RNODE_MODEM_TIMEOUT', 'the RNode modem timed out (a reset follows)', { details });
    default:
      return new RadioError('RNODE_UNKNOWN_ERROR', `the RNode reported unknown error 0x${code.toString(16)}`, {
        details,
      });
  }
}

export type BatteryState = 'unknown' | 'discharging' | 'charging' | 'charged';
const BATTERY_STATES: readonly BatteryState[] = ['unknown', 'discharging', 'charging', 'charged'];

/** What a device sends the host. */
export type DeviceMessage =
  | { readonly kind: 'data'; readonly data: Uint8Array }
  | { readonly kind: 'frequency'; readonly hz: number }
  | { readonly kind: 'bandwidth'; readonly hz: number }
  | { readonly kind: 'txPower'; readonly dbm: number }
  | { readonly kind: 'spreadingFactor'; readonly sf: number }
  | { readonly kind: 'codingRate'; readonly cr: number }
  | { readonly kind: 'radioState'; readonly on: boolean }
  | { readonly kind: 'radioLock'; readonly locked: boolean }
  | { readonly kind: 'detect'; readonly ok: boolean }
  | { readonly kind: 'implicitLength'; readonly length: number }
  /** Airtime locks in percent (0 = off), two decimals. */
  | { readonly kind: 'stAlock'; readonly percent: number }
  | { readonly kind: 'ltAlock'; readonly percent: number }
  | { readonly kind: 'promiscuous'; readonly on: boolean }
  | { readonly kind: 'ready'; readonly ready: boolean }
  | { readonly kind: 'statRx'; readonly count: number }
  | { readonly kind: 'statTx'; readonly count: number }
  | { readonly kind: 'rssi'; readonly dbm: number }
  | { readonly kind: 'snr'; readonly db: number }
  | {
      readonly kind: 'channelStats';
      readonly airtimeShortPct: number;
      readonly airtimeLongPct: number;
      readonly channelLoadShortPct: number;
      readonly channelLoadLongPct: number;
      readonly currentRssiDbm: number;
      readonly noiseFloorDbm: number;
      /** RSSI of detected interference, or null when none. */
      readonly interferenceDbm: number | null;
    }
  | {
      readonly kind: 'phyParams';
      readonly symbolTimeUs: number;
      readonly symbolRateBaud: number;
      readonly preambleSymbols: number;
      readonly preambleMs: number;
      readonly csmaSlotMs: number;
      readonly difsMs: number;
    }
  | { readonly kind: 'battery'; readonly state: BatteryState; readonly percent: number }
  | { readonly kind: 'csma'; readonly band: number; readonly cwMin: number; readonly cwMax: number }
  | { readonly kind: 'temperature'; readonly celsius: number }
  | { readonly kind: 'random'; readonly value: number }
  | { readonly kind: 'board'; readonly model: number }
  | { readonly kind: 'platform'; readonly platform: number }
  | { readonly kind: 'mcu'; readonly mcu: number }
  | { readonly kind: 'firmwareVersion'; readonly major: number; readonly minor: number }
  /** `55 F8`: the firmware (re)booted. */
  | { readonly kind: 'reset' }
  | { readonly kind: 'error'; readonly code: number; readonly error: RadioError }
  /** Framebuffer dumps, EEPROM dumps and commands this driver does not use. */
  | { readonly kind: 'other'; readonly command: number; readonly data: Uint8Array };

/** What a host sends a device. `null` values are queries. */
export type HostMessage =
  | { readonly kind: 'data'; readonly data: Uint8Array }
  | { readonly kind: 'frequency'; readonly hz: number | null }
  | { readonly kind: 'bandwidth'; readonly hz: number | null }
  | { readonly kind: 'txPower'; readonly dbm: number | null }
  | { readonly kind: 'spreadingFactor'; readonly sf: number | null }
  | { readonly kind: 'codingRate'; readonly cr: number | null }
  | { readonly kind: 'radioState'; readonly state: 'on' | 'off' | 'query' }
  | { readonly kind: 'radioLock' }
  | { readonly kind: 'detect' }
  | { readonly kind: 'implicitLength'; readonly length: number }
  | { readonly kind: 'leave' }
  | { readonly kind: 'stAlock'; readonly percent: number }
  | { readonly kind: 'ltAlock'; readonly percent: number }
  | { readonly kind: 'promiscuous'; readonly on: boolean }
  | { readonly kind: 'ready' }
  | {
      readonly kind: 'query';
      readonly what: 'statRx' | 'statTx' | 'statRssi' | 'random' | 'board' | 'platform' | 'mcu' | 'firmwareVersion';
    }
  | { readonly kind: 'blink'; readonly count: number }
  | { readonly kind: 'reset' }
  | { readonly kind: 'framebufferExt'; readonly state: 'enable' | 'disable' | 'query' }
  | { readonly kind: 'other'; readonly command: number; readonly data: Uint8Array };

const QUERY_COMMANDS = {
  statRx: CMD.STAT_RX,
  statTx: CMD.STAT_TX,
  statRssi: CMD.STAT_RSSI,
  random: CMD.RANDOM,
  board: CMD.BOARD,
  platform: CMD.PLATFORM,
  mcu: CMD.MCU,
  firmwareVersion: CMD.FW_VERSION,
} as const;

function badArgument(command: number, message: string, data: Uint8Array): RadioError {
  return new RadioError('RNODE_BAD_ARGUMENT', `command 0x${command.toString(16).padStart(2, '0')}: ${message}`, {
    details: { command, length: data.length },
  });
}

function expectLength(f: KissFrame, n: number): void {
  if (f.data.length !== n) throw badArgument(f.command, `expected ${n} argument bytes, got ${f.data.length}`, f.data);
}

const u16 = (d: Uint8Array, at: number) => (d[at]! << 8) | d[at + 1]!;
const u32 = (d: Uint8Array, at: number) => ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;
const int8 = (b: number) => (b > 127 ? b - 256 : b);

function be16(v: number): Uint8Array {
  return Uint8Array.of((v >>> 8) & 0xff, v & 0xff);
}
function be32(v: number): Uint8Array {
  return Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function checkInt(command: number, value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RadioError('RNODE_BAD_ARGUMENT', `${what} must be an integer ${min}..${max}, got ${value}`, {
      details: { command, value },
    });
  }
  return value;
}

/** Percent with two decimals → the firmware's uint16 (% × 100); 0 = off. */
function percentToU16(command: number, percent: number): number {
  if (!Number.isFinite(percent) || percent < 0 || percent > 100) {
    throw new RadioError('RNODE_BAD_ARGUMENT', `airtime limit must be 0..100 %, got ${percent}`, {
      details: { command, percent },
    });
  }
  return Math.round(percent * 100);
}

/** Decodes a frame from the device. Throws RNODE_BAD_ARGUMENT when an argument has the wrong length. */
export function decodeDeviceMessage(f: KissFrame): DeviceMessage {
  const d = f.data;
  switch (f.command) {
    case CMD.DATA:
      if (d.length === 0) throw badArgument(f.command, 'empty data frame', d);
      return { kind: 'data', data: d };
    case CMD.FREQUENCY:
      expectLength(f, 4);
      return { kind: 'frequency', hz: u32(d, 0) };
    case CMD.BANDWIDTH:
      expectLength(f, 4);
      return { kind: 'bandwidth', hz: u32(d, 0) };
    case CMD.TXPOWER:
      expectLength(f, 1);
      return { kind: 'txPower', dbm: int8(d[0]!) };
    case CMD.SF:
      expectLength(f, 1);
      return { kind: 'spreadingFactor', sf: d[0]! };
    case CMD.CR:
      expectLength(f, 1);
      return { kind: 'codingRate', cr: d[0]! };
    case CMD.RADIO_STATE:
      expectLength(f, 1);
      return { kind: 'radioState', on: d[0] === 0x01 };
    case CMD.RADIO_LOCK:
      expectLength(f, 1);
      return { kind: 'radioLock', locked: d[0] !== 0 };
    case CMD.DETECT:
      expectLength(f, 1);
      return { kind: 'detect', ok: d[0] === DETECT_RESP };
    case CMD.IMPLICIT:
      expectLength(f, 1);
      return { kind: 'implicitLength', length: d[0]! };
    case CMD.ST_ALOCK:
      expectLength(f, 2);
      return { kind: 'stAlock', percent: u16(d, 0) / 100 };
    case CMD.LT_ALOCK:
      expectLength(f, 2);
      return { kind: 'ltAlock', percent: u16(d, 0) / 100 };
    case CMD.PROMISC:
      expectLength(f, 1);
      return { kind: 'promiscuous', on: d[0] === 0x01 };
    case CMD.READY:
      expectLength(f, 1);
      return { kind: 'ready', ready: d[0] === 0x01 };
    case CMD.STAT_RX:
      expectLength(f, 4);
      return { kind: 'statRx', count: u32(d, 0) };
    case CMD.STAT_TX:
      expectLength(f, 4);
      return { kind: 'statTx', count: u32(d, 0) };
    case CMD.STAT_RSSI:
      expectLength(f, 1);
      return { kind: 'rssi', dbm: d[0]! - RSSI_OFFSET };
    case CMD.STAT_SNR:
      expectLength(f, 1);
      return { kind: 'snr', db: int8(d[0]!) / 4 };
    case CMD.STAT_CHTM:
      expectLength(f, 11);
      return {
        kind: 'channelStats',
        airtimeShortPct: u16(d, 0) / 100,
        airtimeLongPct: u16(d, 2) / 100,
        channelLoadShortPct: u16(d, 4) / 100,
        channelLoadLongPct: u16(d, 6) / 100,
        currentRssiDbm: d[8]! - RSSI_OFFSET,
        noiseFloorDbm: d[9]! - RSSI_OFFSET,
        interferenceDbm: d[10] === 0xff ? null : d[10]! - RSSI_OFFSET,
      };
    case CMD.STAT_PHYPRM:
      expectLength(f, 12);
      return {
        kind: 'phyParams',
        symbolTimeUs: u16(d, 0),
        symbolRateBaud: u16(d, 2),
        preambleSymbols: u16(d, 4),
        preambleMs: u16(d, 6),
        csmaSlotMs: u16(d, 8),
        difsMs: u16(d, 10),
      };
    case CMD.STAT_BAT:
      expectLength(f, 2);
      return { kind: 'battery', state: BATTERY_STATES[d[0]!] ?? 'unknown', percent: d[1]! };
    case CMD.STAT_CSMA:
      expectLength(f, 3);
      return { kind: 'csma', band: d[0]!, cwMin: d[1]!, cwMax: d[2]! };
    case CMD.STAT_TEMP:
      expectLength(f, 1);
      return { kind: 'temperature', celsius: d[0]! - TEMPERATURE_OFFSET };
    case CMD.RANDOM:
      expectLength(f, 1);
      return { kind: 'random', value: d[0]! };
    case CMD.BOARD:
      expectLength(f, 1);
      return { kind: 'board', model: d[0]! };
    case CMD.PLATFORM:
      expectLength(f, 1);
      return { kind: 'platform', platform: d[0]! };
    case CMD.MCU:
      expectLength(f, 1);
      return { kind: 'mcu', mcu: d[0]! };
    case CMD.FW_VERSION:
      expectLength(f, 2);
      return { kind: 'firmwareVersion', major: d[0]!, minor: d[1]! };
    case CMD.RESET:
      expectLength(f, 1);
      if (d[0] !== RESET_BYTE) throw badArgument(f.command, `reset announces 0xF8, got 0x${d[0]!.toString(16)}`, d);
      return { kind: 'reset' };
    case CMD.ERROR:
      expectLength(f, 1);
      return { kind: 'error', code: d[0]!, error: rnodeError(d[0]!) };
    default:
      return { kind: 'other', command: f.command, data: d };
  }
}

/** Encodes a device message (the emulator's side). Throws RNODE_BAD_ARGUMENT for out-of-range values. */
export function encodeDeviceMessage(m: DeviceMessage): KissFrame {
  const one = (command: number, v: number, min = 0, max = 255, what = 'value'): KissFrame => ({
    command,
    data: Uint8Array.of(checkInt(command, v, min, max, what) & 0xff),
  });
  const flag = (command: number, v: boolean): KissFrame => ({ command, data: Uint8Array.of(v ? 1 : 0) });
  const dbm = (command: number, v: number): number =>
    checkInt(command, Math.round(v) + RSSI_OFFSET, 0, 255, 'RSSI + 157');
  switch (m.kind) {
    case 'data':
      if (m.data.length === 0) throw badArgument(CMD.DATA, 'empty data frame', m.data);
      return { command: CMD.DATA, data: m.data };
    case 'frequency':
      return { command: CMD.FREQUENCY, data: be32(checkInt(CMD.FREQUENCY, m.hz, 0, 0xffffffff, 'frequency')) };
    case 'bandwidth':
      return { command: CMD.BANDWIDTH, data: be32(checkInt(CMD.BANDWIDTH, m.hz, 0, 0xffffffff, 'bandwidth')) };
    case 'txPower':
      return one(CMD.TXPOWER, m.dbm, -128, 127, 'TX power');
    case 'spreadingFactor':
      return one(CMD.SF, m.sf);
    case 'codingRate':
      return one(CMD.CR, m.cr);
    case 'radioState':
      return flag(CMD.RADIO_STATE, m.on);
    case 'radioLock':
      return flag(CMD.RADIO_LOCK, m.locked);
    case 'detect':
      return { command: CMD.DETECT, data: Uint8Array.of(m.ok ? DETECT_RESP : 0) };
    case 'implicitLength':
      return one(CMD.IMPLICIT, m.length);
    case 'stAlock':
      return { command: CMD.ST_ALOCK, data: be16(percentToU16(CMD.ST_ALOCK, m.percent)) };
    case 'ltAlock':
      return { command: CMD.LT_ALOCK, data: be16(percentToU16(CMD.LT_ALOCK, m.percent)) };
    case 'promiscuous':
      return flag(CMD.PROMISC, m.on);
    case 'ready':
      return flag(CMD.READY, m.ready);
    case 'statRx':
      return { command: CMD.STAT_RX, data: be32(checkInt(CMD.STAT_RX, m.count, 0, 0xffffffff, 'count')) };
    case 'statTx':
      return { command: CMD.STAT_TX, data: be32(checkInt(CMD.STAT_TX, m.count, 0, 0xffffffff, 'count')) };
    case 'rssi':
      return { command: CMD.STAT_RSSI, data: Uint8Array.of(dbm(CMD.STAT_RSSI, m.dbm)) };
    case 'snr': {
      const raw = checkInt(CMD.STAT_SNR, Math.round(m.db * 4), -128, 127, 'SNR × 4');
      return { command: CMD.STAT_SNR, data: Uint8Array.of(raw & 0xff) };
    }
    case 'channelStats': {
      const c = CMD.STAT_CHTM;
      const pct = (v: number) => be16(percentToU16(c, v));
      return {
        command: c,
        data: Uint8Array.of(
          ...pct(m.airtimeShortPct),
          ...pct(m.airtimeLongPct),
          ...pct(m.channelLoadShortPct),
          ...pct(m.channelLoadLongPct),
          dbm(c, m.currentRssiDbm),
          dbm(c, m.noiseFloorDbm),
          m.interferenceDbm === null ? 0xff : checkInt(c, Math.round(m.interferenceDbm) + RSSI_OFFSET, 0, 254, 'RSSI'),
        ),
      };
    }
    case 'phyParams': {
      const c = CMD.STAT_PHYPRM;
      const v = (x: number) => be16(checkInt(c, x, 0, 0xffff, 'PHY parameter'));
      return {
        command: c,
        data: Uint8Array.of(
          ...v(m.symbolTimeUs),
          ...v(m.symbolRateBaud),
          ...v(m.preambleSymbols),
          ...v(m.preambleMs),
          ...v(m.csmaSlotMs),
          ...v(m.difsMs),
        ),
      };
    }
    case 'battery':
      return {
        command: CMD.STAT_BAT,
        data: Uint8Array.of(BATTERY_STATES.indexOf(m.state), checkInt(CMD.STAT_BAT, m.percent, 0, 255, 'percent')),
      };
    case 'csma':
      return {
        command: CMD.STAT_CSMA,
        data: Uint8Array.of(
          checkInt(CMD.STAT_CSMA, m.band, 0, 255, 'band'),
          checkInt(CMD.STAT_CSMA, m.cwMin, 0, 255, 'cw'),
          checkInt(CMD.STAT_CSMA, m.cwMax, 0, 255, 'cw'),
        ),
      };
    case 'temperature':
      return one(CMD.STAT_TEMP, m.celsius + TEMPERATURE_OFFSET, 0, 255, 'temperature + 120');
    case 'random':
      return one(CMD.RANDOM, m.value);
    case 'board':
      return one(CMD.BOARD, m.model);
    case 'platform':
      return one(CMD.PLATFORM, m.platform);
    case 'mcu':
      return one(CMD.MCU, m.mcu);
    case 'firmwareVersion':
      return {
        command: CMD.FW_VERSION,
        data: Uint8Array.of(
          checkInt(CMD.FW_VERSION, m.major, 0, 255, 'major'),
          checkInt(CMD.FW_VERSION, m.minor, 0, 255, 'minor'),
        ),
      };
    case 'reset':
      return { command: CMD.RESET, data: Uint8Array.of(RESET_BYTE) };
    case 'error':
      return one(CMD.ERROR, m.code);
    case 'other':
      return { command: m.command, data: m.data };
  }
}

/** Encodes a host message (the driver's side). Throws RNODE_BAD_ARGUMENT for out-of-range values. */
export function encodeHostMessage(m: HostMessage): KissFrame {
  const one = (command: number, v: number | null, min: number, max: number, what: string): KissFrame => ({
    command,
    data: Uint8Array.of(v === null ? QUERY_BYTE : checkInt(command, v, min, max, what)),
  });
  switch (m.kind) {
    case 'data':
      if (m.data.length === 0) throw badArgument(CMD.DATA, 'empty data frame', m.data);
      return { command: CMD.DATA, data: m.data };
    case 'frequency':
      return {
        command: CMD.FREQUENCY,
        data: be32(m.hz === null ? 0 : checkInt(CMD.FREQUENCY, m.hz, 1, 0xffffffff, 'frequency')),
      };
    case 'bandwidth':
      return {
        command: CMD.BANDWIDTH,
        data: be32(m.hz === null ? 0 : checkInt(CMD.BANDWIDTH, m.hz, 1, 0xffffffff, 'bandwidth')),
      };
    case 'txPower':
      return one(CMD.TXPOWER, m.dbm, 0, 0xfe, 'TX power');
    case 'spreadingFactor':
      return one(CMD.SF, m.sf, 0, 0xfe, 'spreading factor');
    case 'codingRate':
      return one(CMD.CR, m.cr, 0, 0xfe, 'coding rate');
    case 'radioState':
      return {
        command: CMD.RADIO_STATE,
        data: Uint8Array.of(m.state === 'on' ? 1 : m.state === 'off' ? 0 : QUERY_BYTE),
      };
    case 'radioLock':
      return { command: CMD.RADIO_LOCK, data: Uint8Array.of(0) };
    case 'detect':
      return { command: CMD.DETECT, data: Uint8Array.of(DETECT_REQ) };
    case 'implicitLength':
      return one(CMD.IMPLICIT, m.length, 0, 255, 'implicit length');
    case 'leave':
      return { command: CMD.LEAVE, data: Uint8Array.of(LEAVE_BYTE) };
    case 'stAlock':
      return { command: CMD.ST_ALOCK, data: be16(percentToU16(CMD.ST_ALOCK, m.percent)) };
    case 'ltAlock':
      return { command: CMD.LT_ALOCK, data: be16(percentToU16(CMD.LT_ALOCK, m.percent)) };
    case 'promiscuous':
      return { command: CMD.PROMISC, data: Uint8Array.of(m.on ? 1 : 0) };
    case 'ready':
      return { command: CMD.READY, data: Uint8Array.of(0) };
    case 'query':
      return { command: QUERY_COMMANDS[m.what], data: Uint8Array.of(0) };
    case 'blink':
      return one(CMD.BLINK, m.count, 0, 255, 'blink count');
    case 'reset':
      return { command: CMD.RESET, data: Uint8Array.of(RESET_BYTE) };
    case 'framebufferExt':
      return {
        command: CMD.FB_EXT,
        data: Uint8Array.of(m.state === 'enable' ? 1 : m.state === 'disable' ? 0 : QUERY_BYTE),
      };
    case 'other':
      return { command: m.command, data: m.data };
  }
}

/**
 * Decodes a frame from the host (the emulator's side), following the firmware's reading of each
 * argument. Throws RNODE_BAD_ARGUMENT when an argument is missing or has the wrong length.
 */
export function decodeHostMessage(f: KissFrame): HostMessage {
  const d = f.data;
  const byte = () => {
    if (d.length < 1) throw badArgument(f.command, 'missing argument byte', d);
    return d[0]!;
  };
  const orQuery = (b: number) => (b === QUERY_BYTE ? null : b);
  switch (f.command) {
    case CMD.DATA:
      if (d.length === 0) throw badArgument(f.command, 'empty data frame', d);
      return { kind: 'data', data: d };
    case CMD.FREQUENCY: {
      expectLength(f, 4);
      const hz = u32(d, 0);
      return { kind: 'frequency', hz: hz === 0 ? null : hz };
    }
    case CMD.BANDWIDTH: {
      expectLength(f, 4);
      const hz = u32(d, 0);
      return { kind: 'bandwidth', hz: hz === 0 ? null : hz };
    }
    case CMD.TXPOWER:
      return { kind: 'txPower', dbm: orQuery(byte()) };
    case CMD.SF:
      return { kind: 'spreadingFactor', sf: orQuery(byte()) };
    case CMD.CR:
      return { kind: 'codingRate', cr: orQuery(byte()) };
    case CMD.RADIO_STATE: {
      const b = byte();
      if (b === 0x01) return { kind: 'radioState', state: 'on' };
      if (b === 0x00) return { kind: 'radioState', state: 'off' };
      if (b === QUERY_BYTE) return { kind: 'radioState', state: 'query' };
      return { kind: 'other', command: f.command, data: d };
    }
    case CMD.RADIO_LOCK:
      byte();
      return { kind: 'radioLock' };
    case CMD.DETECT:
      if (byte() !== DETECT_REQ) return { kind: 'other', command: f.command, data: d };
      return { kind: 'detect' };
    case CMD.IMPLICIT:
      return { kind: 'implicitLength', length: byte() };
    case CMD.LEAVE:
      if (byte() !== LEAVE_BYTE) return { kind: 'other', command: f.command, data: d };
      return { kind: 'leave' };
    case CMD.ST_ALOCK:
      expectLength(f, 2);
      return { kind: 'stAlock', percent: u16(d, 0) / 100 };
    case CMD.LT_ALOCK:
      expectLength(f, 2);
      return { kind: 'ltAlock', percent: u16(d, 0) / 100 };
    case CMD.PROMISC: {
      const b = byte();
      if (b > 1) return { kind: 'other', command: f.command, data: d };
      return { kind: 'promiscuous', on: b === 1 };
    }
    case CMD.READY:
      byte();
      return { kind: 'ready' };
    case CMD.BLINK:
      return { kind: 'blink', count: byte() };
    case CMD.RESET:
      if (byte() !== RESET_BYTE) return { kind: 'other', command: f.command, data: d };
      return { kind: 'reset' };
    case CMD.FB_EXT: {
      const b = byte();
      if (b === 1) return { kind: 'framebufferExt', state: 'enable' };
      if (b === 0) return { kind: 'framebufferExt', state: 'disable' };
      if (b === QUERY_BYTE) return { kind: 'framebufferExt', state: 'query' };
      return { kind: 'other', command: f.command, data: d };
    }
    default: {
      const what = (Object.keys(QUERY_COMMANDS) as (keyof typeof QUERY_COMMANDS)[]).find(
        (k) => QUERY_COMMANDS[k] === f.command,
      );
      if (what) {
        byte();
        return { kind: 'query', what };
      }
      return { kind: 'other', command: f.command, data: d };
    }
  }
}
