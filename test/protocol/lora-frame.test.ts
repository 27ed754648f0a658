import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../../protocol/bytes.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  createReplayWindow,
  decodeLoraHeader,
  deriveLoraSessionKeys,
  LORA_MAX_FRAGMENTS,
  LORA_OVERHEAD_BYTES,
  LORA_PROFILES,
  LORA_SEQ_MAX,
  type LoraFrameType,
  type LoraHeader,
  type LoraSession,
  loraFrameCount,
  loraPayloadCapacity,
  loraTypeInfo,
  openLoraFrame,
  sealLoraFrame,
  sealLoraMessage,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { encodeLoraHeader } from '../../protocol/lora-frame.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

function makeSession(tid = 't-1'): { device: LoraSession; controlPlane: LoraSession } {
  const dev = x25519KeyPair();
  const cp = x25519KeyPair();
  const deviceId = didKeyFromEd25519(ed25519KeyPair().publicKey);
  return {
    device: deriveLoraSessionKeys({
      deviceX25519: dev,
      controlPlaneX25519: { publicKey: cp.publicKey },
      tid,
      deviceId,
    }),
    controlPlane: deriveLoraSessionKeys({
      deviceX25519: { publicKey: dev.publicKey },
      controlPlaneX25519: cp,
      tid,
      deviceId,
    }),
  };
}

const ALL_TYPES: LoraFrameType[] = [
  'telemetry',
  'telemetry.ack',
  'tool.call',
  'tool.result',
  'heartbeat',
  'control',
  'enroll.request',
  'enroll.response',
  'beacon',
];
const AEAD_TYPES = ALL_TYPES.filter((t) => loraTypeInfo(t).protection === 'aead');
const { device, controlPlane } = makeSession();

function ends(type: LoraFrameType) {
  const down = loraTypeInfo(type).direction === 'downlink';
  return {
    sender: down ? controlPlane : device,
    receiver: down ? device : controlPlane,
    expect: down ? ('downlink' as const) : ('uplink' as const),
  };
}

describe('LoRa header', () => {
  const headerArb: fc.Arbitrary<LoraHeader> = fc
    .record({
      type: fc.constantFrom(...ALL_TYPES),
      shortId: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      seq: fc.integer({ min: LORA_MAX_FRAGMENTS, max: LORA_SEQ_MAX - LORA_MAX_FRAGMENTS }),
      listen: fc.boolean(),
      count: fc.integer({ min: 1, max: LORA_MAX_FRAGMENTS }),
      index: fc.nat(LORA_MAX_FRAGMENTS - 1),
    })
    .map(({ type, shortId, seq, listen, count, index }) => {
      const info = loraTypeInfo(type);
      const fragmented = info.protection === 'aead' && count > 1;
      return {
        type,
        direction: info.direction,
        shortId,
        seq,
        listen: type === 'beacon' ? false : listen,
        ...(fragmented ? { fragment: { index: index % count, count } } : {}),
      };
    });

  it('round-trips every valid header; the first two bytes are version|type and D|F|L flags', () => {
    fc.assert(
      fc.property(headerArb, fc.uint8Array({ minLength: 17, maxLength: 40 }), (h, body) => {
        const bytes = encodeLoraHeader(h);
        assert.equal(bytes.length, h.fragment ? 11 : 10);
        assert.equal(bytes[0]! >>> 5, 1);
        assert.equal((bytes[1]! & 0x80) !== 0, h.direction === 'downlink');
        assert.equal((bytes[1]! & 0x40) !== 0, h.fragment !== undefined);
        assert.equal((bytes[1]! & 0x20) !== 0, h.listen);
        const frame = new Uint8Array([...bytes, ...body]);
        const d = decodeLoraHeader(frame);
        assert.deepEqual(d.header, h);
        assert.equal(toHex(d.headerBytes), toHex(bytes));
        assert.equal(toHex(d.body), toHex(body));
      }),
    );
  });

  it('refuses headers that cannot be sent', () => {
    const h: LoraHeader = { type: 'telemetry', direction: 'uplink', shortId: new Uint8Array(4), seq: 1, listen: false };
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, direction: 'downlink' })),
      'LORA_BAD_TYPE',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, seq: 2 ** 32 })),
      'LORA_SEQ_OUT_OF_RANGE',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, seq: -1 })),
      'LORA_SEQ_OUT_OF_RANGE',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, shortId: new Uint8Array(3) })),
      'LORA_SHORT_ID_MISMATCH',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, fragment: { index: 0, count: 1 } })),
      'LORA_BAD_FRAGMENT',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, fragment: { index: 2, count: 2 } })),
      'LORA_BAD_FRAGMENT',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, fragment: { index: 0, count: 17 } })),
      'LORA_BAD_FRAGMENT',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, type: 'enroll.request', fragment: { index: 0, count: 2 } })),
      'LORA_BAD_FRAGMENT',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, type: 'beacon', direction: 'downlink', listen: true })),
      'LORA_BAD_FLAGS',
    );
    assert.equal(
      codeOf(() => encodeLoraHeader({ ...h, type: 'nope' as LoraFrameType })),
      'LORA_BAD_TYPE',
    );
  });

  it('checks fragment seq arithmetic at both ends of the seq space', () => {
    const head = (seq: number, frag: number) =>
      new Uint8Array([
        0x23,
        0xc0,
        1,
        2,
        3,
        4,
        seq >>> 24,
        (seq >>> 16) & 255,
        (seq >>> 8) & 255,
        seq & 255,
        frag,
        ...new Uint8Array(17),
      ]);
    assert.equal(
      codeOf(() => decodeLoraHeader(head(0, 0x11))),
      'LORA_BAD_FRAGMENT',
    ); // index 1 at seq 0
    assert.equal(
      codeOf(() => decodeLoraHeader(head(LORA_SEQ_MAX, 0x01))),
      'LORA_BAD_FRAGMENT',
    ); // runs past 2^32−1
    assert.equal(
      codeOf(() => decodeLoraHeader(head(LORA_SEQ_MAX, 0x11))),
      'accepted',
    );
  });
});

describe('LoRa AEAD frames', () => {
  it('seal then open round-trips any payload of any AEAD type up to the profile capacity', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...AEAD_TYPES),
        fc.constantFrom(LORA_PROFILES.meshtastic, LORA_PROFILES.rnode),
        fc.integer({ min: 0, max: LORA_SEQ_MAX }),
        fc.boolean(),
        fc.uint8Array({ minLength: 1, maxLength: 228 }),
        (type, profile, seq, listen, payload) => {
          const p = payload.subarray(0, loraPayloadCapacity(profile.maxFrameBytes).single);
          const { sender, receiver, expect } = ends(type);
          const frame = sealLoraFrame(sender, { type, seq, listen }, p, profile);
          assert.equal(frame.length, p.length + LORA_OVERHEAD_BYTES);
          assert.ok(frame.length <= profile.maxFrameBytes);
          const opened = openLoraFrame(frame, receiver, { expect, maxFrameBytes: profile.maxFrameBytes });
          assert.equal(toHex(opened.payload), toHex(p));
          assert.deepEqual(opened.header, { type, direction: expect, shortId: device.shortId, seq, listen });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('overhead is exactly 26 bytes (27 for a fragment): 10-byte header + 16-byte tag', () => {
    assert.equal(LORA_OVERHEAD_BYTES, 26);
    assert.deepEqual(loraPayloadCapacity(233), { single: 207, perFragment: 206 });
    assert.deepEqual(loraPayloadCapacity(254), { single: 228, perFragment: 227 });
  });

  it('any single bit flip anywhere in a sealed frame is rejected with a typed error', () => {
    for (const [type, payload] of [
      ['telemetry', fromHex('016480f2d6ca064a00ae0344')],
      ['tool.call', fromHex('010000a0')],
    ] as const) {
      const { sender, receiver, expect } = ends(type);
      for (const fragment of [undefined, { index: 1, count: 3 }]) {
        const frame = sealLoraFrame(
          sender,
          { type, seq: 77, listen: true, ...(fragment ? { fragment } : {}) },
          payload,
        );
        assert.equal(
          codeOf(() => openLoraFrame(frame, receiver, { expect })),
          'accepted',
        );
        const seen = new Set<string>();
        for (let bit = 0; bit < frame.length * 8; bit++) {
          const bad = frame.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          const code = codeOf(() => openLoraFrame(bad, receiver, { expect }));
          assert.ok(code.startsWith('LORA_'), `bit ${bit}: ${code}`);
          seen.add(code);
          if (bit >= 8 * (fragment ? 11 : 10)) assert.equal(code, 'LORA_AUTH_FAILED', `body bit ${bit}`);
        }
        for (const code of ['LORA_AUTH_FAILED', 'LORA_BAD_VERSION', 'LORA_BAD_FLAGS', 'LORA_SHORT_ID_MISMATCH']) {
          assert.ok(seen.has(code), `${type}: some flip gives ${code}`);
        }
      }
    }
  });

  it('a frame sealed under another session, or under the other direction key, fails authentication', () => {
    const stranger = makeSession();
    const payload = fromHex('00901c00');
    const frame = sealLoraFrame(device, { type: 'heartbeat', seq: 5 }, payload);
    const sameShortId = { ...stranger.controlPlane, shortId: device.shortId };
    assert.equal(
      codeOf(() => openLoraFrame(frame, sameShortId, { expect: 'uplink' })),
      'LORA_AUTH_FAILED',
    );
    const swapped = { shortId: device.shortId, uplinkKey: device.downlinkKey, downlinkKey: device.uplinkKey };
    const mis = sealLoraFrame(swapped, { type: 'heartbeat', seq: 6 }, payload);
    assert.equal(
      codeOf(() => openLoraFrame(mis, controlPlane, { expect: 'uplink' })),
      'LORA_AUTH_FAILED',
    );
  });

  it('a receiver refuses frames travelling the other way (reflection)', () => {
    const down = sealLoraFrame(controlPlane, { type: 'tool.call', seq: 1 }, fromHex('010000a0'));
    assert.equal(
      codeOf(() => openLoraFrame(down, controlPlane, { expect: 'uplink' })),
      'LORA_WRONG_DIRECTION',
    );
    const up = sealLoraFrame(device, { type: 'tool.result', seq: 1 }, fromHex('0201f6'));
    assert.equal(
      codeOf(() => openLoraFrame(up, device, { expect: 'downlink' })),
      'LORA_WRONG_DIRECTION',
    );
  });

  it('a replayed seq passes authentication but is refused by the replay window', () => {
    const window = createReplayWindow();
    const frame = sealLoraFrame(device, { type: 'heartbeat', seq: 9 }, fromHex('00901c00'));
    const receive = () => {
      const opened = openLoraFrame(frame, controlPlane, { expect: 'uplink' });
      window.accept(opened.header.seq);
    };
    receive();
    assert.equal(codeOf(receive), 'LORA_REPLAY');
  });

  it('refuses to seal what it cannot send', () => {
    assert.equal(
      codeOf(() => sealLoraFrame(device, { type: 'beacon', seq: 1 }, new Uint8Array(4))),
      'LORA_BAD_TYPE',
    );
    assert.equal(
      codeOf(() => sealLoraFrame(device, { type: 'heartbeat', seq: 1 }, new Uint8Array(0))),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => sealLoraFrame(device, { type: 'heartbeat', seq: 1 }, new Uint8Array(208), LORA_PROFILES.meshtastic)),
      'LORA_FRAME_TOO_LONG',
    );
    assert.equal(
      codeOf(() =>
        sealLoraFrame({ ...device, uplinkKey: new Uint8Array(16) }, { type: 'heartbeat', seq: 1 }, new Uint8Array(4)),
      ),
      'LORA_KEY_INVALID',
    );
  });
});

describe('LoRa messages and fragments', () => {
  it('splits into 1..16 frames with consecutive seqs, each within the MTU', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(LORA_PROFILES.meshtastic, LORA_PROFILES.rnode),
        fc.integer({ min: 1, max: 16 * 227 }),
        fc.nat(1_000_000),
        (profile, size, firstSeq) => {
          const payload = new Uint8Array(size).map((_, i) => i * 31);
          const cap = loraPayloadCapacity(profile.maxFrameBytes);
          if (size > LORA_MAX_FRAGMENTS * cap.perFragment) {
            assert.equal(
              codeOf(() => loraFrameCount(size, profile.maxFrameBytes)),
              'LORA_MESSAGE_TOO_LARGE',
            );
            return;
          }
          const frames = sealLoraMessage(controlPlane, { type: 'tool.call', firstSeq }, payload, profile);
          assert.equal(frames.length, loraFrameCount(size, profile.maxFrameBytes));
          assert.equal(frames.length, size <= cap.single ? 1 : Math.ceil(size / cap.perFragment));
          frames.forEach((f, i) => {
            assert.ok(f.length <= profile.maxFrameBytes);
            const { header } = decodeLoraHeader(f);
            assert.equal(header.seq, firstSeq + i);
            if (frames.length > 1) assert.deepEqual(header.fragment, { index: i, count: frames.length });
            else assert.equal(header.fragment, undefined);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses messages that would need more than 16 fragments or run past the last seq', () => {
    const cap = loraPayloadCapacity(233).perFragment;
    assert.equal(
      codeOf(() =>
        sealLoraMessage(controlPlane, { type: 'tool.call', firstSeq: 0 }, new Uint8Array(16 * cap + 1), {
          maxFrameBytes: 233,
        }),
      ),
      'LORA_MESSAGE_TOO_LARGE',
    );
    assert.equal(
      codeOf(() =>
        sealLoraMessage(controlPlane, { type: 'tool.call', firstSeq: LORA_SEQ_MAX }, new Uint8Array(300), {
          maxFrameBytes: 233,
        }),
      ),
      'LORA_SEQ_OUT_OF_RANGE',
    );
    assert.equal(
      codeOf(() => loraFrameCount(10, 27)),
      'LORA_FRAME_TOO_LONG',
    );
    assert.equal(
      codeOf(() => loraFrameCount(10, 509)),
      'LORA_FRAME_TOO_LONG',
    );
  });
});
