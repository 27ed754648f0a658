// `outpost controlplane run --tls-cert --tls-key`: HTTPS and WSS on the same port.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { WebSocket } from 'ws';
import { selfSignedLoopbackCert } from '../../cli/self-signed-cert.ts';
import { startControlPlaneHost } from '../../controlplane/node/host.ts';
import { initStateDir } from '../../controlplane/node/state-dir.ts';
import { systemClock } from '../../protocol/clock.ts';
import { WSS_SUBPROTOCOL } from '../../protocol/envelope.ts';
import { silentLogger } from '../../protocol/log.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { freePort } from '../support/controlplane.ts';

it('serves the API over HTTPS and the hub over WSS on one port', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-cp-tls-'));
  const port = await freePort();
  const cert = selfSignedLoopbackCert(Date.now(), 'outpost-cp-test');
  writeFileSync(join(dir, 'cert.pem'), cert.certPem);
  writeFileSync(join(dir, 'key.pem'), cert.keyPem);
  const init = await initStateDir({
    dir: join(dir, 'cp'),
    env: {},
    clock: systemClock,
    log: silentLogger,
    listenHost: '127.0.0.1',
    listenPort: port,
    publicUrl: `https://127.0.0.1:${port}`,
    tenant: 'tls',
    hybridTokens: false,
  });
  const host = await startControlPlaneHost({
    dir: join(dir, 'cp'),
    env: {},
    clock: systemClock,
    log: silentLogger,
    metrics: new MetricsRegistry(),
    version: 'test',
    tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') },
  });
  try {
    assert.equal(host.url, `https://127.0.0.1:${port}`);
    const jwks = await new Promise<string>((resolve, reject) => {
      get(`https://127.0.0.1:${port}/.well-known/jwks.json`, { ca: cert.certPem }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    assert.equal((JSON.parse(jwks) as { keys: unknown[] }).keys.length, 1);
    const ws = new WebSocket(`wss://127.0.0.1:${port}/v1/hub/${init.created.tenant.tid}`, [WSS_SUBPROTOCOL], {
      ca: cert.certPem,
    });
    const first = await new Promise<{ type: string; tid: string }>((resolve, reject) => {
      ws.once('message', (d) => resolve(JSON.parse(d.toString()) as { type: string; tid: string }));
      ws.once('error', reject);
    });
    assert.equal(first.type, 'hello.challenge');
    assert.equal(first.tid, init.created.tenant.tid);
    ws.close();
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
