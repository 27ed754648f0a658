// Discovery documents stay true: every API path /llms.txt names has a route, /.well-known/mcp.json points at the
// MCP endpoint, and did.json publishes the identity that signs audit exports.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, startTestControlPlane, type TestControlPlane } from '../support/controlplane.ts';

describe('discovery', () => {
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane();
  });
  after(() => cp.close());

  it('/llms.txt names only routes that exist', async () => {
    const text = await (await fetch(`${cp.url}/llms.txt`)).text();
    assert.match(text, new RegExp(`Endpoint: ${cp.url}/mcp`));
    const mentions = [...text.matchAll(/^- (GET|POST|PUT)(?:\|(GET|POST|PUT))? (\/v1\/[^\s?—]+)/gm)];
    assert.ok(mentions.length >= 8, `${mentions.length} routes named`);
    for (const m of mentions) {
      for (const method of [m[1], m[2]].filter(Boolean) as string[]) {
        for (const raw of m[3]!.split(', ')) {
          const path = raw.replace(/\{[^}]+\}/g, 'AAAAAAAAAAAAAAAAAAAAAA').replace(/,$/, '');
          const r = await api(cp.url, path, { method, ...(method === 'GET' ? {} : { body: {} }) });
          assert.notEqual(r.body.error?.code, 'NOT_FOUND', `${method} ${path}`);
          assert.notEqual(r.status, 405, `${method} ${path}`);
        }
      }
    }
  });

  it('/.well-known/mcp.json and did.json describe this control plane', async () => {
    const mcp = (await api(cp.url, '/.well-known/mcp.json')).body as { endpoints: { streamableHttp: string } };
    assert.equal(mcp.endpoints.streamableHttp, `${cp.url}/mcp`);
    const did = (await api(cp.url, '/.well-known/did.json')).body as {
      id: string;
      verificationMethod: { publicKeyMultibase: string }[];
    };
    assert.equal(did.id, `did:web:127.0.0.1%3A${cp.port}`);
    assert.equal(`did:key:${did.verificationMethod[0]!.publicKeyMultibase}`, cp.host.state.identityDid);
    const tenant = (await api(cp.url, '/tenants/acme/did.json')).body as { alsoKnownAs: string[] };
    assert.deepEqual(tenant.alsoKnownAs, [`urn:uuid:${cp.tid}`]);
  });
});
