// `outpost mcp`: an MCP server on stdin/stdout for Claude Desktop and similar clients. It holds no logic of
// its own: tools come from the running agent's manifest and every call goes through its local API (and gate).

import type { ToolCallResponse } from '../../agent/api-types.ts';
import type { McpBackend } from '../../agent/mcp-server.ts';
import type { CapabilityManifest } from '../../protocol/manifest.ts';
import { AGENT_OPTIONS, agentClient } from '../agent-setup.ts';
import { buildInfo } from '../build-info.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit.ts';

export const mcpCommands: Command[] = [
  {
    path: ['mcp'],
    summary: 'serve the agent’s tools over MCP on stdio (for Claude Desktop and other MCP clients)',
    usage: '[--socket PATH] [--config FILE]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      const [{ StdioServerTransport }, { createMcpServer }, { projectManifest }] = await Promise.all([
        import('@modelcontextprotocol/sdk/server/stdio.js'),
        import('../../agent/mcp-server.ts'),
        import('../../protocol/mcp-projection.ts'),
      ]);
      const client = agentClient(ctx, 15 * 60_000);
      const backend: McpBackend = {
        async listTools() {
          const m = await client.get<{ manifest: CapabilityManifest }>('/v1/manifest');
          return projectManifest(m.manifest);
        },
        callTool: (c) =>
          client.post<ToolCallResponse>('/v1/tools/call', {
            tool: c.tool,
            args: c.args,
            via: 'mcp_stdio',
            ...(c.callId ? { call_id: c.callId } : {}),
            ...(c.token ? { token: c.token } : {}),
            ...(c.quorum ? { quorum: c.quorum } : {}),
          }),
      };
      const server = createMcpServer({ backend, name: 'outpost-agent', version: buildInfo().version });
      const transport = new StdioServerTransport();
      const closed = new Promise<void>((resolve) => {
        transport.onclose = () => resolve();
        process.stdin.once('end', () => resolve());
        ctx.io.stopSignal.addEventListener('abort', () => resolve(), { once: true });
      });
      await server.connect(transport);
      await closed;
      await server.close();
      return EXIT.ok;
    },
  },
];
