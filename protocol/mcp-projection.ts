// Projection of manifest tools to MCP tool definitions (docs/protocol/mcp-projection.md): a pure function of the
// manifest. Annotations come from the safety class; names are the tool's own (device-local MCP endpoint) or
// `<device label>.<tool>` (the control plane's MCP gateway), and the gateway form maps back unambiguously.

import { ProtocolError } from './errors.ts';
import type { ObjectSchema } from './json-schema.ts';
import { type CapabilityManifest, DEVICE_LABEL, DOTTED_NAME, type SafetyClass, type ToolSpec } from './manifest.ts';

/** MCP tool names (MCP 2025-11-25, server/tools "Tool Names"): 1..128 of A-Z a-z 0-9 _ - . */
export const MCP_TOOL_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** MCP ToolAnnotations; every hint is always present so clients never fall back to their defaults. */
export interface McpToolAnnotations {
  title?: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** An MCP Tool as listed by tools/list. */
export interface McpToolDefinition {
  name: string;
  title?: string;
  description: string;
  inputSchema: ObjectSchema;
  outputSchema?: ObjectSchema;
  annotations: McpToolAnnotations;
}

const HINTS: Readonly<Record<SafetyClass, Omit<McpToolAnnotations, 'title'>>> = Object.freeze({
  read_only: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  // Idempotence is not implied by reversibility (think "step the motor by 10°"), so clients must not retry blindly.
  reversible: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  physical_actuation: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
});

/** The behaviour hints MCP clients see for a safety class. */
export function annotationsFor(safetyClass: SafetyClass): Omit<McpToolAnnotations, 'title'> {
  return { ...HINTS[safetyClass] };
}

/**
 * The MCP name of `toolName`: the tool's own dotted name, or `<deviceLabel>.<toolName>` when a label is given.
 * Throws MCP_NAME_INVALID for a label that is not a device label or a name that is not a dotted tool name.
 */
export function mcpToolName(deviceLabel: string | undefined, toolName: string): string {
  if (typeof toolName !== 'string' || toolName.length > 64 || !DOTTED_NAME.test(toolName)) {
    throw new ProtocolError('MCP_NAME_INVALID', `${JSON.stringify(toolName)} is not a tool name`);
  }
  if (deviceLabel === undefined) return toolName;
  if (typeof deviceLabel !== 'string' || !DEVICE_LABEL.test(deviceLabel)) {
    throw new ProtocolError('MCP_NAME_INVALID', `${JSON.stringify(deviceLabel)} is not a device label`);
  }
  return `${deviceLabel}.${toolName}`;
}

/**
 * Splits a gateway MCP name `<deviceLabel>.<toolName>` at its first dot (labels hold no dots). Throws
 * MCP_NAME_INVALID when either part is malformed, so a name the gateway did not produce never routes anywhere.
 */
export function parseMcpToolName(name: string): { deviceLabel: string; toolName: string } {
  if (typeof name !== 'string' || name.length > 97) {
    throw new ProtocolError('MCP_NAME_INVALID', 'not a gateway tool name');
  }
  const dot = name.indexOf('.');
  const deviceLabel = name.slice(0, dot);
  const toolName = name.slice(dot + 1);
  if (dot < 1 || !DEVICE_LABEL.test(deviceLabel) || toolName.length > 64 || !DOTTED_NAME.test(toolName)) {
    throw new ProtocolError('MCP_NAME_INVALID', `${JSON.stringify(name)} is not <device label>.<tool name>`);
  }
  return { deviceLabel, toolName };
}

export interface ProjectionOptions {
  /** Device label to prefix names with (the gateway form); omit for the device's own MCP endpoint. */
  namePrefix?: string;
}

/** The MCP definition of one manifest tool. Pure; the result shares nothing with `tool`. */
export function projectTool(tool: ToolSpec, options: ProjectionOptions = {}): McpToolDefinition {
  const annotations: McpToolAnnotations = {
    ...(tool.title === undefined ? {} : { title: tool.title }),
    ...annotationsFor(tool.safety_class),
  };
  return {
    name: mcpToolName(options.namePrefix, tool.name),
    ...(tool.title === undefined ? {} : { title: tool.title }),
    description: tool.description,
    inputSchema: structuredClone(tool.inputSchema),
    ...(tool.outputSchema === undefined ? {} : { outputSchema: structuredClone(tool.outputSchema) }),
    annotations,
  };
}

/** Every tool of a manifest, in manifest order. */
export function projectManifest(manifest: CapabilityManifest, options: ProjectionOptions = {}): McpToolDefinition[] {
  return manifest.tools.map((t) => projectTool(t, options));
}
