import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLoraRelay, type IngestRecord, type LoraDevice } from '../../controlplane/lora-relay.ts';
import { createManualTime } from '../../gateway/time.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { silentLogger } from '../../protocol/log.ts';
import {
  decodeLoraHeader,
  decodeTelemetryAck,
  encodeTelemetry,
  encodeToolResult,
  openLoraFrame,
  sealLoraFrame,
  sealLoraMessage,
} from '../../protocol/lora.ts';
import type { RelayedFrame } from '../../protocol/lora-relay.ts';
import {
  controlPlaneSession,
  enrollRequestFrame,
  type TestDevice,
  testControlPlaneKeys,
  testDevice,
} from '../support/lora-fixtures.ts';

const TID = '5f1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d';
const cpKeys = testControlPlaneKeys();

function setup() {
  const time = createManualTime();
  const byShortId = new Map<string, LoraDevice[]>();
  const table = new Map<string, Map<number, IngestRecord>>();
  const sent: { type: string; body: Record<string, unknown> }[] = [];
  const windows = new Map<string, unknown>();
  let seq = 0;
  const relay = createLoraRelay({
    clock: time.clock,
    log: silentLogger,
    after: (ms, fn) => time.timers.setTimer(ms, fn),
    ackDelayMs: 1000,
    ports: {
      devicesByShortId: async (id) => byShortId.get(id) ?? [],
      loadWindow: async (d) => windows.get(d) as never,
      saveWindow: async (d, s) => {
        windows.set(d, s);
      },
      ingestTelemetry: async (device, records) => {
        const t = table.get(device) ?? new Map();
        table.set(device, t);
        let stored = 0;
        for (const r of records) {
          if (!t.has(r.seq)) {
            t.set(r.seq, r);
            stored++;
          }
        }
        return { stored, duplicates: records.length - stored };
      },
      takeDownlinkSeqs: async (_d, count) => {
        const first = seq + 1;
        seq += count;
        return first;
      },
      sendToGateway: (_g, type, body) => {
        sent.push({ type, body: body as Record<string, unknown> });
        return true;
      },
      gatewaysOf: () => ['did:key:z6MkGateway'],
    },
  });
  const add = (d: TestDevice, revoked = false): LoraDevice => {
    const view: LoraDevice = {
      device: d.did,
      tid: TID,
      shortIdHex: d.shortIdHex,
      session: controlPlaneSession(cpKeys, d, TID),
      streams: ['a.b', 'c.d'],
      tools: ['t.x'],
      revoked,
    };
    byShortId.set(d.shortIdHex, [...(byShortId.get(d.shortIdHex) ?? []), view]);
    return view;
  };
  const addAs = (d: TestDevice, shortIdHex: string) => {
    const view: LoraDevice = { ...add(d), shortIdHex };
    byShortId.delete(d.shortIdHex);
    byShortId.set(shortIdHex, [...(byShortId.get(shortIdHex) ?? []), view]);
  };
  const relayed = (frame: Uint8Array): RelayedFrame => ({
    stream: 'telemetry',
    seq: 1,
    frame: toBase64Url(frame),
    radio: 'rnode0',
    rssiDbm: -90,
    snrDb: 5,
    rxMs: 0,
  });
  const uplink = (...frames: Uint8Array[]) =>
    relay.handleUplink('did:key:z6MkGateway', TID, { frames: frames.map(relayed) });
  return { time, relay, table, sent, add, addAs, uplink };
}

const reading = (seq: number, stream = 0) => ({ seq, stream, ts: 1_800_000_000_000 + seq, value: seq / 2 });

function telemetry(d: TestDevice, recs: ReturnType<typeof reading>[], seq = d.nextSeq++): Uint8Array {
  return sealLoraFrame(d.session, { type: 'telemetry', seq }, encodeTelemetry(recs), { maxFrameBytes: 254 });
}

describe('control-plane LoRa relay', () => {
  it('stores telemetry once per (device, seq), maps stream indexes, and acks coalesced ranges later', async () => {
    const s = setup();
    const d = testDevice(cpKeys, TID);
    const view = s.add(d);
    const r = await s.uplink(telemetry(d, [reading(1), reading(2, 1)]), telemetry(d, [reading(3)]));
    assert.deepEqual(r.outcomes, { stored: 2 });
    assert.deepEqual(
      [...s.table.get(d.did)!.values()].map((x) => x.stream),
      ['a.b', 'c.d', 'a.b'],
    );
    // A retransmission of the same readings in a new frame: deduplicated, acked again.
    assert.deepEqual((await s.uplink(telemetry(d, [reading(3)]))).outcomes, { duplicate: 1 });
    assert.equal(s.sent.length, 0, 'the ack waits for more frames');
    await s.time.advance(1000);
    const acks = s.sent.filter((x) => x.type === 'lora.downlink');
    assert.equal(acks.length, 1);
    const frame = Buffer.from(String((acks[0]!.body.frames as string[])[0]), 'base64url');
    const opened = openLoraFrame(new Uint8Array(frame), d.session, { expect: 'downlink' });
    assert.equal(opened.header.type, 'telemetry.ack');
    assert.deepEqual(decodeTelemetryAck(opened.payload).ranges, [{ from: 1, to: 3 }]);
    assert.equal(s.relay.routeOf(view.device)?.gateway, 'did:key:z6MkGateway');
    // The next ack repeats the recent ranges and supersedes the first one at the gateway.
    await s.uplink(telemetry(d, [reading(4)]));
    await s.time.advance(1000);
    const cancels = s.sent.filter((x) => x.type === 'lora.downlink.cancel');
    assert.deepEqual(
      cancels.map((c) => c.body.reason),
      ['superseded'],
    );
    const second = s.sent.filter((x) => x.type === 'lora.downlink')[1]!;
    const f2 = new Uint8Array(Buffer.from(String((second.body.frames as string[])[0]), 'base64url'));
    assert.deepEqual(decodeTelemetryAck(openLoraFrame(f2, d.session, { expect: 'downlink' }).payload).ranges, [
      { from: 1, to: 4 },
    ]);
  });

  it('refuses garbage, unknown, tampered, replayed and revoked frames, each with its reason', async () => {
    const s = setup();
    const d = testDevice(cpKeys, TID);
    const revoked = testDevice(cpKeys, TID);
    const stranger = testDevice(cpKeys, TID);
    s.add(d);
    s.add(revoked, true);
    const good = telemetry(d, [reading(1)]);
    const tampered = Uint8Array.from(telemetry(d, [reading(2)]));
    tampered[tampered.length - 20]! ^= 0x01;
    const r = await s.uplink(
      new Uint8Array([0xff, 0, 1]),
      new Uint8Array(509).fill(0x21),
      telemetry(stranger, [reading(1)]),
      tampered,
      good,
      good,
      telemetry(revoked, [reading(1)]),
    );
    assert.deepEqual(r.outcomes, {
      malformed: 2,
      unknown_device: 1,
      auth_failed: 1,
      stored: 1,
      replay: 1,
      revoked: 1,
    });
    assert.equal(s.table.get(revoked.did), undefined, 'nothing from a revoked device is stored');
    // A frame replayed after a restart of the relay (window persisted through the ports) is still refused.
    assert.deepEqual((await s.uplink(good)).outcomes, { replay: 1 });
  });

  it('tells colliding short ids apart by the session that authenticates', async () => {
    const s = setup();
    const a = testDevice(cpKeys, TID);
    const b = testDevice(cpKeys, TID);
    // b is listed first under a's short id, as a 32-bit collision would list it: a's frame opens only with a's keys.
    s.addAs(b, a.shortIdHex);
    s.add(a);
    assert.deepEqual((await s.uplink(telemetry(a, [reading(5)]))).outcomes, { stored: 1 });
    assert.equal(s.table.get(a.did)?.size, 1);
    assert.equal(s.table.get(b.did), undefined);
  });

  it('bounds memory for fragment sets that never complete', async () => {
    const s = setup();
    const d = testDevice(cpKeys, TID);
    s.add(d);
    const frames: Uint8Array[] = [];
    for (let m = 0; m < 20; m++) {
      const msg = sealLoraMessage(d.session, { type: 'tool.result', firstSeq: 100 + m * 4 }, new Uint8Array(600), {
        maxFrameBytes: 233,
      });
      frames.push(msg[0]!); // only the first fragment of each
    }
    const r = await s.uplink(...frames);
    assert.deepEqual(r.outcomes, { fragment: 20 });
    assert.ok((s.relay.stats().frames_fragment ?? 0) === 20);
  });

  it('completes a tool call with the device’s result and cancels the downlink as delivered', async () => {
    const s = setup();
    const d = testDevice(cpKeys, TID);
    const view = s.add(d);
    const pending = s.relay.callTool(
      view,
      { callId: 'call-1', tool: { index: 0 }, args: { a: 1 } },
      { timeoutMs: 5000 },
    );
    await s.time.advance(0);
    const down = s.sent.find((x) => x.type === 'lora.downlink')!;
    assert.equal(down.body.priority, 1);
    const callFrame = new Uint8Array(Buffer.from(String((down.body.frames as string[])[0]), 'base64url'));
    assert.equal(decodeLoraHeader(callFrame).header.type, 'tool.call');
    const result = sealLoraMessage(
      d.session,
      { type: 'tool.result', firstSeq: d.nextSeq++ },
      encodeToolResult({ callId: 'call-1', status: 'ok', durationMs: 4, value: { ok: true } }),
      { maxFrameBytes: 233 },
    );
    await s.uplink(...result);
    const r = await pending;
    assert.deepEqual(r.value, { ok: true });
    assert.deepEqual(
      s.sent.filter((x) => x.type === 'lora.downlink.cancel').map((c) => c.body.reason),
      ['delivered'],
    );
  });

  it('times out a call nobody answers and cancels its downlink as expired', async () => {
    const s = setup();
    const d = testDevice(cpKeys, TID);
    const view = s.add(d);
    const pending = s.relay.callTool(view, { callId: 'call-2', tool: { index: 0 }, args: {} }, { timeoutMs: 3000 });
    const rejected = assert.rejects(pending, /no result/);
    await s.time.advance(3000);
    await rejected;
    assert.deepEqual(
      s.sent.filter((x) => x.type === 'lora.downlink.cancel').map((c) => c.body.reason),
      ['expired'],
    );
  });

  it('hands enroll requests to the host', async () => {
    const s = setup();
    const r = await s.uplink(enrollRequestFrame(testDevice(cpKeys, TID), 'e'.repeat(32), new Uint8Array(32)));
    assert.deepEqual(r.outcomes, { enroll: 1 });
    assert.equal(r.enrollRequests.length, 1);
  });
});
