import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBase64Url, toBase64Url } from '../../protocol/bytes.ts';
import { encodeTelemetryAck, sealLoraFrame } from '../../protocol/lora.ts';
import { startGatewayHarness, waitUntil } from '../support/gateway-harness.ts';
import { telemetryFrame, testControlPlaneKeys, testDevice } from '../support/lora-fixtures.ts';

const cpKeys = testControlPlaneKeys();
const reading = (seq: number) => [{ seq, stream: 0, ts: 1_800_000_000_000 + seq * 60_000, value: 20 + seq / 10 }];

describe('gateway (emulated radios, real store, loopback control plane)', () => {
  it('stores what it hears from served devices, forwards it, and deletes it once acknowledged', async (t) => {
    const h = await startGatewayHarness();
    t.after(() => h.close());
    const device = testDevice(cpKeys);
    h.cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);
    const radio = await h.device('dev-a');
    await h.startAndWait();
    // The gateway announces its manifest, with its radio, right after hello.ack.
    const announce = h.cp.received.find((e) => e.type === 'manifest.announce');
    assert.ok(announce && announce.type === 'manifest.announce');
    assert.equal((announce.body.manifest.radios as { kind: string }[])[0]?.kind, 'rnode');

    const sent: Uint8Array[] = [];
    for (let i = 1; i <= 5; i++) {
      const f = telemetryFrame(device, reading(i));
      sent.push(f);
      await radio.radio.send(f);
    }
    await h.cp.waitFor(() => h.cp.frames.length >= 5, 10_000, '5 frames at the control plane');
    assert.deepEqual(
      h.cp.frames.map((f) => toBase64Url(fromBase64Url(f.frame))),
      sent.map((f) => toBase64Url(f)),
    );
    const first = h.cp.frames[0]!;
    assert.equal(first.radio, 'rnode0');
    assert.equal(first.stream, 'telemetry');
    assert.ok(typeof first.rssiDbm === 'number' && first.rssiDbm < 0);
    await waitUntil(() => h.gateway.status().uplink.frames === 0, 5_000, 'store emptied by acks');
    const st = h.gateway.status();
    assert.equal(st.uplink.forwarded, 5);
    assert.equal(st.radios[0]!.frames.stored, 5);
    assert.equal(st.link.summary, 'ok');
    assert.equal(st.radios[0]!.rssiDbm.count, 5);
  });

  it('drops garbage, unknown, revoked and repeated frames with a reason each', async (t) => {
    const h = await startGatewayHarness();
    t.after(() => h.close());
    const served = testDevice(cpKeys);
    const revoked = testDevice(cpKeys);
    const stranger = testDevice(cpKeys);
    h.cp.setDevices([
      { device: served.did, shortId: served.shortIdHex, standing: 'served' },
      { device: revoked.did, shortId: revoked.shortIdHex, standing: 'revoked' },
    ]);
    const radio = await h.device('dev-b');
    await h.startAndWait();
    const good = telemetryFrame(served, reading(1));
    for (const frame of [
      Uint8Array.of(1, 2, 3),
      new Uint8Array(60).fill(0xff),
      telemetryFrame(stranger, reading(1)),
      telemetryFrame(revoked, reading(1)),
      good,
      good,
    ]) {
      await radio.radio.send(frame);
    }
    await waitUntil(() => h.gateway.status().radios[0]!.frames.received >= 6, 10_000, 'six frames heard');
    const frames = h.gateway.status().radios[0]!.frames;
    assert.deepEqual(frames.dropped, { too_short: 1, malformed: 1, unknown_device: 1, revoked: 1, duplicate: 1 });
    assert.equal(frames.stored, 1);
    await h.cp.waitFor(() => h.cp.frames.length === 1, 5_000, 'the one good frame');
    // A revocation from the control plane takes effect at once.
    h.cp.send('revoke', { kind: 'device', device: served.did });
    await waitUntil(() => h.store.devices.standing(served.shortIdHex) === 'revoked', 5_000, 'revoked');
    await radio.radio.send(telemetryFrame(served, reading(2)));
    await waitUntil(() => (h.gateway.status().radios[0]!.frames.dropped.revoked ?? 0) === 2, 5_000, 'dropped');
  });

  it('keeps storing while the backhaul is down and drains when it returns; unacked batches are sent again', async (t) => {
    const h = await startGatewayHarness({ limits: { batchFrames: 4 } });
    t.after(() => h.close());
    const device = testDevice(cpKeys);
    h.cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);
    const radio = await h.device('dev-c');
    await h.startAndWait();
    h.proxy.down();
    await waitUntil(() => h.gateway.linkState().summary === 'store-and-forward', 5_000, 'link down');
    const sent = new Set<string>();
    for (let i = 1; i <= 10; i++) {
      const f = telemetryFrame(device, reading(i));
      sent.add(toBase64Url(f));
      await radio.radio.send(f);
    }
    await waitUntil(() => h.gateway.status().uplink.frames === 10, 10_000, 'ten stored');
    assert.equal(h.cp.frames.length, 0);
    // Back up, but the control plane withholds acks: everything is delivered, nothing is deleted.
    h.cp.setAutoAck(false);
    h.proxy.up();
    await h.cp.waitFor(() => h.cp.frames.length >= 10, 10_000, 'ten frames delivered');
    assert.ok(new Set(h.cp.frames.map((f) => f.envelopeId)).size >= 3, 'sent in batches of at most four frames');
    assert.equal(h.gateway.status().uplink.frames, 10);
    // The session dies before any ack: the next session sends them again, and acks delete them.
    h.cp.setAutoAck(true);
    h.cp.kick();
    await h.cp.waitFor(() => h.cp.frames.length >= 20, 15_000, 'resent');
    await waitUntil(() => h.gateway.status().uplink.frames === 0, 10_000, 'drained');
    assert.deepEqual(new Set(h.cp.frames.map((f) => f.frame)), sent);
    assert.ok(h.cp.sessions() >= 2);
  });

  it('transmits downlink to the device, reports it, retries, and stops when the control plane cancels', async (t) => {
    const h = await startGatewayHarness({ limits: { retry: { retryInitialMs: 400, retryMaxMs: 400 } } });
    t.after(() => h.close());
    const device = testDevice(cpKeys);
    h.cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);
    const radio = await h.device('dev-d');
    await h.startAndWait();
    const cpSession = {
      shortId: device.session.shortId,
      uplinkKey: device.session.uplinkKey,
      downlinkKey: device.session.downlinkKey,
    };
    const ack = sealLoraFrame(
      cpSession,
      { type: 'telemetry.ack', seq: 1 },
      encodeTelemetryAck({ ranges: [{ from: 1, to: 3 }] }),
    );
    const downlinkId = 'ZG93bmxpbmstdGVzdC0wMDAx';
    h.cp.send('lora.downlink', {
      downlinkId,
      device: device.did,
      shortId: device.shortIdHex,
      priority: 2,
      frames: [toBase64Url(ack)],
      ttlMs: 60_000,
      maxAttempts: 10,
    });
    await h.cp.waitFor(
      () => h.cp.received.some((e) => e.type === 'lora.ack'),
      5_000,
      'the gateway acknowledges the stored downlink',
    );
    await radio.waitForPackets(1, 5_000);
    assert.deepEqual(radio.received[0]!.payload, ack);
    await h.cp.waitFor(() => h.cp.reports.some((r) => r.downlinkId === downlinkId), 5_000, 'report');
    assert.equal(h.cp.reports[0]!.state, 'transmitted');
    assert.equal(h.cp.reports[0]!.radio, 'rnode0');
    // Not cancelled: it goes out again after the retry interval.
    await radio.waitForPackets(2, 5_000);
    h.cp.send('lora.downlink.cancel', { downlinkIds: [downlinkId], reason: 'delivered' });
    await waitUntil(() => h.gateway.status().downlink.items === 0, 5_000, 'cancelled');
    const count = radio.received.length;
    // Hearing the device would make waiting downlink due at once; there is none left to send.
    await radio.radio.send(telemetryFrame(device, reading(9)));
    await h.cp.waitFor(() => h.cp.frames.length >= 1, 5_000, 'uplink');
    assert.equal(radio.received.length, count);
    assert.equal(h.gateway.status().downlink.transmissions, count);
  });

  it('an unplugged radio does not stop forwarding; the radio is reopened when it comes back', async (t) => {
    const h = await startGatewayHarness();
    t.after(() => h.close());
    const device = testDevice(cpKeys);
    h.cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);
    const radio = await h.device('dev-e');
    await h.startAndWait();
    h.proxy.down();
    for (let i = 1; i <= 3; i++) await radio.radio.send(telemetryFrame(device, reading(i)));
    await waitUntil(() => h.gateway.status().uplink.frames === 3, 10_000, 'three stored');
    await h.gatewayEmulator.unplug();
    await waitUntil(() => h.gateway.status().radios[0]!.state !== 'ready', 5_000, 'radio gone');
    h.proxy.up();
    await h.cp.waitFor(() => h.cp.frames.length === 3, 10_000, 'stored frames forwarded without a radio');
    assert.equal(h.gateway.linkState().summary, 'radio-down');
    await h.gatewayEmulator.replug();
    await waitUntil(() => h.gateway.status().radios[0]!.ready, 10_000, 'radio back');
    assert.equal(h.gateway.status().radios[0]!.readyTransitions, 2);
    await radio.radio.send(telemetryFrame(device, reading(4)));
    await h.cp.waitFor(() => h.cp.frames.length === 4, 10_000, 'new frames after replug');
  });

  it('reports its radios’ health and backlogs right after each handshake, from its own status', async (t) => {
    const h = await startGatewayHarness();
    t.after(() => h.close());
    const device = testDevice(cpKeys);
    h.cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);
    const radio = await h.device('dev-h');
    // A first session teaches the gateway its served list; then frames are stored while the backhaul is cut.
    await h.startAndWait();
    h.proxy.down();
    for (let i = 1; i <= 2; i++) await radio.radio.send(telemetryFrame(device, reading(i)));
    await waitUntil(() => h.gateway.status().uplink.frames === 2, 10_000, 'two stored');
    const healthReports = () => h.cp.received.filter((e) => e.type === 'lora.health');
    const before = healthReports().length;
    assert.ok(before >= 1, 'the first session got a report too');
    h.proxy.up();
    await h.cp.waitFor(() => healthReports().length > before, 10_000, 'lora.health after reconnecting');
    const types = h.cp.received.map((e) => e.type);
    const report = healthReports()[before]!;
    assert.ok(report.type === 'lora.health' && report.sig !== undefined);
    // Sent after the session's manifest.announce.
    assert.ok(types.lastIndexOf('manifest.announce') < h.cp.received.indexOf(report));
    assert.equal(report.body.uplinkBacklog, 2);
    assert.equal(report.body.downlinkBacklog, 0);
    const r = report.body.radios[0]!;
    assert.equal(report.body.radios.length, 1);
    assert.deepEqual([r.name, r.kind, r.state, r.ready], ['rnode0', 'rnode', 'ready', true]);
    assert.equal(r.frames.received, 2);
    assert.equal(r.rssiDbm?.count, 2);
    // Airtime so far (beacons): inside the hour's window, and never more than the gateway counts since.
    assert.ok(r.airtime.windowMs <= r.airtime.totalMs);
    assert.ok(r.airtime.totalMs <= Math.round(h.gateway.status().radios[0]!.airtime.totalMs));
    assert.ok(r.airtime.budgetUsed >= 0 && r.airtime.budgetUsed < 1);
    assert.equal(r.lastRxMs, Math.floor(h.gateway.status().radios[0]!.lastRxWallMs!));

    // The radio goes away: the next session's report says so.
    await h.gatewayEmulator.unplug();
    await waitUntil(() => !h.gateway.status().radios[0]!.ready, 5_000, 'radio gone');
    const seen = healthReports().length;
    h.cp.kick();
    await h.cp.waitFor(() => healthReports().length > seen, 10_000, 'lora.health after the kick');
    const after = healthReports()[seen]!;
    assert.ok(after.type === 'lora.health');
    assert.equal(after.body.radios[0]!.ready, false);
    assert.notEqual(after.body.radios[0]!.state, 'ready');
  });

  it('repeats the health report each heartbeat on the same session, never more often than every 5 s', async (t) => {
    const h = await startGatewayHarness({ heartbeatMs: 1_000 });
    t.after(() => h.close());
    const device = testDevice(cpKeys);
    h.cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);
    await h.startAndWait();
    const sessions = h.cp.sessions();
    const healthReports = () => h.cp.received.filter((e) => e.type === 'lora.health');
    await h.cp.waitFor(() => healthReports().length >= 2, 20_000, 'a second lora.health');
    assert.equal(h.cp.sessions(), sessions, 'on the same session');
    const [first, second] = healthReports();
    // A lower bound only: the gateway's timer cannot fire early, however loaded the machine is.
    assert.ok(second!.ts - first!.ts >= 5_000, `${second!.ts - first!.ts} ms apart`);
  });
});
