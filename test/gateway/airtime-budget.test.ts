// The gateway's downlink scheduler keeps to the airtime law as the simulated air accounts it: a 0.1 % EU868
// sub-band (3.6 s of airtime per hour), the air and the gateway's time both running 200× faster.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eu868SubBand } from '../../firmware-bridge/duty-cycle.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { sealLoraFrame } from '../../protocol/lora.ts';
import { startGatewayHarness, TEST_RNODE_PARAMS, waitUntil } from '../support/gateway-harness.ts';
import { testControlPlaneKeys, testDevice } from '../support/lora-fixtures.ts';

describe('gateway airtime budget', () => {
  it('holds downlink when the sub-band budget is used up, never exceeding it, and fails nothing', async (t) => {
    const params = { ...TEST_RNODE_PARAMS, freqHz: 868_950_000 };
    assert.equal(eu868SubBand(params.freqHz, params.bandwidthHz)?.dutyCycle, 0.001);
    const h = await startGatewayHarness({ timeScale: 200, params });
    t.after(() => h.close());
    const device = testDevice(testControlPlaneKeys());
    h.cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);
    await h.device('dev-budget');
    await h.startAndWait();
    const payload = new Uint8Array(80).fill(9);
    const n = 30;
    for (let i = 0; i < n; i++) {
      const frame = sealLoraFrame(device.session, { type: 'tool.result', seq: i + 1 }, payload);
      h.cp.send('lora.downlink', {
        downlinkId: `ZG93bmxpbmstYnVkZ2V0LT${String(i).padStart(3, '0')}`,
        device: device.did,
        shortId: device.shortIdHex,
        priority: 3,
        frames: [toBase64Url(frame)],
        ttlMs: 24 * 3600 * 1000,
        maxAttempts: 1,
      });
    }
    const port = () => h.air.stats().ports['gw-rnode']!;
    // Each frame is ~190 ms on air at SF7: about 18 fit the 3.6 s budget of the hour.
    await waitUntil(() => h.gateway.status().radios[0]!.airtime.budgetUsed > 0.9, 30_000, 'budget nearly used');
    const sent = port().tx.frames;
    const perFrameMs = port().tx.airtimeMs / sent;
    assert.ok(sent >= Math.floor(3600 / perFrameMs) - 2 && sent < n, `sent ${sent} of ${n}`);
    // A second of real time is 200 s of air time: nothing more goes out while the window is full.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(port().tx.frames, sent);
    assert.ok(port().windowAirtimeMs <= 3600, `window airtime ${port().windowAirtimeMs} ms`);
    assert.equal(port().tx.refusedDutyCycle, 0, 'the air never had to refuse the gateway');
    const st = h.gateway.status();
    assert.equal(st.downlink.transmissions, sent);
    assert.equal(st.downlink.byState.queued, n - sent, 'the rest waits for the window to slide, none dropped');
  });
});
