import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  createKissDecoder,
  decodeKissFrame,
  encodeKissFrame,
  encodeKissFrames,
  escapeKiss,
  FEND,
  type KissEvent,
  type KissFrame,
  unescapeKiss,
} from '../../../firmware-bridge/rnode/kiss.ts';
import { isOutpostError } from '../../../protocol/errors.ts';

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).filter(Boolean), (h) => Number.parseInt(h, 16));
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(' ');
const frames = (events: KissEvent[]) =>
  events.flatMap((e) => (e.type === 'frame' ? [{ command: e.frame.command, data: [...e.frame.data] }] : []));

const commandArb = fc.integer({ min: 0, max: 255 }).filter((c) => c !== FEND);
const frameArb: fc.Arbitrary<KissFrame> = fc.record({
  command: commandArb,
  data: fc.oneof(
    fc.uint8Array({ maxLength: 508 }),
    fc.array(fc.constantFrom(0xc0, 0xdb, 0xdc, 0xdd, 0x00), { maxLength: 64 }).map((a) => Uint8Array.from(a)),
  ),
});

describe('kiss: golden frames (RADIO_PROTOCOLS §1.1, §1.3)', () => {
  it('escapes FESC first, then FEND', () => {
    assert.equal(toHex(escapeKiss(hex('DB C0 01'))), 'DB DD DB DC 01');
    assert.equal(toHex(escapeKiss(hex('C0 DB'))), 'DB DC DB DD');
    assert.equal(toHex(unescapeKiss(hex('DB DD DB DC 01'))), 'DB C0 01');
  });

  it('encodes the start-up frames exactly as Reticulum writes them', () => {
    assert.equal(toHex(encodeKissFrame(0x01, hex('33 B0 6C 00'))), 'C0 01 33 B0 6C 00 C0');
    assert.equal(toHex(encodeKissFrame(0x02, hex('00 01 E8 48'))), 'C0 02 00 01 E8 48 C0');
    assert.equal(
      toHex(
        encodeKissFrames([
          { command: 0x08, data: hex('73') },
          { command: 0x50, data: hex('00') },
          { command: 0x48, data: hex('00') },
          { command: 0x49, data: hex('00') },
        ]),
      ),
      'C0 08 73 C0 50 00 C0 48 00 C0 49 00 C0',
    );
  });

  it('decodes a shared-FEND burst into its frames', () => {
    const d = createKissDecoder();
    assert.deepEqual(frames(d.push(hex('C0 08 46 C0 50 01 56 C0 48 80 C0 49 81 C0'))), [
      { command: 0x08, data: [0x46] },
      { command: 0x50, data: [0x01, 0x56] },
      { command: 0x48, data: [0x80] },
      { command: 0x49, data: [0x81] },
    ]);
  });

  it('FEND FEND is an empty frame and yields nothing; garbage before the first FEND is skipped', () => {
    const d = createKissDecoder();
    assert.deepEqual(frames(d.push(hex('01 02 03 C0 C0 C0 23 60 C0'))), [{ command: 0x23, data: [0x60] }]);
    assert.equal(d.garbageBytes(), 3);
  });

  it('a bad escape drops that frame with KISS_BAD_ESCAPE; the next frame decodes', () => {
    const d = createKissDecoder();
    const events = d.push(hex('C0 00 01 DB 02 03 C0 00 AA C0'));
    assert.equal(events[0]!.type, 'violation');
    assert.ok(events[0]!.type === 'violation' && events[0]!.error.code === 'KISS_BAD_ESCAPE');
    assert.deepEqual(frames(events), [{ command: 0, data: [0xaa] }]);
    const end = d.push(hex('C0 00 01 DB C0'));
    assert.ok(end[0]!.type === 'violation' && end[0]!.error.code === 'KISS_BAD_ESCAPE', 'FESC right before FEND');
  });

  it('caps a frame at 508 bytes: longer ones are dropped with KISS_FRAME_TOO_LONG', () => {
    const d = createKissDecoder();
    const ok = d.push(encodeKissFrame(0, new Uint8Array(508).fill(7)));
    assert.equal(frames(ok)[0]!.data.length, 508);
    const long = Uint8Array.of(FEND, 0, ...new Uint8Array(509).fill(7), FEND, 0x23, 0x60, FEND);
    const events = d.push(long);
    assert.ok(events[0]!.type === 'violation' && events[0]!.error.code === 'KISS_FRAME_TOO_LONG');
    assert.deepEqual(frames(events), [{ command: 0x23, data: [0x60] }]);
    assert.throws(
      () => encodeKissFrame(0, new Uint8Array(509)),
      (e: unknown) => isOutpostError(e, 'KISS_FRAME_TOO_LONG'),
    );
  });

  it('reset() drops a partial frame: bytes up to the next FEND are discarded', () => {
    const d = createKissDecoder();
    d.push(hex('C0 00 01 02'));
    assert.equal(d.hasPartialFrame(), true);
    d.reset();
    assert.equal(d.hasPartialFrame(), false);
    assert.deepEqual(frames(d.push(hex('03 04 C0 23 60 C0'))), [{ command: 0x23, data: [0x60] }]);
  });

  it('without reset, a truncated frame is closed by the next FEND (why the driver needs the silence rule)', () => {
    const d = createKissDecoder();
    assert.deepEqual(frames(d.push(hex('C0 00 01 02 C0 23 60 C0'))), [
      { command: 0, data: [1, 2] },
      { command: 0x23, data: [0x60] },
    ]);
  });

  it('rejects a FEND or non-byte command when encoding', () => {
    for (const c of [FEND, -1, 256, 1.5]) {
      assert.throws(
        () => encodeKissFrame(c),
        (e: unknown) => isOutpostError(e, 'KISS_BAD_FRAME'),
      );
    }
  });

  it('decodeKissFrame rejects malformed single frames with typed errors', () => {
    for (const [bytes, code] of [
      ['', 'KISS_BAD_FRAME'],
      ['C0', 'KISS_BAD_FRAME'],
      ['C0 C0', 'KISS_BAD_FRAME'],
      ['00 01 C0', 'KISS_BAD_FRAME'],
      ['C0 00 01', 'KISS_BAD_FRAME'],
      ['C0 00 DB 01 C0', 'KISS_BAD_ESCAPE'],
      ['C0 00 01 C0 02 C0', 'KISS_BAD_FRAME'],
    ] as const) {
      assert.throws(
        () => decodeKissFrame(hex(bytes)),
        (e: unknown) => isOutpostError(e, code),
        bytes,
      );
    }
  });
});

describe('kiss: properties', () => {
  it('round trip: decode(encode(frame)) = frame', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        const back = decodeKissFrame(encodeKissFrame(f.command, f.data));
        assert.equal(back.command, f.command);
        assert.deepEqual([...back.data], [...f.data]);
        assert.deepEqual([...unescapeKiss(escapeKiss(f.data))], [...f.data]);
      }),
    );
  });

  it('any split of a byte stream into chunks yields the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (fs, cuts) => {
          const stream = encodeKissFrames(fs);
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const d = createKissDecoder();
          const events: KissEvent[] = [];
          let prev = 0;
          for (const p of [...points, stream.length]) {
            events.push(...d.push(stream.subarray(prev, p)));
            prev = p;
          }
          assert.deepEqual(
            frames(events),
            fs.map((f) => ({ command: f.command, data: [...f.data] })),
          );
          assert.equal(events.filter((e) => e.type === 'violation').length, 0);
        },
      ),
    );
  });

  it('garbage between frames never damages the frames around it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), frameArb), { minLength: 1, maxLength: 5 }),
        fc.uint8Array({ maxLength: 40 }),
        (pairs, tail) => {
          const parts: number[] = [];
          for (const [garbage, f] of pairs) parts.push(...garbage, ...encodeKissFrame(f.command, f.data));
          parts.push(...tail);
          const got = frames(createKissDecoder().push(Uint8Array.from(parts)));
          // Every real frame comes out, in order (garbage may add frames of its own between them).
          let i = 0;
          for (const g of got) {
            const want = pairs[i]?.[1];
            if (
              want &&
              g.command === want.command &&
              g.data.length === want.data.length &&
              g.data.every((b, k) => b === want.data[k])
            )
              i++;
          }
          assert.equal(i, pairs.length);
        },
      ),
    );
  });
});
