// The LoRa path end to end in one process: devices (agent/lora-link.ts) on emulated RNodes, the gateway, and the
// control plane's relay (controlplane/lora-relay.ts) behind a loopback WSS with a backhaul that can be cut.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoraTelemetryRecord } from '../../protocol/lora.ts';
import { waitUntil } from '../support/gateway-harness.ts';
import { startLoraPath } from '../support/lora-path.ts';

const records = (from: number, to: number): LoraTelemetryRecord[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    stream: (from + i) % 2,
    ts: 1_800_000_000_000 + (from + i) * 60_000,
    value: Math.round((20 + Math.sin(from + i) * 3) * 10) / 10,
  }));

describe('LoRa path: device ⇄ gateway ⇄ control plane', () => {
  it('delivers every reading exactly once through loss and backhaul outages, and acks end to end', async (t) => {
    const path = await startLoraPath({ lossRate: 0.2 });
    t.after(() => path.close());
    path.harness.cp.setDevices([]);
    const a = await path.addDevice('dev-a');
    const b = await path.addDevice('dev-b');
    path.harness.cp.setDevices(
      path.devices.map((d) => ({ device: d.keys.did, shortId: d.keys.shortIdHex, standing: 'served' as const })),
    );
    await path.harness.startAndWait();
    const flap = (async () => {
      for (let i = 0; i < 2; i++) {
        await new Promise((r) => setTimeout(r, 1500));
        path.harness.proxy.down();
        await new Promise((r) => setTimeout(r, 2500));
        path.harness.proxy.up();
      }
    })();
    await Promise.all([
      a.deliver(records(1, 40), { timeoutMs: 90_000 }),
      b.deliver(records(1, 25), { timeoutMs: 90_000 }),
    ]);
    await flap;
    const stored = (d: typeof a) => path.store.telemetry.get(d.keys.did)!;
    assert.deepEqual(
      [...stored(a).keys()].sort((x, y) => x - y),
      records(1, 40).map((r) => r.seq),
    );
    assert.deepEqual(
      [...stored(b).keys()].sort((x, y) => x - y),
      records(1, 25).map((r) => r.seq),
    );
    assert.equal(stored(a).get(7)!.stream, 'env.humidity', 'stream indexes map to the manifest’s names');
    assert.equal(stored(a).get(7)!.value, records(7, 7)[0]!.value);
    // The downlink window was persisted before the device acted on each ack.
    assert.ok(a.windowSaves.length >= 1);
  });

  it('carries a tool call to the device and its result back, and answers a repeated call without running it twice', async (t) => {
    const path = await startLoraPath({ lossRate: 0 });
    t.after(() => path.close());
    const d = await path.addDevice('dev-c');
    path.harness.cp.setDevices([{ device: d.keys.did, shortId: d.keys.shortIdHex, standing: 'served' }]);
    await path.harness.startAndWait();
    // The control plane routes to the gateway that heard the device last: let it be heard once.
    await d.deliver(records(1, 1));
    assert.equal(path.relay.routeOf(d.keys.did)?.gateway, path.harness.did);
    const call = { callId: 'Y2FsbC0wMDAwMDAwMDAwMDE', tool: { index: 0 }, args: { channel: 2 } };
    const result = await path.relay.callTool(d.cpView, call, { timeoutMs: 20_000 });
    assert.equal(result.status, 'ok');
    assert.deepEqual(result.value, { echo: { channel: 2 } });
    const again = await path.relay.callTool(d.cpView, call, { timeoutMs: 20_000 });
    assert.deepEqual(again.value, { echo: { channel: 2 } });
    // However the repeat reached the device (a new downlink, or the first one's retransmission before its cancel
    // arrived), the tool ran once.
    assert.deepEqual(d.toolRuns, [call.callId]);
    await waitUntil(() => path.harness.gateway.status().downlink.items === 0, 10_000, 'delivered calls cancelled');
  });
});
