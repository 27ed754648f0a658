// Routing a caller's tool call to a device: resolve the device by name in the caller's tenant, check the accepted
// manifest, the caller's role and scopes, the arguments, and for physical actuation the quorum; then send tool.call
// with a per-call token (the caller's identity and role, narrowed to this device and tool, audience the device's
// gate, fresh jti) and wait for tool.result. The device's own gate decides again, always.

import type { JsonValue } from '../protocol/canonical-json.ts';
import { validateJson } from '../protocol/json-schema.ts';
import type { ToolSpec } from '../protocol/manifest.ts';
import { argsHash } from '../protocol/quorum.ts';
import { requiresQuorum, roleAllows } from '../protocol/roles.ts';
import { formatScope, scopesAllow } from '../protocol/scopes.ts';
import { type ApprovalView, approvalView, openApprovalRequest } from './approvals.ts';
import type { Principal } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { ControlPlaneError } from './errors.ts';
import type { DeviceRecord, SessionHandle } from './ports.ts';
import { DEVICE_AUDIENCE } from './settings.ts';

export type CallOutcome =
  | {
      readonly kind: 'result';
      readonly ok: true;
      readonly result: unknown;
      readonly durationMs: number;
      readonly tool: ToolSpec;
      readonly device: DeviceRecord;
    }
  | {
      readonly kind: 'result';
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string };
      readonly durationMs: number;
      readonly tool: ToolSpec;
      readonly device: DeviceRecord;
    }
  | {
      readonly kind: 'needs_approval';
      readonly approval: ApprovalView;
      readonly tool: ToolSpec;
      readonly device: DeviceRecord;
    };

/** A device that can take calls now: online in the tenant, running its accepted manifest. */
export interface CallableDevice {
  readonly device: DeviceRecord;
  readonly session: SessionHandle;
  readonly tools: readonly ToolSpec[];
}

/** Devices of the tenant whose session runs their accepted manifest. */
export async function callableDevices(ctx: ControlPlaneContext, tid: string): Promise<CallableDevice[]> {
  const out: CallableDevice[] = [];
  for (const session of ctx.sessions.online(tid)) {
    const device = await ctx.store.getDevice(session.device);
    if (device?.status !== 'active' || device.tid !== tid || !device.accepted) continue;
    if (session.manifestHash() !== device.accepted.hash) continue;
    out.push({ device, session, tools: device.accepted.manifest.tools });
  }
  return out.sort((a, b) => (a.device.name < b.device.name ? -1 : 1));
}

/** True when the principal (a token) may call `tool` on `device`: role allows its class and a scope grants call. */
export function mayCall(principal: Principal, device: string, tool: ToolSpec): boolean {
  if (principal.kind !== 'token') return false;
  return (
    roleAllows(principal.role, tool.safety_class) &&
    scopesAllow(principal.scopes, { tenant: principal.tid, device, tool: tool.name, action: 'call' })
  );
}

/**
 * Calls `toolName` on the device named `deviceName` of the principal's tenant with `args`. Throws DEVICE_UNKNOWN,
 * DEVICE_OFFLINE, CAPABILITIES_PENDING, TOOL_UNKNOWN, FORBIDDEN, ARGS_INVALID, POLICY_MISSING, DEVICE_BUSY,
 * DEVICE_TIMEOUT, SESSION_CLOSED. Device-side refusals come back as `ok: false` results.
 */
export async function callDeviceTool(
  ctx: ControlPlaneContext,
  principal: Principal,
  call: { deviceName: string; toolName: string; args: { readonly [key: string]: JsonValue } },
): Promise<CallOutcome> {
  const subject = `${call.deviceName}.${call.toolName}`;
  const deny = async (code: ControlPlaneError['code'], message: string, details: Record<string, JsonValue> = {}) => {
    ctx.metrics.toolCalls.inc({ outcome: code });
    await audit(ctx, { kind: 'tool.call', actor: principal.subject, subject, decision: 'deny', reason: code, details });
    return new ControlPlaneError(code, message);
  };
  if (principal.kind !== 'token') throw await deny('FORBIDDEN', 'tool calls need a caller token with a role');
  const device = await ctx.store.findDeviceByName(principal.tid, call.deviceName);
  if (!device || device.tid !== principal.tid) throw await deny('DEVICE_UNKNOWN', `no device ${call.deviceName}`);
  const session = ctx.sessions.get(device.device);
  if (!session || session.tid !== principal.tid) throw await deny('DEVICE_OFFLINE', `${device.name} is not connected`);
  if (!device.accepted || session.manifestHash() !== device.accepted.hash) {
    throw await deny('CAPABILITIES_PENDING', `${device.name} runs a manifest an operator has not accepted yet`);
  }
  const tool = device.accepted.manifest.tools.find((t) => t.name === call.toolName);
  if (!tool) throw await deny('TOOL_UNKNOWN', `${device.name} has no tool ${call.toolName}`);
  if (!mayCall(principal, device.device, tool)) {
    throw await deny(
      'FORBIDDEN',
      `role ${principal.role} with these scopes may not call ${subject} (${tool.safety_class})`,
    );
  }
  const validation = validateJson(tool.inputSchema, call.args);
  if (!validation.valid) {
    const first = validation.errors[0]!;
    throw await deny('ARGS_INVALID', `arguments: ${first.path || '/'}: ${first.message}`, {
      errors: validation.errors.slice(0, 4).map((e) => `${e.path}: ${e.message}`),
    });
  }
  let quorum: string | undefined;
  if (requiresQuorum(tool.safety_class)) {
    const key = {
      tid: device.tid,
      device: device.device,
      tool: tool.name,
      argsHash: argsHash(call.args),
      requester: principal.subject,
    };
    const approved = await ctx.store.consumeApproval(key, ctx.clock.nowMs());
    if (!approved?.quorum) {
      const request = await openApprovalRequest(ctx, { device, tool, args: call.args, requester: principal.subject });
      ctx.metrics.toolCalls.inc({ outcome: 'needs_approval' });
      await audit(ctx, {
        kind: 'tool.call',
        actor: principal.subject,
        subject,
        decision: 'hold',
        reason: 'NEEDS_APPROVAL',
        details: { requestId: request.requestId },
      });
      return { kind: 'needs_approval', approval: approvalView(request, ctx.clock.nowMs()), tool, device };
    }
    quorum = approved.quorum;
  }
  const nowMs = ctx.clock.nowMs();
  const callToken = await ctx.issuer.issue(
    {
      aud: DEVICE_AUDIENCE,
      sub: principal.subject,
      tid: principal.tid,
      dev: device.device,
      role: principal.role,
      scope: formatScope({ tenant: principal.tid, device: device.device, tool: tool.name, action: 'call' }),
    },
    tool.timeoutMs + ctx.settings.callTokenSlackMs,
  );
  const started = ctx.clock.monotonicMs();
  let result: Awaited<ReturnType<SessionHandle['callTool']>>;
  try {
    result = await session.callTool({
      tool: tool.name,
      args: call.args,
      token: callToken.token,
      ...(quorum ? { quorum } : {}),
      deadlineMs: nowMs + tool.timeoutMs,
    });
  } catch (e) {
    const code = e instanceof ControlPlaneError ? e.code : 'INTERNAL';
    ctx.metrics.toolCalls.inc({ outcome: code });
    await audit(ctx, {
      kind: 'tool.call',
      actor: principal.subject,
      subject,
      decision: 'fail',
      reason: code,
      details: { jti: callToken.claims.jti, quorum: quorum !== undefined },
    });
    throw e;
  }
  const elapsedMs = ctx.clock.monotonicMs() - started;
  ctx.metrics.toolCallSeconds.observe(elapsedMs / 1000);
  ctx.metrics.toolCalls.inc({ outcome: result.ok ? 'ok' : 'device_refused' });
  await audit(ctx, {
    kind: 'tool.call',
    actor: principal.subject,
    subject,
    decision: result.ok ? 'allow' : 'device_refused',
    reason: result.ok ? 'OK' : result.error.code,
    details: {
      device: device.device,
      jti: callToken.claims.jti,
      quorum: quorum !== undefined,
      durationMs: result.durationMs,
    },
  });
  return result.ok
    ? { kind: 'result', ok: true, result: result.result, durationMs: result.durationMs, tool, device }
    : { kind: 'result', ok: false, error: result.error, durationMs: result.durationMs, tool, device };
}
