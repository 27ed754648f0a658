// One tool call from any source, start to end: verify what the caller presents, gather the facts, let the
// pure gate decide, audit the decision, commit single-use values, run through the executor, audit the
// result and how to undo it. Undo is a call like any other (same gate), tied to the call it reverses.

import { randomUUID } from 'node:crypto';
import { canonicalize, type JsonValue } from '../protocol/canonical-json.ts';
import type { Clock } from '../protocol/clock.ts';
import { isOutpostError, OutpostError } from '../protocol/errors.ts';
import { validateJson } from '../protocol/json-schema.ts';
import type { Logger } from '../protocol/log.ts';
import { planUndo } from '../protocol/manifest.ts';
import { argsHash, DEFAULT_MAX_QUORUM_TTL_MS, verifyQuorum } from '../protocol/quorum.ts';
import type { TokenVerifier } from '../protocol/token-verifier.ts';
import { DEFAULT_MAX_LIFETIME_S } from '../protocol/tokens.ts';
import type { AuditEntryInput, AuditLog } from '../store/audit.ts';
import type { AgentStore } from './agent-store.ts';
import type { ToolCallResponse } from './api-types.ts';
import { AgentError } from './errors.ts';
import type { Executor } from './executor.ts';
import {
  type CallSource,
  decide,
  type GateDecision,
  type Principal,
  type QuorumFact,
  type TokenFact,
  type ToolHistory,
} from './gate.ts';
import { quorumFact, quorumFactFromError, tokenFact, tokenFactFromError } from './gate-facts.ts';
import type { BuiltAgentManifest } from './manifest-builder.ts';
import type { TrustBundle } from './trust-bundle.ts';
import { isWallClockTrusted } from './wall-clock.ts';

export interface CallRequest {
  readonly tool: string;
  readonly args: Record<string, unknown>;
  readonly source: CallSource;
  readonly callId?: string;
  readonly token?: string;
  readonly quorum?: string;
}

export interface ToolCallObserver {
  decided(tool: string, safetyClass: string, decision: GateDecision, source: CallSource): void;
  finished(tool: string, ok: boolean, durationMs: number, code: string): void;
}

export interface ToolCalls {
  /** Resolves with the result, or rejects with GATE_DENIED (details.reason) or the tool's TOOL_* error. */
  call(req: CallRequest): Promise<ToolCallResponse>;
  /** Runs the undo recorded for `callId` through the gate, with the caller's own authority. */
  undo(req: { callId: string; source: CallSource; token?: string; quorum?: string }): Promise<ToolCallResponse>;
}

export interface ToolCallsOptions {
  readonly manifest: BuiltAgentManifest;
  readonly deviceId: string;
  readonly trust: TrustBundle | undefined;
  readonly verifier: TokenVerifier | undefined;
  readonly agentStore: AgentStore;
  readonly audit: AuditLog;
  /** Runs `fn` in one durable transaction (the store database's `write`). */
  readonly transaction: <T>(fn: () => T) => T;
  readonly executor: Executor;
  readonly clock: Clock;
  readonly log: Logger;
  readonly observer?: ToolCallObserver;
}

/** Arguments are copied into the audit entry when their canonical form is at most this large (else a hash). */
const MAX_AUDITED_ARGS_BYTES = 4096;
/** Call history older than this cannot matter to any interlock (manifest windows are at most a day). */
export const HISTORY_WINDOW_MS = 86_400_000;

/** Runs a safety write; a full disk becomes a plain DISK_FULL: nothing runs that could not be audited. */
function unlessDiskFull<T>(write: () => T): T {
  try {
    return write();
  } catch (e) {
    if (isOutpostError(e, 'STORE_DISK_FULL')) {
      throw new AgentError(
        'DISK_FULL',
        'the disk is full: the call was not run because its audit entry could not be written',
        {
          cause: e,
        },
      );
    }
    throw e;
  }
}

function actorOf(p: Principal, source: CallSource): string {
  return p.kind === 'token' && p.subject ? p.subject : `local:${source}`;
}

/** Audit fields are 1..256 printable ASCII; a tool name from outside may be anything. */
function auditText(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?').slice(0, 256);
  return clean.length > 0 ? clean : '?';
}

function auditArgs(args: Record<string, unknown>): { [k: string]: JsonValue } {
  try {
    const text = canonicalize(args);
    return Buffer.byteLength(text) <= MAX_AUDITED_ARGS_BYTES
      ? { args: JSON.parse(text) as JsonValue, args_hash: argsHash(args) }
      : { args_hash: argsHash(args) };
  } catch {
    return {}; // arguments JSON cannot hold were refused by the schema check already
  }
}

/** A copy of `e` carrying the call id, so the caller can ask about or undo the call. */
function withCallId(e: unknown, callId: string): unknown {
  if (!isOutpostError(e)) return e;
  const copy = new OutpostError(e.code, e.message, { cause: e, details: { ...e.details, call_id: callId } });
  copy.name = e.name;
  return copy;
}

export function createToolCalls(o: ToolCallsOptions): ToolCalls {
  const { manifest, agentStore, audit, clock, log } = o;

  async function verifyToken(token: string | undefined): Promise<TokenFact> {
    if (token === undefined) return { state: 'absent' };
    if (!o.verifier) return { state: 'unverifiable' };
    try {
      const v = await o.verifier.verify(token);
      // Whether the jti was spent is read again inside the critical section; this is only the first look.
      return tokenFact(v, false);
    } catch (e) {
      return tokenFactFromError(e);
    }
  }

  function verifyQuorumFact(req: CallRequest): QuorumFact {
    const tool = manifest.tools.get(req.tool)?.spec;
    if (tool?.safety_class !== 'physical_actuation' || req.quorum === undefined) return { state: 'absent' };
    if (!o.trust) return { state: 'invalid', reason: 'QUORUM_INVALID', detail: 'TRUST_NOT_CONFIGURED' };
    try {
      const v = verifyQuorum(req.quorum, {
        policy: o.trust.policy,
        tid: o.trust.tenantId,
        device: o.deviceId,
        tool: req.tool,
        args: req.args,
        safetyClass: tool.safety_class,
        clock,
      });
      return quorumFact(v, false);
    } catch (e) {
      return quorumFactFromError(e);
    }
  }

  function historyOf(tool: string, nowStoreMs: number): ToolHistory {
    return agentStore.history(tool, nowStoreMs - HISTORY_WINDOW_MS);
  }

  function entry(
    decision: GateDecision,
    req: CallRequest,
    callId: string,
    safetyClass: string,
    extra: Record<string, JsonValue>,
  ): AuditEntryInput {
    return {
      kind: 'tool.call',
      actor: auditText(actorOf(decision.principal, req.source)),
      subject: auditText(req.tool),
      decision: decision.allow ? 'allow' : 'deny',
      reason: decision.reason,
      details: {
        call_id: callId,
        source: req.source,
        safety_class: safetyClass,
        ...(decision.principal.role ? { role: decision.principal.role } : {}),
        ...auditArgs(req.args),
        ...extra,
      },
    };
  }

  async function call(req: CallRequest, undoOf?: string): Promise<ToolCallResponse> {
    const callId = req.callId ?? randomUUID();
    if (agentStore.findRun(callId)) {
      throw new AgentError('REQUEST_MALFORMED', `call id ${callId} was used before; choose a new one`);
    }
    const runtime = manifest.tools.get(req.tool);
    const spec = runtime?.spec;
    // Slow, async checks first (signature verification), outside the critical section.
    const token = await verifyToken(req.token);
    const quorum = verifyQuorumFact(req);
    const argsCheck = spec ? validateJson(spec.inputSchema, req.args) : { valid: true as const };
    const argsErrors = argsCheck.valid ? [] : argsCheck.errors.map((e) => `${e.path || '/'}: ${e.message}`);

    // Critical section: no await from here to the commit, so facts cannot change under the decision.
    const nowStoreMs = agentStore.nowStoreMs();
    const exclusions = spec ? (manifest.exclusions.get(spec.name) ?? []) : [];
    const history = new Map<string, ToolHistory>();
    if (spec) history.set(spec.name, historyOf(spec.name, nowStoreMs));
    for (const x of exclusions) history.set(x.tool, historyOf(x.tool, nowStoreMs));
    const facts = {
      source: req.source,
      toolName: req.tool,
      tool: spec,
      exclusions,
      argsErrors,
      device: { id: o.deviceId, tenant: o.trust?.tenantId },
      token: token.state === 'valid' ? { ...token, jtiSeen: agentStore.isSpent('jti', token.jti) } : token,
      quorum:
        quorum.state === 'valid' ? { ...quorum, nonceSeen: agentStore.isSpent('quorum_nonce', quorum.nonce) } : quorum,
      wallMs: clock.nowMs(),
      wallClockTrusted: isWallClockTrusted(clock),
      nowStoreMs,
      history,
    };
    const decision = decide(facts);
    const safetyClass = spec?.safety_class ?? 'unknown';
    // Metrics label only manifest tool names, so callers cannot mint unbounded series with made-up names.
    o.observer?.decided(spec ? spec.name : '_unknown', safetyClass, decision, req.source);
    const extra: Record<string, JsonValue> = {
      ...(undoOf ? { undo_of: undoOf } : {}),
      ...(facts.quorum.state === 'valid' ? { approvers: [...facts.quorum.approvers] } : {}),
      ...(facts.quorum.state === 'invalid' ? { quorum_error: facts.quorum.detail } : {}),
      ...(facts.token.state === 'invalid' ? { token_error: facts.token.detail } : {}),
    };
    if (!decision.allow) {
      unlessDiskFull(() => audit.append(entry(decision, req, callId, safetyClass, extra)));
      log.notice('tool.denied', { tool: req.tool, reason: decision.reason, source: req.source, call_id: callId });
      throw new AgentError('GATE_DENIED', `${req.tool}: ${decision.message}`, {
        details: { reason: decision.reason, call_id: callId, tool: req.tool },
      });
    }
    const spend = [
      ...(decision.consume?.jti
        ? [{ kind: 'jti' as const, value: decision.consume.jti, keepMs: DEFAULT_MAX_LIFETIME_S * 2000 }]
        : []),
      ...(decision.consume?.quorumNonce
        ? [
            {
              kind: 'quorum_nonce' as const,
              value: decision.consume.quorumNonce,
              keepMs: DEFAULT_MAX_QUORUM_TTL_MS * 2,
            },
          ]
        : []),
    ];
    const begun = unlessDiskFull(() =>
      agentStore.beginRun({ callId, tool: req.tool }, spend, () => {
        if (undoOf && !agentStore.markUndone(undoOf, callId)) {
          throw new AgentError('UNDO_ALREADY_DONE', `call ${undoOf} was already undone`, {
            details: { call_id: undoOf },
          });
        }
        audit.append(entry(decision, req, callId, safetyClass, extra));
      }),
    );
    if (!begun) {
      // Another call spent the same token or quorum between our look and our commit.
      const replay = {
        ...decision,
        allow: false,
        reason: 'TOKEN_REPLAYED' as const,
        message: 'token or quorum already used',
      };
      audit.append(entry(replay, req, callId, safetyClass, extra));
      throw new AgentError('GATE_DENIED', `${req.tool}: token or quorum token was already used`, {
        details: {
          reason: decision.consume?.jti ? 'TOKEN_REPLAYED' : 'QUORUM_REUSED',
          call_id: callId,
          tool: req.tool,
        },
      });
    }
    log.info('tool.allowed', {
      tool: req.tool,
      source: req.source,
      call_id: callId,
      actor: actorOf(decision.principal, req.source),
    });

    // Run it. Whatever happens, the run ends and the result is audited.
    try {
      const { result, durationMs } = await o.executor.run(runtime!, req.args, callId);
      let undo: { tool: string; args: Record<string, unknown> } | undefined;
      if (spec!.undo) {
        try {
          undo = planUndo(spec!, req.args, result);
        } catch (e) {
          log.warning('tool.undo_unplanned', { tool: req.tool, call_id: callId, err: e as Error });
        }
      }
      o.transaction(() => {
        agentStore.endRun(callId, true, undo);
        audit.append({
          kind: 'tool.result',
          actor: 'agent',
          subject: req.tool,
          decision: 'ok',
          reason: 'OK',
          details: {
            call_id: callId,
            duration_ms: Math.round(durationMs),
            ...(undo ? { undo: { tool: undo.tool, args: undo.args as { [k: string]: JsonValue } } } : {}),
          },
        });
      });
      o.observer?.finished(req.tool, true, durationMs, 'OK');
      return {
        call_id: callId,
        tool: req.tool,
        safety_class: spec!.safety_class,
        decision: { reason: decision.reason, principal: actorOf(decision.principal, req.source) },
        result,
        duration_ms: Math.round(durationMs),
        undoable: undo !== undefined,
        ...(undoOf ? { undo_of: undoOf } : {}),
      };
    } catch (e) {
      const code = isOutpostError(e) ? e.code : 'INTERNAL';
      o.transaction(() => {
        agentStore.endRun(callId, false, undefined);
        if (undoOf) agentStore.clearUndone(undoOf, callId);
        audit.append({
          kind: 'tool.result',
          actor: 'agent',
          subject: req.tool,
          decision: 'error',
          reason: code,
          details: { call_id: callId, message: e instanceof Error ? e.message.slice(0, 512) : String(e) },
        });
      });
      o.observer?.finished(req.tool, false, 0, code);
      log.warning('tool.failed', { tool: req.tool, call_id: callId, code });
      throw withCallId(e, callId);
    }
  }

  return {
    call: (req) => call(req),
    async undo(req) {
      const run = agentStore.findRun(req.callId);
      if (!run) throw new AgentError('CALL_NOT_FOUND', `no call ${req.callId} is known to this agent`);
      if (!run.ended) throw new AgentError('UNDO_UNAVAILABLE', `call ${req.callId} is still running`);
      if (run.undoneBy) {
        throw new AgentError('UNDO_ALREADY_DONE', `call ${req.callId} was already undone by ${run.undoneBy}`, {
          details: { undone_by: run.undoneBy },
        });
      }
      if (!run.undo) {
        throw new AgentError(
          'UNDO_UNAVAILABLE',
          run.ok ? `${run.tool} is not reversible` : `call ${req.callId} did not succeed, so there is nothing to undo`,
        );
      }
      return call(
        {
          tool: run.undo.tool,
          args: run.undo.args,
          source: req.source,
          ...(req.token ? { token: req.token } : {}),
          ...(req.quorum ? { quorum: req.quorum } : {}),
        },
        req.callId,
      );
    },
  };
}
