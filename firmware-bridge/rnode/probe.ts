// `probeRNode`: asks whatever sits on a serial port whether it is an RNode, and what it is, without
// changing its configuration (for `outpost radio probe` and installation checks).

import type { Logger } from '../../protocol/log.ts';
import { silentLogger } from '../../protocol/log.ts';
import { RadioError } from '../errors.ts';
import { MCU, MIN_FIRMWARE_VERSION, PLATFORM } from './commands.ts';
import { DEFAULT_RNODE_TIMING } from './driver.ts';
import { detectDevice, openSerialLink } from './serial-link.ts';

export interface RNodeProbeResult {
  readonly path: string;
  /** "major.minor", e.g. "1.86". */
  readonly firmware: string;
  /** False when the firmware is older than 1.52 and the driver will refuse it. */
  readonly firmwareSupported: boolean;
  readonly platform: string;
  readonly mcu: string;
  readonly board: number | undefined;
  /** Current radio settings as the device reports them (0 / undefined when never set since boot). */
  readonly radio: {
    readonly on: boolean | undefined;
    readonly freqHz: number | undefined;
    readonly bandwidthHz: number | undefined;
    readonly txPowerDbm: number | undefined;
    readonly spreadingFactor: number | undefined;
    readonly codingRate: number | undefined;
  };
}

export interface RNodeProbeOptions {
  readonly log?: Logger;
  readonly bootDelayMs?: number;
  readonly detectTimeoutMs?: number;
  readonly detectAttempts?: number;
  readonly queryTimeoutMs?: number;
}

function name(table: Readonly<Record<string, number>>, code: number | undefined): string {
  if (code === undefined) return 'unknown';
  const found = Object.entries(table).find(([, v]) => v === code);
  return found ? found[0] : `0x${code.toString(16)}`;
}

/**
 * Opens `path`, waits for a boot, sends the detect burst and read-only queries, and closes again.
 * Throws RadioError: RNODE_NOT_DETECTED when nothing answers like an RNode, PORT_FAILED when the
 * port cannot be opened or dies.
 */
export async function probeRNode(path: string, options: RNodeProbeOptions = {}): Promise<RNodeProbeResult> {
  const log = (options.log ?? silentLogger).child({ probe: 'rnode', path });
  const opened = await openSerialLink({ path, log });
  if (!('lost' in opened)) {
    throw opened.error ?? new RadioError('PORT_FAILED', opened.reason, { details: { path } });
  }
  const link = opened;
  try {
    await link.sleep(options.bootDelayMs ?? DEFAULT_RNODE_TIMING.bootDelayMs);
    const id = await detectDevice(
      link,
      {
        detectTimeoutMs: options.detectTimeoutMs ?? DEFAULT_RNODE_TIMING.detectTimeoutMs,
        detectAttempts: options.detectAttempts ?? DEFAULT_RNODE_TIMING.detectAttempts,
      },
      log,
    );
    if (!id) throw new RadioError('RNODE_NOT_DETECTED', `no RNode answered on ${path}`, { details: { path } });
    const radio: { -readonly [K in keyof RNodeProbeResult['radio']]: RNodeProbeResult['radio'][K] } = {
      on: undefined,
      freqHz: undefined,
      bandwidthHz: undefined,
      txPowerDbm: undefined,
      spreadingFactor: undefined,
      codingRate: undefined,
    };
    let board: number | undefined;
    const off = link.onMessage((m) => {
      if (m.kind === 'radioState') radio.on = m.on;
      else if (m.kind === 'frequency') radio.freqHz = m.hz;
      else if (m.kind === 'bandwidth') radio.bandwidthHz = m.hz;
      else if (m.kind === 'txPower') radio.txPowerDbm = m.dbm;
      else if (m.kind === 'spreadingFactor') radio.spreadingFactor = m.sf;
      else if (m.kind === 'codingRate') radio.codingRate = m.cr;
      else if (m.kind === 'board') board = m.model;
    });
    await link.send(
      { kind: 'query', what: 'board' },
      { kind: 'radioState', state: 'query' },
      { kind: 'frequency', hz: null },
      { kind: 'bandwidth', hz: null },
      { kind: 'txPower', dbm: null },
      { kind: 'spreadingFactor', sf: null },
      { kind: 'codingRate', cr: null },
    );
    await link.waitFor(
      () => radio.on !== undefined && radio.codingRate !== undefined && board !== undefined,
      options.queryTimeoutMs ?? 500,
    );
    off();
    const { major, minor } = id.firmware;
    return {
      path,
      firmware: `${major}.${minor}`,
      firmwareSupported:
        major > MIN_FIRMWARE_VERSION.major ||
        (major === MIN_FIRMWARE_VERSION.major && minor >= MIN_FIRMWARE_VERSION.minor),
      platform: name(PLATFORM, id.platform),
      mcu: name(MCU, id.mcu),
      board,
      radio: {
        ...radio,
        // A TX power of 0xFF (read as -1) means "never set since boot".
        txPowerDbm: radio.txPowerDbm === -1 ? undefined : radio.txPowerDbm,
        freqHz: radio.freqHz === 0 ? undefined : radio.freqHz,
        bandwidthHz: radio.bandwidthHz === 0 ? undefined : radio.bandwidthHz,
        spreadingFactor: radio.spreadingFactor === 0 ? undefined : radio.spreadingFactor,
      },
    };
  } catch (e) {
    if (e instanceof RadioError) throw e;
    throw new RadioError('PORT_FAILED', `probing ${path} failed: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  } finally {
    await link.close();
  }
}
