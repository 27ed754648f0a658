import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../protocol/bytes.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  createLoraReassembler,
  createReplayWindow,
  deriveLoraSessionKeys,
  LORA_PROFILES,
  type LoraFrameType,
  type LoraSession,
  type OpenedLoraFrame,
  openLoraFrame,
  sealLoraMessage,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';

function session(): { device: LoraSession; controlPlane: LoraSession } {
  const dev = x25519KeyPair();
  const cp = x25519KeyPair();
  const deviceId = didKeyFromEd25519(ed25519KeyPair().publicKey);
  return {
    device: deriveLoraSessionKeys({
      deviceX25519: dev,
      controlPlaneX25519: { publicKey: cp.publicKey },
      tid: 't',
      deviceId,
    }),
    controlPlane: deriveLoraSessionKeys({
      deviceX25519: { publicKey: dev.publicKey },
      controlPlaneX25519: cp,
      tid: 't',
      deviceId,
    }),
  };
}

const pairs = [session(), session(), session()];

/** Opened frames of one message from device `d`, as the receiver hands them to the reassembler. */
function openedMessage(d: number, firstSeq: number, payload: Uint8Array, maxFrameBytes: number): OpenedLoraFrame[] {
  const { device, controlPlane } = pairs[d]!;
  return sealLoraMessage(controlPlane, { type: 'tool.call', firstSeq }, payload, { maxFrameBytes }).map((f) =>
    openLoraFrame(f, device, { expect: 'downlink' }),
  );
}

/** A synthetic authenticated fragment (the reassembler trusts its input to be authenticated already). */
function fragment(
  shortId: number,
  firstSeq: number,
  index: number,
  count: number,
  bytes: number,
  type: LoraFrameType = 'tool.call',
): OpenedLoraFrame {
  return {
    header: {
      type,
      direction: 'downlink',
      shortId: Uint8Array.of(0, 0, shortId >> 8, shortId & 255),
      seq: firstSeq + index,
      listen: false,
      fragment: { index, count },
    },
    payload: new Uint8Array(bytes).fill(index),
  };
}

describe('LoRa reassembly', () => {
  it('behind the replay window, any permutation with duplicates of interleaved messages reassembles each exactly once', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            device: fc.nat(2),
            size: fc.integer({ min: 1, max: 16 * 206 }),
            seed: fc.nat(255),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        fc.constantFrom(LORA_PROFILES.meshtastic, LORA_PROFILES.rnode),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.nat(),
        (specs, profile, dupPicks, shuffleSeed) => {
          const messages = specs.map((s, i) => ({
            device: s.device,
            firstSeq: 16 * i, // every message of the run stays inside a 64-seq replay window
            payload: new Uint8Array(s.size).map((_, j) => (j * 7 + s.seed) & 255),
          }));
          let frames = messages.flatMap((m) => openedMessage(m.device, m.firstSeq, m.payload, profile.maxFrameBytes));
          const distinct = frames.length;
          frames = [...frames, ...dupPicks.map((p) => frames[p % frames.length]!)];
          // Deterministic shuffle from the seed (Fisher–Yates with an LCG).
          let x = shuffleSeed >>> 0;
          for (let i = frames.length - 1; i > 0; i--) {
            x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
            const j = x % (i + 1);
            [frames[i], frames[j]] = [frames[j]!, frames[i]!];
          }
          const windows = new Map<string, ReturnType<typeof createReplayWindow>>();
          const r = createLoraReassembler({ clock: new FakeClock(), maxMessagesPerSource: 3 });
          const done = new Map<string, string>();
          let replays = 0;
          for (const f of frames) {
            const source = toHex(f.header.shortId);
            const w = windows.get(source) ?? createReplayWindow();
            windows.set(source, w);
            if (w.check(f.header.seq) !== 'fresh') {
              replays++;
              continue;
            }
            w.accept(f.header.seq);
            const res = r.add(f);
            if (res.status === 'complete') {
              const key = `${source}:${res.message.firstSeq}`;
              assert.ok(!done.has(key), 'completes exactly once');
              done.set(key, toHex(res.message.payload));
            } else assert.equal(res.status, 'pending');
          }
          for (const m of messages) {
            assert.equal(done.get(`${toHex(pairs[m.device]!.device.shortId)}:${m.firstSeq}`), toHex(m.payload));
          }
          assert.equal(replays, frames.length - distinct);
          assert.deepEqual(
            { pending: r.stats().pendingMessages, bytes: r.stats().pendingBytes },
            { pending: 0, bytes: 0 },
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('reports a repeated fragment of a pending message as a duplicate and completes once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 16 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 20 }),
        (count, picks) => {
          const r = createLoraReassembler({ clock: new FakeClock() });
          const order = [...picks.map((p) => p % count), ...Array.from({ length: count }, (_, i) => i)];
          const seen = new Set<number>();
          let completed = 0;
          let duplicates = 0;
          for (const index of order) {
            if (completed > 0) break;
            const res = r.add(fragment(7, 32, index, count, 10 + index));
            if (seen.has(index)) {
              assert.equal(res.status, 'duplicate');
              duplicates++;
            }
            seen.add(index);
            if (res.status === 'complete') {
              completed++;
              assert.equal(
                res.message.payload.length,
                Array.from({ length: count }, (_, i) => 10 + i).reduce((a, b) => a + b),
              );
            }
          }
          assert.equal(completed, 1);
          assert.equal(r.stats().duplicates, duplicates);
        },
      ),
    );
  });

  it('holds its message and byte bounds under a flood of never-completing fragments', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            shortId: fc.nat(20),
            firstSeq: fc.nat(50),
            count: fc.integer({ min: 2, max: 16 }),
            index: fc.nat(15),
            bytes: fc.integer({ min: 1, max: 481 }),
          }),
          { minLength: 1, maxLength: 300 },
        ),
        fc.record({
          maxMessages: fc.integer({ min: 1, max: 16 }),
          maxBytes: fc.integer({ min: 500, max: 8000 }),
          maxMessagesPerSource: fc.integer({ min: 1, max: 4 }),
        }),
        (flood, limits) => {
          const r = createLoraReassembler({ clock: new FakeClock(), ...limits });
          for (const f of flood) {
            r.add(fragment(f.shortId, f.firstSeq * 16, f.index % f.count, f.count, f.bytes));
            const s = r.stats();
            assert.ok(s.pendingMessages <= limits.maxMessages, 'message bound');
            assert.ok(s.pendingBytes <= limits.maxBytes, 'byte bound');
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('one sender cannot push out another sender’s partial message', () => {
    const r = createLoraReassembler({ clock: new FakeClock(), maxMessages: 8, maxMessagesPerSource: 2 });
    r.add(fragment(1, 0, 0, 2, 100));
    for (let i = 1; i <= 50; i++) r.add(fragment(2, i * 16, 0, 2, 100));
    assert.equal(r.stats().evicted, 48);
    const done = r.add(fragment(1, 0, 1, 2, 100));
    assert.equal(done.status, 'complete');
  });

  it('expires partial messages after timeoutMs of the receiver’s clock, counting them', () => {
    const clock = new FakeClock();
    const r = createLoraReassembler({ clock, timeoutMs: 60_000 });
    r.add(fragment(1, 0, 0, 3, 50));
    clock.advance(59_999);
    assert.equal(r.add(fragment(1, 0, 1, 3, 50)).status, 'pending');
    clock.advance(1);
    assert.equal(r.sweep(), 1);
    assert.deepEqual(
      { pending: r.stats().pendingMessages, bytes: r.stats().pendingBytes, expired: r.stats().expired },
      { pending: 0, bytes: 0, expired: 1 },
    );
    // The late last fragment starts a fresh partial message instead of completing a stale one.
    assert.deepEqual(r.add(fragment(1, 0, 2, 3, 50)), { status: 'pending', received: 1, count: 3 });
  });

  it('drops a partial message when a fragment contradicts it, and refuses fragments larger than maxBytes', () => {
    const r = createLoraReassembler({ clock: new FakeClock(), maxBytes: 600 });
    r.add(fragment(1, 0, 0, 3, 50));
    assert.deepEqual(r.add(fragment(1, 0, 1, 4, 50)), { status: 'dropped', reason: 'mismatch' });
    r.add(fragment(1, 32, 0, 2, 50));
    assert.deepEqual(r.add(fragment(1, 32, 1, 2, 50, 'telemetry.ack')), { status: 'dropped', reason: 'mismatch' });
    assert.deepEqual(r.add(fragment(1, 64, 0, 2, 601)), { status: 'dropped', reason: 'too-large' });
    assert.deepEqual(r.add(fragment(1, 96, 0, 2, 400)), { status: 'pending', received: 1, count: 2 });
    assert.deepEqual(r.add(fragment(1, 96, 1, 2, 300)), { status: 'dropped', reason: 'too-large' });
    const s = r.stats();
    assert.deepEqual(
      { mismatched: s.mismatched, tooLarge: s.tooLarge, pending: s.pendingMessages, bytes: s.pendingBytes },
      { mismatched: 2, tooLarge: 2, pending: 0, bytes: 0 },
    );
  });

  it('fragment splicing across colliding short ids: fragments opened under different sessions never join', () => {
    // Device B (an attacker's own enrolled device) ground a key whose short id equals device A's. Each of its frames
    // authenticates under B's session, but its chunk must not complete, replace or drop A's partial message.
    const a = pairs[0]!;
    const b = pairs[1]!;
    const shortId = a.device.shortId;
    const bDevice = { ...b.device, shortId };
    const bControlPlane = { ...b.controlPlane, shortId };
    const maxFrameBytes = LORA_PROFILES.meshtastic.maxFrameBytes;
    const honest = new Uint8Array(300).fill(0xaa);
    const evil = new Uint8Array(300).fill(0xee);
    const aFrames = sealLoraMessage(a.device, { type: 'tool.result', firstSeq: 100 }, honest, { maxFrameBytes });
    const bFrames = sealLoraMessage(bDevice, { type: 'tool.result', firstSeq: 100 }, evil, { maxFrameBytes });
    const r = createLoraReassembler({ clock: new FakeClock() });
    const openA = (f: Uint8Array) => openLoraFrame(f, a.controlPlane, { expect: 'uplink' });
    const openB = (f: Uint8Array) => openLoraFrame(f, bControlPlane, { expect: 'uplink' });
    assert.equal(r.add(openA(aFrames[0]!)).status, 'pending');
    assert.equal(r.add(openB(bFrames[1]!)).status, 'pending');
    const done = r.add(openA(aFrames[1]!));
    assert.equal(done.status, 'complete');
    assert.deepEqual(done.status === 'complete' && done.message.payload, honest);
    const also = r.add(openB(bFrames[0]!));
    assert.deepEqual(also.status === 'complete' && also.message.payload, evil);
    assert.equal(r.stats().mismatched, 0);
  });

  it('passes unfragmented frames straight through', () => {
    const r = createLoraReassembler({ clock: new FakeClock() });
    const [f] = openedMessage(0, 5, Uint8Array.of(1, 2, 3), 233);
    const res = r.add(f!);
    assert.equal(res.status, 'complete');
    assert.deepEqual(res.status === 'complete' && [...res.message.payload], [1, 2, 3]);
    assert.equal(r.stats().completed, 1);
  });
});
