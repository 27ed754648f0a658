import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ToolCallResponse } from '../../agent/api-types.ts';
import { AgentError } from '../../agent/errors.ts';
import { createMcpHttpServer, isAllowedHost, isAllowedOrigin, type McpHttpServer } from '../../agent/mcp-http.ts';
import type { McpCall } from '../../agent/mcp-server.ts';
import { silentLogger } from '../../protocol/log.ts';

const calls: McpCall[] = [];
let server: McpHttpServer;
let url: URL;

before(async () => {
  server = createMcpHttpServer({
    port: 0,
    name: 'test',
    version: '0.0.0',
    log: silentLogger,
    maxBodyBytes: 64 * 1024,
    backend: {
      listTools: async () => [
        {
          name: 'system.echo',
          description: 'echo',
          inputSchema: { type: 'object', properties: { message: { type: 'string' } }, additionalProperties: false },
          outputSchema: { type: 'object', properties: { message: { type: 'string' } } },
          annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
        },
      ],
      callTool: async (c): Promise<ToolCallResponse> => {
        calls.push(c);
        if (c.tool === 'valve.open') {
          throw new AgentError('GATE_DENIED', 'valve.open: physical_actuation needs a quorum token', {
            details: { reason: 'QUORUM_REQUIRED', call_id: 'c1' },
          });
        }
        return {
          call_id: 'c0',
          tool: c.tool,
          safety_class: 'read_only',
          decision: { reason: 'ALLOWED', principal: 'local:mcp_http' },
          result: c.args,
          duration_ms: 1,
          undoable: false,
        };
      },
    },
  });
  url = new URL(await server.listen());
});
after(() => server.close());

function post(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    const r = request(
      {
        host: '127.0.0.1',
        port: url.port,
        path: '/mcp',
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

describe('MCP over Streamable HTTP on 127.0.0.1', () => {
  it('answers the SDK client, passing _meta and the bearer token through', async () => {
    const client = new Client({ name: 't', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: 'Bearer header-token' } } }),
    );
    const r = await client.callTool({
      name: 'system.echo',
      arguments: { message: 'hi' },
      _meta: { 'outpost/quorum': 'q' },
    });
    assert.deepEqual(r.structuredContent, { message: 'hi' });
    assert.deepEqual(calls.at(-1), {
      tool: 'system.echo',
      args: { message: 'hi' },
      token: 'header-token',
      quorum: 'q',
    });
    const d = await client.callTool({ name: 'valve.open', arguments: {}, _meta: { 'outpost/token': 'meta-token' } });
    assert.equal(d.isError, true);
    assert.equal(calls.at(-1)!.token, 'meta-token', '_meta wins over the header');
    assert.deepEqual((d._meta as Record<string, unknown>)['outpost/outcome'], {
      code: 'GATE_DENIED',
      reason: 'QUORUM_REQUIRED',
      call_id: 'c1',
    });
    await client.close();
  });

  it('refuses other Host headers and foreign Origins (DNS rebinding)', async () => {
    assert.equal(await post({ host: `evil.example:${url.port}` }), 403);
    assert.equal(await post({ host: `127.0.0.1:${url.port}`, origin: 'http://evil.example' }), 403);
    assert.equal(await post({ host: `localhost:${url.port}` }), 200);
  });

  it('checks hosts and origins exactly', () => {
    assert.equal(isAllowedHost('127.0.0.1:7390', 7390), true);
    assert.equal(isAllowedHost('127.0.0.1.evil:7390', 7390), false);
    assert.equal(isAllowedHost('127.0.0.1:7391', 7390), false);
    assert.equal(isAllowedHost(undefined, 7390), false);
    assert.equal(isAllowedOrigin(undefined, 7390), true);
    assert.equal(isAllowedOrigin('http://localhost:7390', 7390), true);
    assert.equal(isAllowedOrigin('https://localhost:7390', 7390), false);
  });
});
