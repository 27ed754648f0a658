import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CMD,
  type DeviceMessage,
  decodeDeviceMessage,
  decodeHostMessage,
  encodeDeviceMessage,
  encodeHostMessage,
  type HostMessage,
  rnodeError,
} from '../../../firmware-bridge/rnode/commands.ts';
import { createKissDecoder, encodeKissFrame, type KissFrame } from '../../../firmware-bridge/rnode/kiss.ts';
import { isOutpostError } from '../../../protocol/errors.ts';

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).filter(Boolean), (h) => Number.parseInt(h, 16));
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(' ');
const wire = (m: HostMessage) => {
  const f = encodeHostMessage(m);
  return toHex(encodeKissFrame(f.command, f.data));
};
const frame = (s: string): KissFrame => {
  const b = hex(s);
  return { command: b[0]!, data: b.subarray(1) };
};

describe('rnode commands: host → device golden frames (RADIO_PROTOCOLS §1.3 capture)', () => {
  const rows: [string, HostMessage, string][] = [
    ['867.2 MHz', { kind: 'frequency', hz: 867_200_000 }, 'C0 01 33 B0 6C 00 C0'],
    ['125 kHz', { kind: 'bandwidth', hz: 125_000 }, 'C0 02 00 01 E8 48 C0'],
    ['7 dBm', { kind: 'txPower', dbm: 7 }, 'C0 03 07 C0'],
    ['SF8', { kind: 'spreadingFactor', sf: 8 }, 'C0 04 08 C0'],
    ['CR 4/5', { kind: 'codingRate', cr: 5 }, 'C0 05 05 C0'],
    ['radio on', { kind: 'radioState', state: 'on' }, 'C0 06 01 C0'],
    ['radio off', { kind: 'radioState', state: 'off' }, 'C0 06 00 C0'],
    ['radio query', { kind: 'radioState', state: 'query' }, 'C0 06 FF C0'],
    ['33 % short-term lock', { kind: 'stAlock', percent: 33 }, 'C0 0B 0C E4 C0'],
    ['frequency query', { kind: 'frequency', hz: null }, 'C0 01 00 00 00 00 C0'],
    ['txpower query', { kind: 'txPower', dbm: null }, 'C0 03 FF C0'],
    ['detect', { kind: 'detect' }, 'C0 08 73 C0'],
    ['version query', { kind: 'query', what: 'firmwareVersion' }, 'C0 50 00 C0'],
    ['leave', { kind: 'leave' }, 'C0 0A FF C0'],
    ['framebuffer off', { kind: 'framebufferExt', state: 'disable' }, 'C0 41 00 C0'],
    ['hard reset', { kind: 'reset' }, 'C0 55 F8 C0'],
    ['data with FEND and FESC', { kind: 'data', data: hex('C0 DB 01') }, 'C0 00 DB DC DB DD 01 C0'],
  ];
  for (const [name, m, expected] of rows) {
    it(name, () => {
      assert.equal(wire(m), expected);
      const d = createKissDecoder().push(hex(expected));
      assert.ok(d[0]?.type === 'frame');
      assert.deepEqual(decodeHostMessage(d[0].frame), m);
    });
  }
});

describe('rnode commands: device → host decoding', () => {
  it('RSSI = byte − 157, SNR = int8 / 4', () => {
    assert.deepEqual(decodeDeviceMessage(frame('23 3C')), { kind: 'rssi', dbm: -97 });
    assert.deepEqual(decodeDeviceMessage(frame('24 F6')), { kind: 'snr', db: -2.5 });
    assert.deepEqual(decodeDeviceMessage(frame('24 28')), { kind: 'snr', db: 10 });
  });

  it('firmware version, platform, MCU, detect, reset', () => {
    assert.deepEqual(decodeDeviceMessage(frame('50 01 56')), { kind: 'firmwareVersion', major: 1, minor: 86 });
    assert.deepEqual(decodeDeviceMessage(frame('48 80')), { kind: 'platform', platform: 0x80 });
    assert.deepEqual(decodeDeviceMessage(frame('49 81')), { kind: 'mcu', mcu: 0x81 });
    assert.deepEqual(decodeDeviceMessage(frame('08 46')), { kind: 'detect', ok: true });
    assert.deepEqual(decodeDeviceMessage(frame('55 F8')), { kind: 'reset' });
  });

  it('CHTM: 11 bytes of airtime/load % × 100 and three RSSI+157 bytes (0xFF = no interference)', () => {
    assert.deepEqual(decodeDeviceMessage(frame('25 00 64 00 0A 01 F4 00 32 3C 25 FF')), {
      kind: 'channelStats',
      airtimeShortPct: 1,
      airtimeLongPct: 0.1,
      channelLoadShortPct: 5,
      channelLoadLongPct: 0.5,
      currentRssiDbm: -97,
      noiseFloorDbm: -120,
      interferenceDbm: null,
    });
  });

  it('PHYPRM: six big-endian u16', () => {
    assert.deepEqual(decodeDeviceMessage(frame('26 08 00 00 3D 00 12 00 25 00 18 00 31')), {
      kind: 'phyParams',
      symbolTimeUs: 2048,
      symbolRateBaud: 61,
      preambleSymbols: 18,
      preambleMs: 37,
      csmaSlotMs: 24,
      difsMs: 49,
    });
  });

  it('unsolicited RX/TX counters decode as plain u32 (R3: they must never kill a host)', () => {
    assert.deepEqual(decodeDeviceMessage(frame('21 00 00 01 02')), { kind: 'statRx', count: 258 });
    assert.deepEqual(decodeDeviceMessage(frame('22 FF FF FF FF')), { kind: 'statTx', count: 4_294_967_295 });
  });

  it('error codes map to typed errors', () => {
    const codes: [number, string][] = [
      [1, 'RNODE_INIT_RADIO'],
      [2, 'RNODE_TX_FAILED'],
      [3, 'RNODE_EEPROM_LOCKED'],
      [4, 'RNODE_QUEUE_FULL'],
      [5, 'RNODE_MEMORY_LOW'],
      [6, 'RNODE_MODEM_TIMEOUT'],
      [0x77, 'RNODE_UNKNOWN_ERROR'],
    ];
    for (const [code, name] of codes) {
      const m = decodeDeviceMessage({ command: CMD.ERROR, data: Uint8Array.of(code) });
      assert.ok(m.kind === 'error' && m.error.code === name && m.code === code, name);
      assert.equal(rnodeError(code).code, name);
    }
  });

  it('wrong argument lengths are RNODE_BAD_ARGUMENT', () => {
    for (const f of ['01 00 00 01', '23', '23 01 02', '25 00', '26 00 00', '50 01', '55 00', '00', '90']) {
      assert.throws(
        () => decodeDeviceMessage(frame(f)),
        (e: unknown) => isOutpostError(e, 'RNODE_BAD_ARGUMENT'),
        f,
      );
    }
    for (const f of ['01 00', '03', '0B 01', '00']) {
      assert.throws(
        () => decodeHostMessage(frame(f)),
        (e: unknown) => isOutpostError(e, 'RNODE_BAD_ARGUMENT'),
        f,
      );
    }
  });

  it('out-of-range values are refused when encoding', () => {
    const bad: HostMessage[] = [
      { kind: 'frequency', hz: -1 },
      { kind: 'txPower', dbm: 255 },
      { kind: 'stAlock', percent: 101 },
      { kind: 'spreadingFactor', sf: 1.5 },
    ];
    for (const m of bad) {
      assert.throws(
        () => encodeHostMessage(m),
        (e: unknown) => isOutpostError(e, 'RNODE_BAD_ARGUMENT'),
        m.kind,
      );
    }
    assert.throws(
      () => encodeDeviceMessage({ kind: 'rssi', dbm: -200 }),
      (e: unknown) => isOutpostError(e, 'RNODE_BAD_ARGUMENT'),
    );
  });
});

const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const pct = fc.integer({ min: 0, max: 10_000 }).map((v) => v / 100);
const deviceArb: fc.Arbitrary<DeviceMessage> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 508 }).map((data) => ({ kind: 'data' as const, data })),
  fc.integer({ min: 0, max: 0xffffffff }).map((hz) => ({ kind: 'frequency' as const, hz })),
  fc.integer({ min: 0, max: 0xffffffff }).map((hz) => ({ kind: 'bandwidth' as const, hz })),
  fc.integer({ min: -128, max: 127 }).map((dbm) => ({ kind: 'txPower' as const, dbm })),
  u8.map((sf) => ({ kind: 'spreadingFactor' as const, sf })),
  u8.map((cr) => ({ kind: 'codingRate' as const, cr })),
  fc.boolean().map((on) => ({ kind: 'radioState' as const, on })),
  fc.boolean().map((ok) => ({ kind: 'detect' as const, ok })),
  pct.map((percent) => ({ kind: 'stAlock' as const, percent })),
  pct.map((percent) => ({ kind: 'ltAlock' as const, percent })),
  fc.integer({ min: 0, max: 0xffffffff }).map((count) => ({ kind: 'statRx' as const, count })),
  fc.integer({ min: -157, max: 98 }).map((dbm) => ({ kind: 'rssi' as const, dbm })),
  fc.integer({ min: -128, max: 127 }).map((q) => ({ kind: 'snr' as const, db: q / 4 })),
  fc
    .record({
      airtimeShortPct: pct,
      airtimeLongPct: pct,
      channelLoadShortPct: pct,
      channelLoadLongPct: pct,
      currentRssiDbm: fc.integer({ min: -157, max: 98 }),
      noiseFloorDbm: fc.integer({ min: -157, max: 98 }),
      interferenceDbm: fc.option(fc.integer({ min: -157, max: 97 }), { nil: null }),
    })
    .map((r) => ({ kind: 'channelStats' as const, ...r })),
  fc
    .record({
      symbolTimeUs: u16,
      symbolRateBaud: u16,
      preambleSymbols: u16,
      preambleMs: u16,
      csmaSlotMs: u16,
      difsMs: u16,
    })
    .map((r) => ({ kind: 'phyParams' as const, ...r })),
  fc.record({ major: u8, minor: u8 }).map((v) => ({ kind: 'firmwareVersion' as const, ...v })),
  fc.constant({ kind: 'reset' as const }),
  fc.integer({ min: -120, max: 135 }).map((celsius) => ({ kind: 'temperature' as const, celsius })),
);

const hostArb: fc.Arbitrary<HostMessage> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 508 }).map((data) => ({ kind: 'data' as const, data })),
  fc.option(fc.integer({ min: 1, max: 0xffffffff }), { nil: null }).map((hz) => ({ kind: 'frequency' as const, hz })),
  fc.option(fc.integer({ min: 1, max: 0xffffffff }), { nil: null }).map((hz) => ({ kind: 'bandwidth' as const, hz })),
  fc.option(fc.integer({ min: 0, max: 0xfe }), { nil: null }).map((dbm) => ({ kind: 'txPower' as const, dbm })),
  fc.option(fc.integer({ min: 0, max: 0xfe }), { nil: null }).map((sf) => ({ kind: 'spreadingFactor' as const, sf })),
  fc.option(fc.integer({ min: 0, max: 0xfe }), { nil: null }).map((cr) => ({ kind: 'codingRate' as const, cr })),
  fc
    .constantFrom('on' as const, 'off' as const, 'query' as const)
    .map((state) => ({ kind: 'radioState' as const, state })),
  fc.constantFrom<HostMessage>(
    { kind: 'detect' },
    { kind: 'leave' },
    { kind: 'reset' },
    { kind: 'ready' },
    { kind: 'radioLock' },
  ),
  pct.map((percent) => ({ kind: 'stAlock' as const, percent })),
  pct.map((percent) => ({ kind: 'ltAlock' as const, percent })),
  fc
    .constantFrom('statRx' as const, 'platform' as const, 'mcu' as const, 'firmwareVersion' as const, 'board' as const)
    .map((what) => ({ kind: 'query' as const, what })),
  fc
    .constantFrom('enable' as const, 'disable' as const, 'query' as const)
    .map((state) => ({ kind: 'framebufferExt' as const, state })),
);

describe('rnode commands: properties', () => {
  it('device messages round-trip through KISS', () => {
    fc.assert(
      fc.property(deviceArb, (m) => {
        const f = encodeDeviceMessage(m);
        const events = createKissDecoder().push(encodeKissFrame(f.command, f.data));
        assert.ok(events.length === 1 && events[0]!.type === 'frame');
        assert.deepEqual(decodeDeviceMessage(events[0]!.frame), m);
      }),
    );
  });

  it('host messages round-trip through KISS', () => {
    fc.assert(
      fc.property(hostArb, (m) => {
        const f = encodeHostMessage(m);
        const events = createKissDecoder().push(encodeKissFrame(f.command, f.data));
        assert.ok(events.length === 1 && events[0]!.type === 'frame');
        assert.deepEqual(decodeHostMessage(events[0]!.frame), m);
      }),
    );
  });
});
