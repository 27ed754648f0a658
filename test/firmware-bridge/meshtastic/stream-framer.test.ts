// Stream framing: round trips over arbitrary chunk splits, garbage and log text between frames,
// oversized headers, bodies full of 0x94 0xC3 (M2), stray 0x94 in text (M1), false headers, fuzz.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshtasticError } from '../../../firmware-bridge/meshtastic/errors.ts';
import {
  createMyNodeInfo,
  createQueueStatus,
  encodeFromRadio,
  isPlausibleFromRadio,
} from '../../../firmware-bridge/meshtastic/protobuf.ts';
import {
  createStreamDecoder,
  encodeStreamFrame,
  MAX_STREAM_BODY_BYTES,
  type StreamDecoder,
  type StreamEvent,
} from '../../../firmware-bridge/meshtastic/stream-framer.ts';
import { assertDecoderTotal, byteInputs, fuzzCases } from '../../support/fuzz.ts';
import { fromRadioArb, hostileBytes } from '../../support/meshtastic-arbitraries.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** Splits `bytes` at the given cut points and pushes each piece, then flushes. */
function feed(decoder: StreamDecoder, bytes: Uint8Array, cuts: number[] = []): StreamEvent[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: StreamEvent[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    out.push(...decoder.push(bytes.subarray(at, p)));
    at = p;
  }
  out.push(...decoder.flush());
  return out;
}

const framesOf = (events: StreamEvent[]) =>
  events.filter((e): e is Extract<StreamEvent, { kind: 'frame' }> => e.kind === 'frame').map((e) => hex(e.body));
const textOf = (events: StreamEvent[]) =>
  events
    .filter((e): e is Extract<StreamEvent, { kind: 'debug' }> => e.kind === 'debug')
    .map((e) => e.text)
    .join('');

/** Real FromRadio bodies (never empty), some stuffed with start bytes. */
const bodyArb = fromRadioArb
  .map((m) => encodeFromRadio(m))
  .filter((b) => b.length > 0 && b.length <= MAX_STREAM_BODY_BYTES && isPlausibleFromRadio(b));

/** Log text as the firmware prints it: printable ASCII lines, or UTF-8 with 0x94 continuation bytes. */
const logTextArb = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcXYZ019 |:[]-_\r\n'.split('')), maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => `${s}\u2014Ô\u00c3 ${s}\n`), // — = e2 80 94, Ô = c3 94
);

describe('meshtastic stream framer', () => {
  it('encodes a header of 0x94 0xC3 and a big-endian length', () => {
    assert.equal(hex(encodeStreamFrame(new Uint8Array([1, 2, 3]))), '94c30003010203');
    assert.equal(hex(encodeStreamFrame(new Uint8Array(0))), '94c30000');
    assert.equal(hex(encodeStreamFrame(new Uint8Array(300)).subarray(0, 4)), '94c3012c');
    assert.throws(
      () => encodeStreamFrame(new Uint8Array(MAX_STREAM_BODY_BYTES + 1)),
      (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_FRAME_TOO_LONG',
    );
  });

  it('round-trips any sequence of frames over any chunk split', () => {
    fc.assert(
      fc.property(fc.array(bodyArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (bodies, cuts) => {
        const wire = concat(bodies.map((b) => encodeStreamFrame(b)));
        const events = feed(createStreamDecoder({ accept: isPlausibleFromRadio }), wire, cuts);
        assert.deepEqual(framesOf(events), bodies.map(hex));
        assert.ok(events.every((e) => e.kind === 'frame'));
      }),
      { numRuns: 500 },
    );
  });

  it('separates log text from frames, whatever the text contains (M1) and however it is split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(logTextArb, bodyArb), { maxLength: 5 }),
        logTextArb,
        fc.array(fc.nat(), { maxLength: 12 }),
        (pairs, tail, cuts) => {
          const parts: Uint8Array[] = [];
          for (const [text, body] of pairs) parts.push(Buffer.from(text, 'utf8'), encodeStreamFrame(body));
          parts.push(Buffer.from(tail, 'utf8'));
          const events = feed(createStreamDecoder({ accept: isPlausibleFromRadio }), concat(parts), cuts);
          assert.deepEqual(
            framesOf(events),
            pairs.map(([, b]) => hex(b)),
          );
          assert.equal(textOf(events), pairs.map(([t]) => t).join('') + tail);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('finds every frame among arbitrary garbage, including garbage full of 0x94 0xC3', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(hostileBytes(40), bodyArb), { maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (pairs, cuts) => {
          const parts = pairs.flatMap(([g, b]) => [g, encodeStreamFrame(b)]);
          const events = feed(createStreamDecoder({ accept: isPlausibleFromRadio }), concat(parts), cuts);
          const found = framesOf(events);
          // Every real frame appears, in order (garbage may, very rarely, itself hold a valid frame).
          let at = 0;
          for (const [, b] of pairs) {
            const i = found.indexOf(hex(b), at);
            assert.ok(i >= 0, `frame ${hex(b)} lost`);
            at = i + 1;
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('M2: a body holding 0x94 0xC3 and whole fake frames is kept intact, and so is the frame after it', () => {
    const inner = encodeStreamFrame(encodeFromRadio({ id: 0, payload: { kind: 'rebooted', rebooted: true } }));
    const payload = concat([inner, Buffer.from('94c3000594c394c3', 'hex'), inner]);
    const body = encodeFromRadio({
      id: 1,
      payload: { kind: 'logRecord', logRecord: { message: '', time: 0, source: hex(payload), level: 0 } },
    });
    const binary = encodeFromRadio({
      id: 2,
      payload: { kind: 'skipped', field: 15, raw: concat([Buffer.from([0x0a, payload.length]), payload]) },
    });
    const next = encodeFromRadio({ id: 3, payload: { kind: 'configCompleteId', configCompleteId: 77 } });
    for (const b of [body, binary]) {
      const wire = concat([encodeStreamFrame(b), encodeStreamFrame(next)]);
      for (let cut = 0; cut <= wire.length; cut++) {
        const events = feed(createStreamDecoder({ accept: isPlausibleFromRadio }), wire, [cut]);
        assert.deepEqual(framesOf(events), [hex(b), hex(next)]);
      }
    }
  });

  it('M1: a stray 0x94 in log text neither stalls nor hides the next frame', () => {
    const body = encodeFromRadio({ id: 0, payload: { kind: 'configCompleteId', configCompleteId: 5 } });
    const wire = concat([Buffer.from('boot \x94 ok\n', 'latin1'), Buffer.from([0x94]), encodeStreamFrame(body)]);
    const d = createStreamDecoder({ accept: isPlausibleFromRadio });
    const events = d.push(wire); // no flush: the frame must come out at once
    assert.deepEqual(framesOf(events), [hex(body)]);
    assert.equal(d.pendingBytes(), 0);
  });

  it('a false header in garbage cannot swallow the real frame that follows it', () => {
    const real = encodeFromRadio({ id: 0, payload: { kind: 'myInfo', myInfo: createMyNodeInfo({ myNodeNum: 42 }) } });
    // 94 c3 00 40: a header announcing 64 bytes, followed by 5 garbage bytes and then the real frame.
    const wire = concat([Buffer.from('94c30040deadbeef00', 'hex'), encodeStreamFrame(real), new Uint8Array(60)]);
    const d = createStreamDecoder({ accept: isPlausibleFromRadio });
    const events = d.push(wire);
    assert.deepEqual(framesOf(events), [hex(real)]);
    assert.ok(events.some((e) => e.kind === 'rejected' && e.reason === 'invalid'));
    // The garbage inside the rejected span is noise, not log text.
    assert.equal(textOf(events).replace(/\0/g, ''), '');
  });

  it('a false header whose body never completes is released by flush, frames inside it included', () => {
    const real = encodeFromRadio({ id: 0, payload: { kind: 'rebooted', rebooted: true } });
    const d = createStreamDecoder({ accept: isPlausibleFromRadio });
    const held = d.push(concat([Buffer.from('94c301f0', 'hex'), encodeStreamFrame(real)]));
    assert.deepEqual(framesOf(held), [], 'held while the announced body may still arrive');
    assert.ok(d.pendingBytes() > 0);
    const released = d.flush();
    assert.deepEqual(framesOf(released), [hex(real)]);
    assert.ok(released.some((e) => e.kind === 'rejected' && e.reason === 'incomplete'));
    assert.equal(d.pendingBytes(), 0);
  });

  it('headers announcing more than 512 bytes are text, resolved at once', () => {
    const body = encodeFromRadio({ id: 0, payload: { kind: 'rebooted', rebooted: true } });
    const d = createStreamDecoder({ accept: isPlausibleFromRadio });
    const events = d.push(
      concat([Buffer.from('94c30201', 'hex'), Buffer.from('94c3ffff', 'hex'), encodeStreamFrame(body)]),
    );
    assert.deepEqual(framesOf(events), [hex(body)]);
    assert.equal(d.stats().oversizeHeaders, 2);
    assert.equal(d.pendingBytes(), 0);
  });

  it('M11: a frame torn by a log record written into it is counted and skipped; every other frame survives', () => {
    const a = encodeFromRadio({ id: 1, payload: { kind: 'configCompleteId', configCompleteId: 1 } });
    const torn = encodeStreamFrame(
      encodeFromRadio({
        id: 0,
        payload: { kind: 'queueStatus', queueStatus: createQueueStatus({ free: 16, maxlen: 16, meshPacketId: 5 }) },
      }),
    );
    const log = encodeFromRadio({
      id: 0,
      payload: { kind: 'logRecord', logRecord: { message: 'INFO | tx done', time: 0, source: 'Router', level: 20 } },
    });
    const b = encodeFromRadio({ id: 3, payload: { kind: 'configCompleteId', configCompleteId: 3 } });
    // The log frame landed inside the queueStatus frame, just after its field tag and length.
    const broken = concat([torn.subarray(0, 6), encodeStreamFrame(log), torn.subarray(6)]);
    for (let cut = 0; cut < broken.length + 20; cut += 3) {
      const d = createStreamDecoder({ accept: isPlausibleFromRadio });
      const events = feed(d, concat([encodeStreamFrame(a), broken, encodeStreamFrame(b)]), [cut]);
      assert.deepEqual(framesOf(events), [hex(a), hex(log), hex(b)]);
      assert.equal(d.stats().rejectedInvalid, 1);
      assert.equal(textOf(events), '', 'the torn remains are noise, not log text');
    }
  });

  it('without an accept check it frames exactly like the firmware (length only)', () => {
    const events = feed(createStreamDecoder(), Buffer.from('c3c3c394c3000201ff94c30000', 'hex'));
    assert.deepEqual(framesOf(events), ['01ff', '']);
    assert.equal(textOf(events), '\ufffd\ufffd\ufffd');
  });

  it('rejects an impossible maxBodyBytes option with a typed error', () => {
    assert.throws(
      () => createStreamDecoder({ maxBodyBytes: 70_000 }),
      (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_INVALID_OPTION',
    );
  });

  it('never throws, never holds more than one frame, and accounts for every byte (fuzz)', () => {
    const seeds = fc
      .sample(fc.array(bodyArb, { minLength: 1, maxLength: 3 }), { numRuns: 30, seed: 3 })
      .map((bs) => concat(bs.map((b) => encodeStreamFrame(b))));
    const { accepted } = assertDecoderTotal(
      fc.tuple(byteInputs(seeds, 2048), fc.array(fc.nat(), { maxLength: 6 })),
      ([bytes, cuts]) => {
        const d = createStreamDecoder({ accept: isPlausibleFromRadio });
        const events = feed(d, bytes, cuts);
        if (d.pendingBytes() !== 0) throw new Error('bytes left after flush');
        const st = d.stats();
        const framed = events.reduce((n, e) => n + (e.kind === 'frame' ? e.body.length + 4 : 0), 0);
        if (framed + st.debugBytes + st.noiseBytes !== bytes.length) throw new Error('bytes unaccounted for');
        return events;
      },
      { cases: fuzzCases() },
    );
    assert.equal(accepted, fuzzCases());
  });
});
