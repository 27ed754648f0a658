// The 16-byte Meshtastic on-air header: round trips, field packing, limits, and a total decoder.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshtasticError } from '../../../firmware-bridge/meshtastic/errors.ts';
import {
  channelHash,
  decodeOnAirPacket,
  encodeOnAirPacket,
  expandPsk,
  MAX_LORA_FRAME_BYTES,
  type OnAirPacket,
} from '../../../firmware-bridge/meshtastic/on-air.ts';
import { assertDecoderTotal, byteInputs } from '../../support/fuzz.ts';
import { u32 } from '../../support/meshtastic-arbitraries.ts';

const packetArb: fc.Arbitrary<OnAirPacket> = fc.record({
  header: fc.record({
    to: u32,
    from: u32,
    id: u32,
    hopLimit: fc.integer({ min: 0, max: 7 }),
    wantAck: fc.boolean(),
    viaMqtt: fc.boolean(),
    hopStart: fc.integer({ min: 0, max: 7 }),
    channelHash: fc.integer({ min: 0, max: 255 }),
    nextHop: fc.integer({ min: 0, max: 255 }),
    relayNode: fc.integer({ min: 0, max: 255 }),
  }),
  payload: fc.uint8Array({ maxLength: 239 }),
});

describe('meshtastic on-air packets', () => {
  it('round-trips every header and payload', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        const d = decodeOnAirPacket(encodeOnAirPacket(p));
        assert.deepEqual(
          { header: { ...d.header }, payload: [...d.payload] },
          { header: { ...p.header }, payload: [...p.payload] },
        );
      }),
    );
  });

  it('lays the header out little-endian with the flag bits of PacketHeader', () => {
    const frame = encodeOnAirPacket({
      header: {
        to: 0xffffffff,
        from: 0x11223344,
        id: 0xa0b0c0d0,
        hopLimit: 3,
        wantAck: true,
        viaMqtt: false,
        hopStart: 3,
        channelHash: 8,
        nextHop: 0,
        relayNode: 0x44,
      },
      payload: Uint8Array.from([0x08, 0x01]),
    });
    assert.equal(Buffer.from(frame).toString('hex'), 'ffffffff44332211d0c0b0a06b0800440801');
  });

  it('refuses frames above 255 bytes and headers out of range', () => {
    const base = decodeOnAirPacket(new Uint8Array(16));
    for (const bad of [
      { ...base, payload: new Uint8Array(MAX_LORA_FRAME_BYTES - 15) },
      { ...base, header: { ...base.header, hopLimit: 8 } },
      { ...base, header: { ...base.header, id: -1 } },
    ]) {
      assert.throws(
        () => encodeOnAirPacket(bad),
        (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_PB_INVALID_VALUE',
      );
    }
    assert.throws(
      () => decodeOnAirPacket(new Uint8Array(15)),
      (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_PB_TRUNCATED',
    );
  });

  it('hashes the channel like the firmware: the default LongFast channel is 8', () => {
    assert.equal(channelHash('LongFast', new Uint8Array([1])), 8);
    assert.equal(channelHash('x', new Uint8Array(0)), 'x'.charCodeAt(0));
    assert.equal(channelHash('x', new Uint8Array([0])), 'x'.charCodeAt(0), 'index 0: no key');
    assert.deepEqual([...expandPsk(new Uint8Array([2]))].at(-1), 0x02, 'index 2 bumps the last byte');
    assert.equal(expandPsk(new Uint8Array([1, 2, 3])).length, 16);
    assert.equal(expandPsk(new Uint8Array(20)).length, 32);
  });

  it('decodes any bytes or throws MeshtasticError (fuzz)', () => {
    const seeds = fc.sample(packetArb, { numRuns: 20, seed: 5 }).map(encodeOnAirPacket);
    const { accepted, rejected } = assertDecoderTotal(byteInputs(seeds, 300), decodeOnAirPacket);
    assert.ok(accepted > 0 && rejected > 0);
  });
});
