import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { EXIT } from '../../cli/exit.ts';
import type { CliIo } from '../../cli/io.ts';
import { main } from '../../cli/main.ts';
import { enrollGateway, renewGatewayToken } from '../../gateway/enrollment.ts';
import type { GatewayStatus } from '../../gateway/gateway.ts';
import { gatewayManifest } from '../../gateway/manifest.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { startCli } from '../support/cli-process.ts';
import { startFakeControlPlane } from '../support/fake-controlplane.ts';
import { tempDir } from '../support/radio-fixtures.ts';

function io(stdin: string, env: Record<string, string> = {}): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: (t) => {
        out += t;
      },
      stderr: (t) => {
        err += t;
      },
      env,
      stdin: Readable.from([stdin]),
      isTty: false,
      cwd: process.cwd(),
      stopSignal: new AbortController().signal,
    },
    out: () => out,
    err: () => err,
  };
}

describe('gateway enrollment', () => {
  it('enrolls with a proof of its key, and renews a token by proving it again over a challenge', async (t) => {
    const cp = await startFakeControlPlane();
    t.after(() => cp.close());
    const seed = new Uint8Array(32).fill(9);
    const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
    const manifest = gatewayManifest({ did, name: 'gw-e', agentVersion: '0.1.0', radios: [] });
    const token = cp.issueEnrollToken();
    const r = await enrollGateway({ httpUrl: cp.httpUrl, token, seed, manifest, nowMs: 1 });
    assert.equal(r.enrollment.device, did);
    assert.equal(r.enrollment.tid, cp.tid);
    assert.match(r.enrollment.wssUrl, /^ws:\/\/127\.0\.0\.1:\d+\/v1\/wss$/);
    assert.deepEqual(cp.enrolled(), [did]);
    // The token is single use.
    await assert.rejects(enrollGateway({ httpUrl: cp.httpUrl, token, seed, manifest, nowMs: 1 }), {
      code: 'UPSTREAM_HANDSHAKE_FAILED',
    });
    // Another key cannot renew this gateway's token.
    await assert.rejects(renewGatewayToken({ httpUrl: cp.httpUrl, seed: new Uint8Array(32).fill(8) }), {
      code: 'UPSTREAM_HANDSHAKE_FAILED',
    });
    const fresh = await renewGatewayToken({ httpUrl: cp.httpUrl, seed });
    assert.equal(fresh.split('.').length, 3);
    await assert.rejects(renewGatewayToken({ httpUrl: 'http://127.0.0.1:1', seed }), { code: 'UPSTREAM_CLOSED' });
  });

  it('`outpost gateway enroll` reads the token from stdin, keeps the enrollment 0600, and `run` connects with it', async (t) => {
    const { dir, cleanup } = await tempDir('outpost-gw-enroll-');
    t.after(cleanup);
    const cp = await startFakeControlPlane({ heartbeatMs: 2_000 });
    t.after(() => cp.close());
    const air = startCli(['radio', 'sim', '--rnode', '1', '--dir', join(dir, 'air'), '--json']);
    t.after(() => air.stop('SIGKILL'));
    const sim = await air.waitForJson<{ radios: { path: string }[] }>();
    const config = join(dir, 'gateway.toml');
    mkdirSync(join(dir, 'state'), { mode: 0o700 });
    writeFileSync(
      config,
      `[gateway]\nname = "gw-enrolled"\nstate_dir = "state"\n\n[[radio]]\nname = "rnode0"\nkind = "rnode"\npath = "${sim.radios[0]!.path}"\nregion = "EU868"\nfrequency_hz = 867_200_000\nbandwidth_hz = 125_000\nspreading_factor = 8\ntx_power_dbm = 14\n`,
    );
    const c = io(`${cp.issueEnrollToken()}\n`);
    const code = await main(
      ['gateway', 'enroll', '--url', cp.httpUrl, '--token-file', '-', '--config', config, '--json'],
      c.io,
    );
    assert.equal(code, EXIT.ok, c.err());
    const out = JSON.parse(c.out()) as { id: string; tid: string };
    assert.equal(out.tid, cp.tid);
    for (const f of ['enrollment.json', 'upstream.token', 'identity.key']) {
      assert.equal(statSync(join(dir, 'state', f)).mode & 0o777, 0o600, f);
    }
    assert.equal(JSON.parse(readFileSync(join(dir, 'state', 'enrollment.json'), 'utf8')).device, out.id);

    // Runtime tokens now live 2 s: the gateway must renew by itself when one expires.
    cp.setTokenLifetime(2);
    writeFileSync(join(dir, 'state', 'upstream.token'), '');
    const gw = startCli(['gateway', 'run', '--config', config, '--json']);
    t.after(() => gw.stop('SIGKILL'));
    await gw.waitForJson();
    await cp.waitFor(() => cp.sessions() >= 1, 20_000, 'a session with a renewed token');
    const status = startCli(['gateway', 'status', '--config', config, '--json']);
    const s = await status.waitForJson<GatewayStatus>();
    assert.equal(s.id, out.id);
    assert.equal(await gw.stop('SIGTERM'), 0);
  });
});
