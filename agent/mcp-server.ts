// The agent's MCP server: the manifest's tools as MCP tools, each call through the safety gate. One
// implementation serves `outpost mcp` (stdio, backed by the local API) and the 127.0.0.1 HTTP endpoint
// (backed by the daemon's actions). Callers pass authority per call in `_meta` (docs/agent.md §MCP).

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { isOutpostError } from '../protocol/errors.ts';
import type { McpToolDefinition } from '../protocol/mcp-projection.ts';
import type { ToolCallResponse } from './api-types.ts';

/** `_meta` keys a caller sets on tools/call to present authority (MCP reserves unprefixed names). */
export const META_TOKEN = 'outpost/token';
export const META_QUORUM = 'outpost/quorum';
export const META_CALL_ID = 'outpost/call_id';
/** `_meta` key of results: the call id, gate reason and, on failure, the error code. */
export const META_OUTCOME = 'outpost/outcome';

export interface McpCall {
  readonly tool: string;
  readonly args: Record<string, unknown>;
  readonly callId?: string;
  readonly token?: string;
  readonly quorum?: string;
}

/** What the MCP server needs from whoever runs the tools. */
export interface McpBackend {
  /** MCP tool definitions (the manifest projected by protocol/mcp-projection.ts). */
  listTools(): Promise<readonly McpToolDefinition[]>;
  /** Calls through the gate; rejects with an OutpostError (GATE_DENIED, TOOL_*, …). */
  callTool(call: McpCall): Promise<ToolCallResponse>;
}

export interface McpServerOptions {
  readonly backend: McpBackend;
  readonly name: string;
  readonly version: string;
}

function metaString(meta: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = meta?.[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Builds a low-level MCP Server (tools capability only); connect it to a transport to serve. */
export function createMcpServer(options: McpServerOptions): Server {
  const server = new Server(
    { name: options.name, version: options.version },
    {
      capabilities: { tools: { listChanged: false } },
      instructions:
        'Tools of one Outpost device. read_only tools need nothing; reversible and physical_actuation tools need a ' +
        'runtime token in _meta["outpost/token"], and physical_actuation also a quorum token in _meta["outpost/quorum"].',
    },
  );
  // Tools with an outputSchema must answer with structuredContent; remember which do (a stateless HTTP
  // request may call without listing first, so the list is fetched on demand).
  let withOutputSchema: Set<string> | undefined;
  const listTools = async () => {
    const tools = await options.backend.listTools();
    withOutputSchema = new Set(tools.filter((t) => t.outputSchema).map((t) => t.name));
    return tools;
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools = await listTools();
    return { tools: tools.map((t) => ({ ...t }) as Tool) };
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const meta = request.params._meta as Record<string, unknown> | undefined;
    const token = metaString(meta, META_TOKEN) ?? extra.authInfo?.token;
    const quorum = metaString(meta, META_QUORUM);
    const callId = metaString(meta, META_CALL_ID);
    if (!withOutputSchema) await listTools();
    try {
      const r = await options.backend.callTool({
        tool: request.params.name,
        args: request.params.arguments ?? {},
        ...(callId ? { callId } : {}),
        ...(token ? { token } : {}),
        ...(quorum ? { quorum } : {}),
      });
      const text = typeof r.result === 'string' ? r.result : JSON.stringify(r.result, null, 2);
      return {
        content: [{ type: 'text', text }],
        ...(withOutputSchema?.has(r.tool) && isPlainObject(r.result) ? { structuredContent: r.result } : {}),
        _meta: { [META_OUTCOME]: { call_id: r.call_id, reason: r.decision.reason, undoable: r.undoable } },
      };
    } catch (e) {
      // Tool failures and refusals are results the model should see (MCP tools/call isError), not protocol errors.
      if (!isOutpostError(e)) throw e;
      const reason = typeof e.details.reason === 'string' ? e.details.reason : undefined;
      return {
        isError: true,
        content: [{ type: 'text', text: `${e.code}${reason ? ` (${reason})` : ''}: ${e.message}` }],
        _meta: { [META_OUTCOME]: { code: e.code, reason, call_id: e.details.call_id } },
      };
    }
  });
  return server;
}
