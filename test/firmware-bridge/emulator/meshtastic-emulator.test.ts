// The Meshtastic emulator seen from a raw stream-API host over a real pty: console text, the config
// sequence and special nonces, the phone-packet rules, ACKs through the simulated air, sessions,
// reboots and faults. Frames are also checked against the official schema (the emulator's fidelity).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMeshtasticEmulator } from '../../../firmware-bridge/emulator/meshtastic-emulator.ts';
import { createSimulatedAir, type SimulatedAir } from '../../../firmware-bridge/emulator/simulated-air.ts';
import { meshtasticAirtimeMs } from '../../../firmware-bridge/meshtastic/lora-params.ts';
import {
  BROADCAST_NUM,
  createData,
  createMeshPacket,
  createNodeInfo,
  createUser,
  decodeRouting,
  type FromRadio,
  type MeshPacket,
  NONCE_ONLY_CONFIG,
  NONCE_ONLY_NODES,
  PortNum,
  type QueueStatus,
} from '../../../firmware-bridge/meshtastic/protobuf.ts';
import { FakeClock } from '../../../protocol/clock.ts';
import { Mesh, oracleDecode } from '../../support/meshtastic-oracle.ts';
import { openRawHost, type RawHost } from '../../support/meshtastic-raw-host.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outpost-mt-emu-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const kinds = (frames: FromRadio[]) => frames.map((f) => f.payload.kind);
const queueStatuses = (frames: FromRadio[]): QueueStatus[] =>
  frames.flatMap((f) => (f.payload.kind === 'queueStatus' ? [f.payload.queueStatus] : []));
const packets = (frames: FromRadio[]): MeshPacket[] =>
  frames.flatMap((f) => (f.payload.kind === 'packet' ? [f.payload.packet] : []));
const routingFor = (frames: FromRadio[], requestId: number) =>
  packets(frames)
    .filter((p) => p.payload.kind === 'decoded' && p.payload.data.portnum === PortNum.ROUTING_APP)
    .filter((p) => p.payload.kind === 'decoded' && p.payload.data.requestId === requestId)
    .map((p) => {
      const data = p.payload.kind === 'decoded' ? p.payload.data : createData();
      const r = decodeRouting(data.payload);
      return { from: p.from, error: r.kind === 'error' ? r.errorReason : -1 };
    });

const privatePacket = (over: Partial<MeshPacket> & { payload?: MeshPacket['payload'] } = {}, bytes = 8) =>
  createMeshPacket({
    to: BROADCAST_NUM,
    payload: {
      kind: 'decoded',
      data: createData({ portnum: PortNum.PRIVATE_APP, payload: new Uint8Array(bytes).fill(0x94) }),
    },
    ...over,
  });

interface Rig {
  air: SimulatedAir;
  close(): Promise<void>;
}

function rig(): Rig & { track<T extends { close(): Promise<void> }>(x: T): T } {
  const air = createSimulatedAir({ timeScale: 25 });
  const owned: { close(): Promise<void> }[] = [];
  return {
    air,
    track(x) {
      owned.push(x);
      return x;
    },
    async close() {
      for (const o of owned.reverse()) await o.close();
      air.close();
    },
  };
}

async function configured(host: RawHost, nonce = 1234): Promise<void> {
  await host.send({ payload: { kind: 'wantConfigId', wantConfigId: nonce } });
  await host.until(
    () => host.frames.some((f) => f.payload.kind === 'configCompleteId' && f.payload.configCompleteId === nonce),
    'config_complete_id',
  );
}

describe('meshtastic emulator', () => {
  it('prints console text before the host speaks, then frames only (with a stray 0x94 when asked: M1)', async () => {
    const r = rig();
    try {
      const emu = r.track(
        await startMeshtasticEmulator({ dir, name: 'text', air: r.air, nodeNum: 0x11, bootLogStrayByte: true }),
      );
      const host = r.track(await openRawHost(emu.hostPath));
      emu.reboot(); // the host opened after boot: reboot so it sees the boot log
      await host.until(() => host.text().includes('Boot count 2'), 'boot log');
      assert.ok(host.rawBytes.includes(0x94), 'the boot log carries a 0x94 byte');
      assert.equal(host.frames.length, 0, 'no frames before the host speaks (HEAD drops `rebooted`)');
      await configured(host);
      const textBefore = host.text();
      emu.reboot('silent');
      await host.until(() => host.text().length > textBefore.length, 'log text after a silent reboot (M10)');
      assert.equal(emu.state().session, 'none');
      assert.equal(emu.state().usingProtobufs, false);
    } finally {
      await r.close();
    }
  });

  it('answers want_config in the firmware order and its frames decode with the official schema', async () => {
    const r = rig();
    try {
      const other = createNodeInfo({ num: 0x99, user: createUser({ id: '!00000099', longName: 'Far' }) });
      const emu = r.track(
        await startMeshtasticEmulator({ dir, name: 'order', air: r.air, nodeNum: 0xabc, knownNodes: [other] }),
      );
      const host = r.track(await openRawHost(emu.hostPath));
      await host.write(new Uint8Array(32).fill(0xc3)); // wake bytes are ignored
      await configured(host, 777);
      const k = kinds(host.frames);
      const expected = [
        'myInfo',
        'skipped', // deviceuiConfig
        'nodeInfo',
        'metadata',
        ...Array(8).fill('channel'),
        ...Array(9).fill('config'),
        ...Array(13).fill('skipped'), // moduleConfig
        'nodeInfo',
        'skipped', // fileInfo
        'configCompleteId',
      ];
      assert.deepEqual(k, expected);
      const my = host.frames[0]!.payload;
      assert.equal(my.kind === 'myInfo' && my.myInfo.myNodeNum, 0xabc);
      const own = host.frames[2]!.payload;
      assert.equal(own.kind === 'nodeInfo' && own.nodeInfo.user?.id, '!00000abc');
      const lora = host.frames.find((f) => f.payload.kind === 'config' && f.payload.config.kind === 'lora');
      assert.ok(lora, 'a LoRa config section');
      for (const body of host.bodies) {
        const official = oracleDecode(Mesh.FromRadioSchema, body);
        assert.notEqual((official.payloadVariant as { case?: string }).case, undefined);
      }
      const official = host.bodies.map(
        (b) => (oracleDecode(Mesh.FromRadioSchema, b).payloadVariant as { case: string }).case,
      );
      assert.equal(official[1], 'deviceuiConfig');
      assert.equal(official.at(-2), 'fileInfo');
      assert.equal(official.filter((c) => c === 'moduleConfig').length, 13);
    } finally {
      await r.close();
    }
  });

  it('honours the special nonces 69420 (config only) and 69421 (nodes only)', async () => {
    const r = rig();
    try {
      const other = createNodeInfo({ num: 0x99, user: createUser({ id: '!00000099' }) });
      const emu = r.track(
        await startMeshtasticEmulator({ dir, name: 'nonce', air: r.air, nodeNum: 0x22, knownNodes: [other] }),
      );
      const host = r.track(await openRawHost(emu.hostPath));
      await configured(host, NONCE_ONLY_CONFIG);
      const nodes = host.frames.filter((f) => f.payload.kind === 'nodeInfo');
      assert.equal(nodes.length, 1, 'own node only');
      const at = host.mark();
      await configured(host, NONCE_ONLY_NODES);
      assert.deepEqual(kinds(host.frames.slice(at)), ['nodeInfo', 'nodeInfo', 'configCompleteId']);
    } finally {
      await r.close();
    }
  });

  it('applies the phone-packet rules: id assignment, duplicates, 233/239-byte limits, queueStatus', async () => {
    const r = rig();
    try {
      const emu = r.track(await startMeshtasticEmulator({ dir, name: 'rules', air: r.air, nodeNum: 0x33 }));
      const host = r.track(await openRawHost(emu.hostPath));
      await configured(host);
      // id 0: the firmware picks one and reports it in queueStatus
      await host.send({ payload: { kind: 'packet', packet: privatePacket({ id: 0 }) } });
      await host.until(() => queueStatuses(host.frames).length >= 1, 'queueStatus');
      const [qs] = queueStatuses(host.frames);
      assert.equal(qs!.res, 0);
      assert.notEqual(qs!.meshPacketId, 0);
      assert.equal(qs!.maxlen, 16);
      // a duplicate id is dropped without a word
      await host.send({ payload: { kind: 'packet', packet: privatePacket({ id: 4242 }) } });
      await host.send({ payload: { kind: 'packet', packet: privatePacket({ id: 4242 }) } });
      // a 234-byte payload does not decode on the device: ignored silently
      await host.send({ payload: { kind: 'packet', packet: privatePacket({ id: 5000 }, 234) } });
      // 233 bytes plus a request_id makes Data 244 bytes: TOO_LARGE
      const big = privatePacket({ id: 6000 }, 233);
      const bigData = big.payload.kind === 'decoded' ? big.payload.data : createData();
      await host.send({
        payload: {
          kind: 'packet',
          packet: { ...big, payload: { kind: 'decoded', data: { ...bigData, requestId: 0xffffffff } } },
        },
      });
      await host.until(
        () =>
          routingFor(host.frames, 6000).length > 0 && queueStatuses(host.frames).some((q) => q.meshPacketId === 6000),
        'TOO_LARGE and its queueStatus',
      );
      assert.deepEqual(routingFor(host.frames, 6000), [{ from: 0x33, error: 7 }]);
      const byId = (id: number) => queueStatuses(host.frames).filter((q) => q.meshPacketId === id);
      assert.equal(byId(4242).length, 1, 'one queueStatus for the first copy only');
      assert.equal(byId(5000).length, 0, 'nothing at all for the oversize payload');
      assert.equal(byId(6000)[0]?.res, 7);
      assert.equal(emu.state().duplicatesDropped, 1);
      assert.equal(emu.state().oversizeIgnored, 1);
    } finally {
      await r.close();
    }
  });

  it('delivers a reliable packet through the air and returns the ACK; loss gives MAX_RETRANSMIT', async () => {
    const r = rig();
    try {
      const a = r.track(await startMeshtasticEmulator({ dir, name: 'a', air: r.air, nodeNum: 0xa1 }));
      const b = r.track(await startMeshtasticEmulator({ dir, name: 'b', air: r.air, nodeNum: 0xb2 }));
      const ha = r.track(await openRawHost(a.hostPath));
      const hb = r.track(await openRawHost(b.hostPath));
      await configured(ha);
      await configured(hb);
      await ha.send({ payload: { kind: 'packet', packet: privatePacket({ id: 100, to: 0xb2, wantAck: true }) } });
      await ha.until(() => routingFor(ha.frames, 100).length > 0, 'ACK at A');
      assert.deepEqual(routingFor(ha.frames, 100), [{ from: 0xb2, error: 0 }]);
      await hb.until(() => packets(hb.frames).some((p) => p.id === 100), 'the packet at B');
      const got = packets(hb.frames).find((p) => p.id === 100);
      assert.ok(got, 'B received the packet');
      assert.equal(got.from, 0xa1);
      assert.ok(got.rxRssi < 0 && got.rxTime > 0);
      // a broadcast with want_ack is acknowledged implicitly when B rebroadcasts it
      await ha.send({ payload: { kind: 'packet', packet: privatePacket({ id: 101, wantAck: true, hopLimit: 3 }) } });
      await ha.until(() => routingFor(ha.frames, 101).length > 0, 'implicit ACK');
      assert.deepEqual(routingFor(ha.frames, 101), [{ from: 0xa1, error: 0 }]);
      // total loss from A to B: three transmissions, then MAX_RETRANSMIT
      r.air.setLinkLossRate('a', 'b', 1);
      const tx = a.state().transmissions;
      await ha.send({ payload: { kind: 'packet', packet: privatePacket({ id: 102, to: 0xb2, wantAck: true }) } });
      await ha.until(() => routingFor(ha.frames, 102).length > 0, 'MAX_RETRANSMIT', 30_000);
      assert.deepEqual(routingFor(ha.frames, 102), [{ from: 0xa1, error: 5 }]);
      assert.equal(a.state().transmissions - tx, 3);
      assert.ok(meshtasticAirtimeMs(10, a.params) > 300, 'LongFast frames take hundreds of air ms');
    } finally {
      await r.close();
    }
  });

  it('answers heartbeats, stops forwarding after disconnect and after the silence timeout (M3)', async () => {
    const r = rig();
    const clock = new FakeClock();
    try {
      const a = r.track(
        await startMeshtasticEmulator({
          dir,
          name: 'sess-a',
          air: r.air,
          nodeNum: 0xa5,
          clock,
          sessionTimeoutMs: 60_000,
          sessionCheckIntervalMs: 5,
        }),
      );
      const b = r.track(await startMeshtasticEmulator({ dir, name: 'sess-b', air: r.air, nodeNum: 0xb5 }));
      const ha = r.track(await openRawHost(a.hostPath));
      const hb = r.track(await openRawHost(b.hostPath));
      await configured(ha);
      await configured(hb);
      await ha.send({ payload: { kind: 'heartbeat', heartbeat: { nonce: 0 } } });
      await ha.until(() => queueStatuses(ha.frames).length > 0, 'queueStatus for the heartbeat');
      // silence: 61 s on A's clock closes the session; packets from B are then held, not forwarded
      const closed = a.nextEvent((e) => e.type === 'session' && !e.open);
      clock.advance(61_000);
      assert.deepEqual(await closed, { type: 'session', open: false, reason: 'timeout' });
      const heard = a.nextEvent((e) => e.type === 'rx' && e.id === 300);
      await hb.send({ payload: { kind: 'packet', packet: privatePacket({ id: 300 }) } });
      await heard;
      assert.equal(packets(ha.frames).filter((p) => p.id === 300).length, 0);
      assert.equal(a.state().toPhoneQueued, 1);
      // a new want_config reopens the session and hands over what was held
      await configured(ha, 99);
      await ha.until(() => packets(ha.frames).some((p) => p.id === 300), 'held packet after reconnect');
      // disconnect closes it explicitly
      const gone = a.nextEvent((e) => e.type === 'session' && !e.open);
      await ha.send({ payload: { kind: 'disconnect', disconnect: true } });
      assert.deepEqual(await gone, { type: 'session', open: false, reason: 'disconnect' });
    } finally {
      await r.close();
    }
  });

  it('old firmware announces a reboot with rebooted=true', async () => {
    const r = rig();
    try {
      const emu = r.track(
        await startMeshtasticEmulator({ dir, name: 'old', air: r.air, nodeNum: 0x44, rebootStyle: 'rebooted-frame' }),
      );
      const host = r.track(await openRawHost(emu.hostPath));
      await configured(host);
      emu.reboot();
      await host.until(() => host.frames.some((f) => f.payload.kind === 'rebooted'), 'rebooted frame');
    } finally {
      await r.close();
    }
  });

  it('reports a full TX queue with res 32 and free 0, and says when there is room again', async () => {
    const r = rig();
    try {
      const emu = r.track(await startMeshtasticEmulator({ dir, name: 'full', air: r.air, nodeNum: 0x55 }));
      const host = r.track(await openRawHost(emu.hostPath));
      await configured(host);
      emu.setQueueFull(true);
      await host.send({ payload: { kind: 'packet', packet: privatePacket({ id: 10 }) } });
      await host.until(() => queueStatuses(host.frames).some((q) => q.meshPacketId === 10), 'refusal');
      assert.deepEqual(
        queueStatuses(host.frames).find((q) => q.meshPacketId === 10),
        { res: 32, free: 0, maxlen: 16, meshPacketId: 10 },
      );
      emu.setQueueFull(false);
      await host.until(
        () => queueStatuses(host.frames).some((q) => q.meshPacketId === 0 && q.free > 0),
        'unsolicited queueStatus',
      );
    } finally {
      await r.close();
    }
  });

  it('unplug removes the host path; replug boots a fresh radio at the same path', async () => {
    const r = rig();
    try {
      const emu = r.track(await startMeshtasticEmulator({ dir, name: 'plug', air: r.air, nodeNum: 0x66 }));
      const { access } = await import('node:fs/promises');
      await emu.unplug();
      await assert.rejects(access(emu.hostPath));
      await emu.replug();
      await access(emu.hostPath);
      assert.equal(emu.state().rebootCount, 2);
      const host = r.track(await openRawHost(emu.hostPath));
      await configured(host);
    } finally {
      await r.close();
    }
  });
});
