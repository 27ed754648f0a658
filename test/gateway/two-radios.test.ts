// A gateway with an RNode and a Meshtastic radio at once: frames from devices of either kind are stored and
// forwarded, and downlink goes out on the radio that heard the device.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startMeshtasticEmulator } from '../../firmware-bridge/emulator/meshtastic-emulator.ts';
import { startRNodeEmulator } from '../../firmware-bridge/emulator/rnode-emulator.ts';
import { createSimulatedAir } from '../../firmware-bridge/emulator/simulated-air.ts';
import { createMeshtasticRadio } from '../../firmware-bridge/meshtastic/driver.ts';
import { PresetNumber } from '../../firmware-bridge/meshtastic/lora-params.ts';
import type { ReceivedPacket } from '../../firmware-bridge/radio.ts';
import { createRNodeRadio } from '../../firmware-bridge/rnode/driver.ts';
import { createGateway } from '../../gateway/gateway.ts';
import { openGatewayStore } from '../../gateway/gateway-store.ts';
import { gatewayManifest } from '../../gateway/manifest.ts';
import { createGatewayMetrics } from '../../gateway/metrics.ts';
import { createSystemTime } from '../../gateway/time.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { silentLogger } from '../../protocol/log.ts';
import { encodeTelemetryAck, sealLoraFrame } from '../../protocol/lora.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { startFakeControlPlane } from '../support/fake-controlplane.ts';
import { FAST_RNODE_TIMING, radioParams, TEST_RNODE_PARAMS, waitUntil } from '../support/gateway-harness.ts';
import { telemetryFrame, testControlPlaneKeys, testDevice } from '../support/lora-fixtures.ts';
import { tempDir } from '../support/radio-fixtures.ts';

const MESH_TIMING = { handshakeTimeoutMs: 5_000, presenceCheckMs: 100, backoffInitialMs: 50, backoffMaxMs: 500 };

describe('gateway with an RNode and a Meshtastic radio', () => {
  it('forwards frames from both kinds and answers each device on the radio that heard it', async (t) => {
    const { dir, cleanup } = await tempDir('outpost-gw2-');
    t.after(cleanup);
    const air = createSimulatedAir({ seed: 3 });
    t.after(() => air.close());
    const lora = { modemPreset: PresetNumber.SHORT_FAST };
    const gwMesh = await startMeshtasticEmulator({ dir, name: 'gw-mesh', air, nodeNum: 0x100, lora });
    const devMesh = await startMeshtasticEmulator({
      dir,
      name: 'dev-mesh',
      air,
      nodeNum: 0x200,
      lora,
      position: { xM: 300, yM: 0 },
    });
    const gwRnode = await startRNodeEmulator({ dir, name: 'gw-rnode', air, region: 'EU868' });
    const devRnode = await startRNodeEmulator({
      dir,
      name: 'dev-rnode',
      air,
      region: 'EU868',
      position: { xM: 200, yM: 0 },
    });
    t.after(async () => {
      for (const e of [gwMesh, devMesh, gwRnode, devRnode]) await e.close();
    });

    const cp = await startFakeControlPlane();
    t.after(() => cp.close());
    const cpKeys = testControlPlaneKeys();
    const meshDevice = testDevice(cpKeys);
    const rnodeDevice = testDevice(cpKeys);
    cp.setDevices([
      { device: meshDevice.did, shortId: meshDevice.shortIdHex, standing: 'served' },
      { device: rnodeDevice.did, shortId: rnodeDevice.shortIdHex, standing: 'served' },
    ]);
    const seed = new Uint8Array(randomBytes(32));
    const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
    const token = await cp.mintToken(did);
    const time = createSystemTime();
    const store = openGatewayStore(join(dir, 'gw.db'), { clock: time.clock, log: silentLogger, identitySeed: seed });
    t.after(() => store.close());
    const gateway = createGateway({
      name: 'two-radios',
      identitySeed: seed,
      agentVersion: '0.1.0',
      manifest: gatewayManifest({
        did,
        name: 'two-radios',
        agentVersion: '0.1.0',
        radios: [
          { kind: 'rnode', params: radioParams(TEST_RNODE_PARAMS) },
          { kind: 'meshtastic', region: 'EU868' },
        ],
      }),
      radios: [
        {
          name: 'rnode0',
          radio: createRNodeRadio({ path: gwRnode.hostPath, params: TEST_RNODE_PARAMS, timing: FAST_RNODE_TIMING }),
          maxFrameBytes: 254,
          params: radioParams(TEST_RNODE_PARAMS),
        },
        {
          name: 'mesh0',
          radio: createMeshtasticRadio({ path: gwMesh.hostPath, wantAckByDefault: false, timing: MESH_TIMING }),
          maxFrameBytes: 233,
        },
      ],
      store,
      upstream: { url: cp.url, tid: cp.tid, tokens: { read: () => token, write: () => {} } },
      time,
      log: silentLogger,
      metrics: createGatewayMetrics(new MetricsRegistry()),
      limits: { tickMs: 50, retry: { retryInitialMs: 60_000, retryMaxMs: 60_000 } },
    });
    t.after(() => gateway.stop());
    const meshRadio = createMeshtasticRadio({ path: devMesh.hostPath, wantAckByDefault: false, timing: MESH_TIMING });
    const rnodeRadio = createRNodeRadio({
      path: devRnode.hostPath,
      params: TEST_RNODE_PARAMS,
      timing: FAST_RNODE_TIMING,
    });
    t.after(async () => {
      await meshRadio.close();
      await rnodeRadio.close();
    });
    const heard: { mesh: ReceivedPacket[]; rnode: ReceivedPacket[] } = { mesh: [], rnode: [] };
    void (async () => {
      for await (const p of meshRadio.packets()) heard.mesh.push(p);
    })();
    void (async () => {
      for await (const p of rnodeRadio.packets()) heard.rnode.push(p);
    })();
    void meshRadio.open();
    void rnodeRadio.open();
    await gateway.start();
    await waitUntil(
      () =>
        gateway.status().radios.every((r) => r.ready) &&
        meshRadio.status().state === 'ready' &&
        rnodeRadio.status().state === 'ready',
      20_000,
      'all radios ready',
    );
    await waitUntil(() => gateway.status().devices.served === 2, 10_000, 'served list');

    const fromMesh = telemetryFrame(meshDevice, [{ seq: 1, stream: 0, ts: 1_800_000_000_000, value: 1 }], {
      maxFrameBytes: 233,
    });
    const fromRnode = telemetryFrame(rnodeDevice, [{ seq: 1, stream: 0, ts: 1_800_000_000_000, value: 2 }]);
    await meshRadio.send(fromMesh);
    await rnodeRadio.send(fromRnode);
    await cp.waitFor(() => cp.frames.length === 2, 15_000, 'both frames forwarded');
    assert.deepEqual(new Set(cp.frames.map((f) => f.radio)), new Set(['mesh0', 'rnode0']));
    assert.equal(cp.frames.find((f) => f.radio === 'mesh0')!.frame, toBase64Url(fromMesh));

    // An ack for each device: out on the radio that heard it, and only there.
    const ack = (d: typeof meshDevice) =>
      sealLoraFrame(d.session, { type: 'telemetry.ack', seq: 1 }, encodeTelemetryAck({ ranges: [{ from: 1, to: 1 }] }));
    for (const [d, id] of [
      [meshDevice, 'bWVzaC1hY2stMDAwMDAwMDE'],
      [rnodeDevice, 'cm5vZGUtYWNrLTAwMDAwMDE'],
    ] as const) {
      cp.send('lora.downlink', {
        downlinkId: id,
        device: d.did,
        shortId: d.shortIdHex,
        priority: 2,
        frames: [toBase64Url(ack(d))],
        ttlMs: 60_000,
        maxAttempts: 1,
      });
    }
    await waitUntil(() => heard.mesh.length >= 1 && heard.rnode.length >= 1, 15_000, 'acks received');
    assert.deepEqual(heard.mesh[0]!.payload, ack(meshDevice));
    assert.deepEqual(heard.rnode[0]!.payload, ack(rnodeDevice));
    const sent = (name: string) => gateway.status().radios.find((r) => r.name === name)!.frames.sent;
    await waitUntil(() => sent('mesh0') === 1 && sent('rnode0') === 1, 10_000, 'both transmissions confirmed');
    assert.ok(gateway.status().radios.find((r) => r.name === 'mesh0')!.airtime.totalMs > 0);
    assert.deepEqual(
      gateway.status().radios.map((r) => [r.name, r.frames.sent]),
      [
        ['rnode0', 1],
        ['mesh0', 1],
      ],
    );
  });
});
