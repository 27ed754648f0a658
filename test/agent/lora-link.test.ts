import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeLoraHeader,
  deriveLoraSessionKeys,
  encodeToolCall,
  type LoraTelemetryRecord,
  sealLoraFrame,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { waitUntil } from '../support/gateway-harness.ts';
import { startLoraPath } from '../support/lora-path.ts';

const readings = (n: number): LoraTelemetryRecord[] =>
  Array.from({ length: n }, (_, i) => ({ seq: i + 1, stream: 0, ts: 1_800_000_000_000 + i * 1000, value: i }));

describe('device LoRa link', () => {
  it('enrolls over LoRa with a locally entered token, then sends under its new session', async (t) => {
    const path = await startLoraPath({});
    t.after(() => path.close());
    const d = await path.addUnenrolledDevice('dev-new');
    path.harness.cp.setDevices([]);
    await path.harness.startAndWait({ offline: true });
    await path.harness.cp.waitFor(() => path.harness.cp.sessions() === 1, 10_000, 'gateway session');
    const token = path.issueEnrollToken();
    const response = await d.link.enroll({
      keys: d.keys.keys,
      x25519Public: d.keys.x25519.publicKey,
      token,
      manifestHash: new Uint8Array(32).fill(1),
      retryMs: 3_000,
      timeoutMs: 30_000,
    });
    assert.equal(response?.status, 'accepted');
    assert.ok(response?.tid && response.controlPlaneX25519);
    d.link.setSession(
      deriveLoraSessionKeys({
        deviceX25519: d.keys.x25519,
        controlPlaneX25519: { publicKey: response.controlPlaneX25519 },
        tid: response.tid,
        deviceId: d.keys.did,
      }),
    );
    // The gateway forwarded the request from an unknown device and transmitted the answer to it; the control plane
    // then added the device to the served list, so its frames pass the gateway from now on.
    await waitUntil(() => path.harness.store.devices.standing(d.keys.shortIdHex) === 'served', 10_000, 'served');
    await d.deliver(readings(5));
    assert.equal(path.store.telemetry.get(d.keys.did)?.size, 5);
  });

  it('refuses forged and replayed downlink; a replayed tool call never runs twice', async (t) => {
    const path = await startLoraPath({});
    t.after(() => path.close());
    const d = await path.addDevice('dev-victim');
    path.harness.cp.setDevices([{ device: d.keys.did, shortId: d.keys.shortIdHex, standing: 'served' }]);
    // An attacker's radio on the same channel: it hears everything and can transmit anything.
    const rogueEmu = await path.harness.device('rogue');
    await path.harness.startAndWait();
    await d.deliver(readings(1));

    const forged = sealLoraFrame(
      deriveLoraSessionKeys({
        deviceX25519: { publicKey: d.keys.x25519.publicKey },
        controlPlaneX25519: x25519KeyPair(),
        tid: '5f1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d',
        deviceId: d.keys.did,
      }),
      { type: 'tool.call', seq: 9_999 },
      encodeToolCall({ callId: 'forged-call', tool: { index: 1 }, args: { open: true } }),
    );
    await rogueEmu.radio.send(forged);
    await waitUntil(() => (d.link.stats().refused.auth ?? 0) === 1, 10_000, 'forged call refused');
    assert.equal(d.link.stats().toolCalls, 0);

    const real = await path.relay.callTool(
      d.cpView,
      { callId: 'real-call', tool: { index: 0 }, args: {} },
      { timeoutMs: 20_000 },
    );
    assert.equal(real.status, 'ok');
    assert.equal(d.link.stats().toolCalls, 1);
    const captured = rogueEmu.received.find((p) => {
      try {
        const h = decodeLoraHeader(p.payload).header;
        return h.type === 'tool.call' && Buffer.from(h.shortId).toString('hex') === d.keys.shortIdHex;
      } catch {
        return false;
      }
    });
    assert.ok(captured, 'the rogue radio overheard the call');
    const replaysBefore = d.link.stats().refused.replay ?? 0;
    await rogueEmu.radio.send(captured.payload);
    await waitUntil(() => (d.link.stats().refused.replay ?? 0) > replaysBefore, 10_000, 'replay refused');
    assert.equal(d.link.stats().toolCalls, 1, 'the replayed call did not reach the tool');
  });
});
