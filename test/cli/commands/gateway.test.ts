// `outpost gateway run` and `outpost gateway status` as real processes: emulated radios from `outpost radio
// sim`, a loopback control plane behind a backhaul that can be cut, and a gateway killed with SIGKILL.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT } from '../../../cli/exit.ts';
import type { RadioSimInfo } from '../../../cli/radio-sim.ts';
import { createRNodeRadio } from '../../../firmware-bridge/rnode/driver.ts';
import type { GatewayStatus } from '../../../gateway/gateway.ts';
import { didKeyFromEd25519 } from '../../../protocol/did-key.ts';
import { ed25519KeyPair } from '../../../protocol/signing.ts';
import { writeFileAtomic } from '../../../store/atomic-file.ts';
import { startBackhaulProxy } from '../../support/backhaul-proxy.ts';
import { startCli } from '../../support/cli-process.ts';
import { startFakeControlPlane } from '../../support/fake-controlplane.ts';
import { FAST_RNODE_TIMING, TEST_RNODE_PARAMS } from '../../support/gateway-harness.ts';
import { telemetryFrame, testControlPlaneKeys, testDevice } from '../../support/lora-fixtures.ts';
import { tempDir } from '../../support/radio-fixtures.ts';

function getSocket(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

async function status(config: string): Promise<GatewayStatus> {
  const p = startCli(['gateway', 'status', '--config', config, '--json']);
  const s = await p.waitForJson<GatewayStatus>();
  assert.equal(await p.exited, EXIT.ok);
  return s;
}

async function until(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('outpost gateway run | status (real processes)', () => {
  it('keeps what it stored across SIGKILL and forwards it after the restart', async (t) => {
    const { dir, cleanup } = await tempDir('outpost-cli-gw-');
    t.after(cleanup);
    const sim = startCli(['radio', 'sim', '--rnode', '2', '--dir', join(dir, 'air'), '--json']);
    t.after(() => sim.stop('SIGKILL'));
    const air = await sim.waitForJson<RadioSimInfo>();

    const cp = await startFakeControlPlane({ heartbeatMs: 2_000 });
    t.after(() => cp.close());
    const proxy = await startBackhaulProxy(cp.port);
    t.after(() => proxy.close());
    const device = testDevice(testControlPlaneKeys());
    cp.setDevices([{ device: device.did, shortId: device.shortIdHex, standing: 'served' }]);

    // The identity is created by the first run; enrollment is simulated by writing the token it would get.
    const state = join(dir, 'state');
    const seed = new Uint8Array(32).fill(42);
    mkdirSync(state, { mode: 0o700 });
    writeFileAtomic(join(state, 'identity.key'), seed, { mode: 0o600 });
    const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
    writeFileAtomic(join(state, 'upstream.token'), `${await cp.mintToken(did)}\n`, { mode: 0o600 });
    const config = join(dir, 'gateway.toml');
    writeFileSync(
      config,
      `[gateway]
name = "cli-gw"
state_dir = "state"
log_level = "debug"

[upstream]
url = "ws://127.0.0.1:${proxy.port}/v1/wss"
tenant = "${cp.tid}"
heartbeat_s = 2
reconnect_initial_s = 0.1
reconnect_max_s = 0.5

[[radio]]
name = "rnode0"
kind = "rnode"
path = "${air.radios[0]!.path}"
region = "EU868"
frequency_hz = ${TEST_RNODE_PARAMS.freqHz}
bandwidth_hz = ${TEST_RNODE_PARAMS.bandwidthHz}
spreading_factor = ${TEST_RNODE_PARAMS.spreadingFactor}
tx_power_dbm = ${TEST_RNODE_PARAMS.txPowerDbm}
`,
    );

    let gw = startCli(['gateway', 'run', '--config', config, '--json']);
    t.after(() => gw.stop('SIGKILL'));
    const running = await gw.waitForJson<{ id: string; socket: string }>();
    assert.equal(running.id, did);
    await cp.waitFor(() => cp.sessions() === 1, 15_000, 'first session');
    await until(async () => (await status(config)).radios[0]!.ready, 15_000, 'radio ready');

    const radio = createRNodeRadio({ path: air.radios[1]!.path, params: TEST_RNODE_PARAMS, timing: FAST_RNODE_TIMING });
    t.after(() => radio.close());
    await radio.open();
    proxy.down();
    const sent: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const f = telemetryFrame(device, [{ seq: i, stream: 0, ts: 1_800_000_000_000 + i * 1000, value: i }]);
      sent.push(Buffer.from(f).toString('base64url'));
      await radio.send(f);
    }
    await until(async () => (await status(config)).uplink.frames === 8, 15_000, 'eight frames stored');
    const human = startCli(['gateway', 'status', '--config', config]);
    await human.exited;
    assert.match(human.lines.join('\n'), /uplink: 8 frames stored/);
    assert.match(await getSocket(running.socket, '/metrics'), /outpost_gateway_uplink_stored_frames 8/);

    // kill -9 while the radio side keeps talking; then restart.
    const more = radio.send(telemetryFrame(device, [{ seq: 9, stream: 0, ts: 1_800_000_009_000, value: 9 }]));
    assert.equal(await gw.stop('SIGKILL'), 'SIGKILL');
    await more;
    gw = startCli(['gateway', 'run', '--config', config, '--json']);
    await gw.waitForJson();
    const after = await status(config);
    assert.ok(after.uplink.frames >= 8, `stored frames survived: ${after.uplink.frames}`);
    proxy.up();
    await cp.waitFor(() => sent.every((f) => cp.frames.some((r) => r.frame === f)), 20_000, 'all stored frames');
    await until(async () => (await status(config)).uplink.frames === 0, 15_000, 'store drained');
    assert.equal(await gw.stop('SIGTERM'), 0);
    assert.equal(await sim.stop('SIGTERM'), 0);
  });

  it('reports a daemon that is not running as unavailable', async (t) => {
    const { dir, cleanup } = await tempDir('outpost-cli-gw-');
    t.after(cleanup);
    const p = startCli(['gateway', 'status', '--socket', join(dir, 'nothing.sock')]);
    assert.equal(await p.exited, EXIT.unavailable);
    assert.match(p.stderr(), /no gateway answers/);
  });
});
