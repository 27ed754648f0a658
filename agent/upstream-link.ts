// The agent's WSS link to its control plane (aethermesh.v2, docs/protocol/envelope.md): reconnects with jittered
// exponential backoff, heartbeats both ways, re-announces the manifest and lets the pump resend whatever is not
// acknowledged on every reconnect, refreshes its token before expiry (over the link, or by proving its key after an
// outage), writes the trust files the gate reads, and passes incoming tool calls to the agent's own safety gate.
// It implements the Uplink seam; its state is computed from facts (link-state.ts).

import { WebSocket } from 'ws';
import { parseJson } from '../protocol/canonical-json.ts';
import type { Clock } from '../protocol/clock.ts';
import {
  type BodyOf,
  DEFAULT_MAX_ENVELOPE_BYTES,
  decodeEnvelope,
  type Envelope,
  type EnvelopeType,
  encodeEnvelope,
  MAX_BATCH_UNITS,
  newMessageId,
  signEnvelope,
  WSS_SUBPROTOCOL,
} from '../protocol/envelope.ts';
import { isOutpostError } from '../protocol/errors.ts';
import type { Logger } from '../protocol/log.ts';
import type { MetricsRegistry } from '../protocol/metrics.ts';
import { parseTelemetryUnit } from '../protocol/telemetry.ts';
import type { Lease, OutboxItem, SeqRange } from '../store/outbox.ts';
import {
  type Enrollment,
  readEnrollment,
  readToken,
  requestDeviceToken,
  type StoredToken,
  tokenTimes,
  writeEnrollment,
  writeJwks,
  writeToken,
} from './enrollment.ts';
import { type BackoffPolicy, backoffDelayMs, DEFAULT_BACKOFF, nextAttempt } from './link-backoff.ts';
import { LinkError } from './link-errors.ts';
import { computeLinkState, isConnected, type LinkState, tokenRefreshAtMs } from './link-state.ts';
import { applyPolicyUpdate } from './trust-updates.ts';
import type { Uplink, UplinkBinding, UplinkState } from './uplink.ts';

export type { UplinkBinding };

export interface LinkDetail {
  readonly state: LinkState;
  readonly url: string | null;
  readonly tenant: string | null;
  readonly connectedSinceMs: number | null;
  readonly lastReceivedAgoMs: number | null;
  readonly reconnects: number;
  readonly tokenExpiresAtMs: number | null;
  readonly lastError: string | null;
}

export interface UpstreamLinkOptions {
  readonly stateDir: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: MetricsRegistry;
  /** Interval of application pings (default 60 s) and how long a ping may go unanswered (default 30 s). */
  readonly heartbeatMs?: number;
  readonly timeoutMs?: number;
  readonly backoff?: BackoffPolicy;
  /** How often an audit checkpoint is sent for anchoring while online (default 1 h; also after every handshake). */
  readonly anchorIntervalMs?: number;
  /** How long a telemetry batch waits for its acknowledgement before the pump retries (default 30 s). */
  readonly ackTimeoutMs?: number;
  readonly maxPayloadBytes?: number;
  readonly random?: () => number;
  readonly fetch?: typeof fetch;
}

export interface UpstreamLink extends Uplink {
  /** Gives the link what it needs from the running agent; call before start(). */
  bind(binding: UplinkBinding): void;
  linkState(): LinkState;
  detail(): LinkDetail & Readonly<Record<string, unknown>>;
}

interface PendingUnit {
  readonly item: OutboxItem;
  readonly device: string;
  readonly from: number;
  readonly to: number;
  acked: boolean;
}

interface PendingBatch {
  readonly units: PendingUnit[];
  done(): void;
}

/** Largest telemetry.batch the link builds, in bytes of units (envelopes stay well under the 1 MiB default). */
const MAX_BATCH_BYTES = 512 * 1024;
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

export function createUpstreamLink(o: UpstreamLinkOptions): UpstreamLink {
  const { clock, stateDir } = o;
  const log = o.log.child({ part: 'link' });
  const heartbeatMs = o.heartbeatMs ?? 60_000;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const policy = o.backoff ?? DEFAULT_BACKOFF;
  const ackTimeoutMs = o.ackTimeoutMs ?? 30_000;
  const anchorIntervalMs = o.anchorIntervalMs ?? 3_600_000;
  const random = o.random ?? Math.random;
  const maxPayload = o.maxPayloadBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;

  let binding: UplinkBinding | undefined;
  let enrollment: Enrollment | undefined;
  let token: StoredToken | undefined;
  let stopped = true;
  let ws: WebSocket | undefined;
  let socketOpen = false;
  let handshakeDone = false;
  let needsToken = false;
  let cpId = '';
  /** Control plane clock minus ours, from the last handshake: token times are the control plane's. */
  let serverOffsetMs = 0;
  let outSeq = 0;
  let attempt = 0;
  let reconnects = 0;
  let connectedAtMono: number | undefined;
  let lastReceivedMono = 0;
  let lastError: string | null = null;
  let backingOff = false;
  let current: LinkState = 'stopped';
  let timers: NodeJS.Timeout[] = [];
  let reconnectTimer: NodeJS.Timeout | undefined;
  const listeners = new Set<(s: UplinkState) => void>();
  const batches = new Map<string, PendingBatch>();

  const gauge = o.metrics?.gauge('outpost_link_state', 'The upstream link state (1 for the current one)', ['state']);
  const reconnectCounter = o.metrics?.counter(
    'outpost_link_reconnects_total',
    'Connections opened to the control plane',
  );
  const ackedCounter = o.metrics?.counter('outpost_link_units_acked_total', 'Telemetry units acknowledged upstream');

  const serverNow = () => clock.nowMs() + serverOffsetMs;

  function facts() {
    return {
      enrolled: enrollment !== undefined,
      revoked: enrollment?.revokedAtMs !== undefined,
      stopped,
      tokenExpiresAtMs: token?.expiresAtMs ?? null,
      nowMs: serverNow(),
      socketOpen,
      handshakeDone,
      silentForMs: socketOpen ? clock.monotonicMs() - lastReceivedMono : null,
      heartbeatMs,
      timeoutMs,
      backingOff,
    };
  }

  function update(): void {
    const next = computeLinkState(facts());
    if (next === current) return;
    const wasConnected = isConnected(current);
    const previous = current;
    current = next;
    if (gauge) for (const s of [previous, next]) gauge.set({ state: s }, s === next ? 1 : 0);
    const fields = { state: next, previous, ...(lastError ? { lastError } : {}) };
    if (next === 'online' || next === 'connecting' || next === 'handshaking' || next === 'stopped')
      log.info('link.state', fields);
    else log.notice('link.state', fields);
    if (wasConnected !== isConnected(next)) {
      for (const l of listeners) l(isConnected(next) ? 'connected' : 'disconnected');
    }
  }

  function after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      timers = timers.filter((x) => x !== t);
      fn();
    }, ms);
    timers.push(t);
  }

  function clearTimers(): void {
    for (const t of timers) clearTimeout(t);
    timers = [];
  }

  function send<T extends EnvelopeType>(type: T, body: BodyOf<T>): Envelope | undefined {
    if (!ws || ws.readyState !== WebSocket.OPEN || !binding || !enrollment) return undefined;
    const env = signEnvelope(
      {
        v: 2,
        id: newMessageId(),
        tid: enrollment.tid,
        type,
        ts: Math.max(0, Math.floor(clock.nowMs())),
        seq: outSeq++,
        src: binding.identity.did,
        dst: cpId,
        body,
      } as never,
      binding.identity.seed,
    ) as Envelope;
    ws.send(encodeEnvelope(env));
    return env;
  }

  function scheduleHeartbeat(): void {
    after(heartbeatMs, () => {
      if (!handshakeDone || !ws) return;
      const pingedAt = clock.monotonicMs();
      send('ping', {});
      after(timeoutMs, () => {
        // Nothing at all since the ping: the connection is half-open (or the peer is gone). Drop it.
        if (ws && handshakeDone && lastReceivedMono < pingedAt) {
          lastError = 'HEARTBEAT_TIMEOUT';
          log.notice('link.heartbeat_timeout', { silentMs: Math.round(clock.monotonicMs() - lastReceivedMono) });
          ws.terminate();
        }
      });
      scheduleHeartbeat();
    });
  }

  function scheduleRefresh(): void {
    if (!token) return;
    const times = tokenTimes(token.token);
    const at = tokenRefreshAtMs(times?.issuedAtMs ?? token.issuedAtMs, token.expiresAtMs);
    after(Math.max(0, Math.min(at - serverNow(), 2_147_000_000)), () => {
      if (handshakeDone && token) send('token.refresh', { token: token.token });
    });
  }

  /** Sends a fresh audit checkpoint to be anchored (best effort: a failure is logged and retried next time). */
  async function anchorAudit(): Promise<void> {
    const checkpoint = binding?.auditCheckpoint?.();
    if (!checkpoint || !enrollment || !token) return;
    try {
      const res = await (o.fetch ?? fetch)(`${enrollment.url}/v1/devices/audit-checkpoint`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
        body: JSON.stringify({
          checkpoint: { body: checkpoint.body, signature: Buffer.from(checkpoint.signature).toString('base64url') },
        }),
        signal: AbortSignal.timeout(30_000),
      });
      const answer = (await res.json().catch(() => ({}))) as {
        headSeq?: number;
        error?: { code?: string; message?: string };
      };
      if (res.ok) log.info('link.audit_anchored', { headSeq: answer.headSeq });
      else if (answer.error?.code === 'ANCHOR_CONFLICT') {
        // The control plane holds another history for this device: that is evidence, not a transient failure.
        log.crit('link.audit_anchor_conflict', { message: answer.error.message });
      } else log.warning('link.audit_anchor_failed', { status: res.status, code: answer.error?.code });
    } catch (e) {
      log.warning('link.audit_anchor_failed', { err: e as Error });
    }
  }

  function scheduleAnchor(): void {
    after(anchorIntervalMs, () => {
      if (!handshakeDone) return;
      void anchorAudit();
      scheduleAnchor();
    });
  }

  function saveToken(text: string, expiresAtMs: number): void {
    const times = tokenTimes(text);
    token = { token: text, expiresAtMs, issuedAtMs: times?.issuedAtMs ?? serverNow() };
    writeToken(stateDir, token);
  }

  async function onToolCall(env: Extract<Envelope, { type: 'tool.call' }>): Promise<void> {
    const started = clock.monotonicMs();
    const body = env.body;
    const reply = (result: BodyOf<'tool.result'>) => send('tool.result', result);
    if (!binding) {
      reply({
        callId: body.callId,
        ok: false,
        error: { code: 'NOT_READY', message: 'the agent is starting' },
        durationMs: 0,
      });
      return;
    }
    if (serverNow() > body.deadlineMs) {
      reply({
        callId: body.callId,
        ok: false,
        error: { code: 'DEADLINE_EXCEEDED', message: 'the call arrived after its deadline' },
        durationMs: 0,
      });
      return;
    }
    try {
      const r = await binding.callTool({
        tool: body.tool,
        args: body.args,
        token: body.token,
        ...(body.quorum ? { quorum: body.quorum } : {}),
      });
      reply({
        callId: body.callId,
        ok: true,
        result: r.result ?? null,
        durationMs: Math.round(clock.monotonicMs() - started),
      });
    } catch (e) {
      const reason = isOutpostError(e) && typeof e.details.reason === 'string' ? e.details.reason : undefined;
      const code = reason ?? (isOutpostError(e) ? e.code : 'INTERNAL');
      reply({
        callId: body.callId,
        ok: false,
        error: {
          code: ERROR_CODE.test(code) ? code : 'INTERNAL',
          message: (isOutpostError(e) ? e.message : 'internal error').slice(0, 1024),
        },
        durationMs: Math.round(clock.monotonicMs() - started),
      });
      if (!isOutpostError(e)) log.error('link.tool_call_failed', { tool: body.tool, err: e as Error });
    }
  }

  function onAck(ranges: BodyOf<'telemetry.ack'>['ranges']): void {
    for (const [id, batch] of batches) {
      for (const u of batch.units) {
        if (!u.acked && ranges.some((r) => r.device === u.device && r.fromSeq <= u.from && u.to <= r.toSeq))
          u.acked = true;
      }
      if (batch.units.every((u) => u.acked)) {
        batches.delete(id);
        batch.done();
      }
    }
  }

  function onMessage(text: string): void {
    lastReceivedMono = clock.monotonicMs();
    let env: Envelope;
    try {
      env = decodeEnvelope(text, { maxBytes: maxPayload, ...(enrollment ? { tid: enrollment.tid } : {}) });
    } catch (e) {
      log.warning('link.bad_envelope', { code: isOutpostError(e) ? e.code : 'INTERNAL' });
      return;
    }
    switch (env.type) {
      case 'hello.challenge': {
        if (!binding || !enrollment || !token) return;
        cpId = env.src;
        serverOffsetMs = env.ts - clock.nowMs();
        send('hello', {
          token: token.token,
          device: binding.identity.did,
          agentVersion: binding.manifest.device.agentVersion,
          manifestHash: binding.manifestHash,
          resume: { lastAckedSeq: null },
          challenge: env.body.nonce,
        });
        return;
      }
      case 'hello.ack': {
        handshakeDone = true;
        connectedAtMono = clock.monotonicMs();
        serverOffsetMs = env.ts - clock.nowMs();
        lastError = null;
        reconnects++;
        reconnectCounter?.inc();
        // Always announce: the control plane compares hashes and holds a changed manifest for an operator.
        if (binding) send('manifest.announce', { manifest: binding.manifest, manifestHash: binding.manifestHash });
        log.info('link.session', { session: env.body.sessionId, ackedThroughSeq: env.body.resume.ackedThroughSeq });
        scheduleHeartbeat();
        scheduleRefresh();
        scheduleAnchor();
        void anchorAudit();
        update();
        return;
      }
      case 'manifest.ack':
        if (env.body.status === 'pending_approval') {
          log.notice('link.manifest_pending', {
            hash: env.body.manifestHash,
            hint: 'an operator must accept the new capabilities',
          });
        } else log.info('link.manifest_accepted', { hash: env.body.manifestHash });
        return;
      case 'tool.call':
        void onToolCall(env);
        return;
      case 'telemetry.ack':
        onAck(env.body.ranges);
        return;
      case 'token.refreshed':
        saveToken(env.body.token, (tokenTimes(env.body.token)?.expiresAtMs ?? serverNow()) as number);
        if (env.body.jwks) writeJwks(stateDir, env.body.jwks);
        log.info('link.token_refreshed', { expiresAtMs: token?.expiresAtMs });
        scheduleRefresh();
        return;
      case 'policy.update': {
        // The session proves the control plane sent it, not that the approvers agreed (quorum.md §2.3).
        const r = applyPolicyUpdate(stateDir, env.body.policy, env.tid);
        if (r.installed) log.info('link.policy', { policy: r.summary });
        else {
          log.warning('link.policy_refused', { code: r.code, message: r.message });
          send('error', {
            code: 'FORBIDDEN',
            message: `policy update refused (${r.code}): the installed policy stays`,
            inReplyTo: env.id,
          });
        }
        return;
      }
      case 'revoke':
        if (env.body.kind === 'device' && binding && env.body.device === binding.identity.did && enrollment) {
          enrollment = { ...enrollment, revokedAtMs: Math.max(0, Math.floor(clock.nowMs())) };
          writeEnrollment(stateDir, enrollment);
          log.crit('link.revoked', {
            device: env.body.device,
            hint: 'this device was revoked; re-enroll with a new key',
          });
          update();
        } else {
          log.notice('link.revoke', { kind: env.body.kind });
        }
        return;
      case 'error': {
        lastError = env.body.code;
        const batch = env.body.inReplyTo ? batches.get(env.body.inReplyTo) : undefined;
        if (batch) {
          batches.delete(env.body.inReplyTo!);
          batch.done();
        }
        if (['TOKEN_EXPIRED', 'UNAUTHENTICATED', 'HANDSHAKE_FAILED'].includes(env.body.code)) needsToken = true;
        log.notice('link.peer_error', { code: env.body.code, message: env.body.message });
        return;
      }
      case 'ping':
        send('pong', { inReplyTo: env.id });
        return;
      case 'pong':
        return; // receiving anything already proves the link is alive
      default:
        log.warning('link.unexpected', { type: env.type });
    }
  }

  function onDown(reason: string): void {
    if (!ws) return;
    ws = undefined;
    const sessionMs = connectedAtMono !== undefined ? clock.monotonicMs() - connectedAtMono : null;
    socketOpen = false;
    handshakeDone = false;
    connectedAtMono = undefined;
    clearTimers();
    for (const [, b] of batches) b.done();
    batches.clear();
    log.info('link.closed', { reason, sessionMs: sessionMs === null ? null : Math.round(sessionMs) });
    attempt = nextAttempt(attempt, sessionMs, policy);
    scheduleReconnect(backoffDelayMs(attempt - 1, policy, random()));
  }

  function scheduleReconnect(delayMs: number): void {
    if (stopped || enrollment?.revokedAtMs !== undefined) {
      update();
      return;
    }
    backingOff = true;
    update();
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => {
      backingOff = false;
      void connect();
    }, delayMs);
  }

  async function connect(): Promise<void> {
    if (stopped || ws) return;
    enrollment = readEnrollment(stateDir);
    if (!enrollment || enrollment.revokedAtMs !== undefined) {
      update();
      return;
    }
    token = token ?? readToken(stateDir);
    const expired = !token || serverNow() >= token.expiresAtMs - 30_000;
    if ((needsToken || expired) && binding) {
      try {
        const fresh = await requestDeviceToken({
          url: enrollment.url,
          identity: binding.identity,
          ...(o.fetch ? { fetch: o.fetch } : {}),
        });
        saveToken(fresh.token, fresh.expiresAtMs);
        writeJwks(stateDir, fresh.jwks);
        needsToken = false;
        log.info('link.token_renewed', { via: 'challenge' });
      } catch (e) {
        lastError = isOutpostError(e) ? e.code : 'INTERNAL';
        if (isOutpostError(e, 'DEVICE_REVOKED')) {
          enrollment = { ...enrollment, revokedAtMs: Math.max(0, Math.floor(clock.nowMs())) };
          writeEnrollment(stateDir, enrollment);
          log.crit('link.revoked', { hint: 'the control plane refuses this device; re-enroll with a new key' });
          update();
          return;
        }
        log.notice('link.token_request_failed', { code: lastError });
        attempt = nextAttempt(attempt, null, policy);
        scheduleReconnect(backoffDelayMs(attempt - 1, policy, random()));
        return;
      }
      if (stopped) return;
    }
    outSeq = 0;
    cpId = enrollment.controlPlaneId;
    const socket = new WebSocket(enrollment.wssUrl, [WSS_SUBPROTOCOL], {
      maxPayload: maxPayload,
      handshakeTimeout: timeoutMs,
    });
    ws = socket;
    update();
    socket.on('open', () => {
      if (ws !== socket) return;
      socketOpen = true;
      lastReceivedMono = clock.monotonicMs();
      update();
      // The hello must be acknowledged within the timeout, or the attempt is abandoned.
      after(timeoutMs, () => {
        if (ws === socket && !handshakeDone) {
          lastError = lastError ?? 'HANDSHAKE_TIMEOUT';
          socket.terminate();
        }
      });
    });
    socket.on('message', (data, isBinary) => {
      if (ws !== socket || isBinary) return;
      onMessage(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
    });
    socket.on('close', (code) => {
      if (ws === socket) onDown(`closed ${code}`);
    });
    socket.on('error', (e) => {
      lastError = lastError ?? 'UNREACHABLE';
      log.debug('link.socket_error', { err: e });
      if (ws === socket) {
        socket.terminate();
        onDown('error');
      }
    });
  }

  return {
    name: 'wss',
    state: () => (isConnected(current) ? 'connected' : 'disconnected'),
    onStateChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    bind(b) {
      binding = b;
    },
    linkState: () => {
      update();
      return current;
    },
    detail: () => {
      update();
      return {
        state: current,
        url: enrollment?.url ?? null,
        tenant: enrollment?.tid ?? null,
        connectedSinceMs:
          connectedAtMono !== undefined ? Math.round(clock.nowMs() - (clock.monotonicMs() - connectedAtMono)) : null,
        lastReceivedAgoMs: socketOpen ? Math.round(clock.monotonicMs() - lastReceivedMono) : null,
        reconnects: Math.max(0, reconnects - 1),
        tokenExpiresAtMs: token?.expiresAtMs ?? null,
        lastError,
      };
    },
    async deliver(lease: Lease): Promise<readonly SeqRange[]> {
      if (!handshakeDone || !ws) throw new LinkError('LINK_DOWN', 'the link is not connected');
      const units: PendingUnit[] = [];
      const undecodable: OutboxItem[] = [];
      const parsed: { unit: ReturnType<typeof parseTelemetryUnit>; bytes: number; pending: PendingUnit }[] = [];
      for (const item of lease.items) {
        try {
          const text = Buffer.from(item.payload).toString('utf8');
          const unit = parseTelemetryUnit(parseJson(text, 128 * 1024));
          const first = unit.records[0]!.seq;
          const pending: PendingUnit = {
            item,
            device: unit.device,
            from: first,
            to: first + unit.records.length - 1,
            acked: false,
          };
          units.push(pending);
          parsed.push({ unit, bytes: text.length, pending });
        } catch (e) {
          // A unit that cannot be read can never be delivered: acknowledge it locally, loudly, rather than loop.
          log.error('link.undecodable_unit', {
            stream: item.stream,
            seq: item.seq,
            code: isOutpostError(e) ? e.code : 'INTERNAL',
          });
          undecodable.push(item);
        }
      }
      const waits: Promise<void>[] = [];
      for (let i = 0; i < parsed.length; ) {
        const chunk: typeof parsed = [];
        let bytes = 0;
        while (
          i < parsed.length &&
          chunk.length < MAX_BATCH_UNITS &&
          (chunk.length === 0 || bytes + parsed[i]!.bytes <= MAX_BATCH_BYTES)
        ) {
          bytes += parsed[i]!.bytes;
          chunk.push(parsed[i]!);
          i++;
        }
        const env = send('telemetry.batch', { units: chunk.map((c) => c.unit) });
        if (!env) throw new LinkError('LINK_DOWN', 'the link went down while sending');
        waits.push(
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              batches.delete(env.id);
              resolve();
            }, ackTimeoutMs);
            batches.set(env.id, {
              units: chunk.map((c) => c.pending),
              done: () => {
                clearTimeout(timer);
                resolve();
              },
            });
          }),
        );
      }
      await Promise.all(waits);
      const acked = units.filter((u) => u.acked);
      ackedCounter?.inc({}, acked.length);
      return [...acked.map((u) => u.item), ...undecodable].map((it) => ({
        stream: it.stream,
        from: it.seq,
        to: it.seq,
      }));
    },
    async start() {
      stopped = false;
      enrollment = readEnrollment(stateDir);
      token = readToken(stateDir);
      if (!enrollment) log.notice('link.not_enrolled', { hint: 'run `outpost enroll --url URL --token-file FILE`' });
      update();
      void connect();
    },
    async stop() {
      stopped = true;
      clearTimeout(reconnectTimer);
      clearTimers();
      const socket = ws;
      ws = undefined;
      socketOpen = false;
      handshakeDone = false;
      for (const [, b] of batches) b.done();
      batches.clear();
      if (socket) {
        await new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.close(1001, 'agent stopping');
          setTimeout(() => {
            socket.terminate();
            resolve();
          }, 1000).unref();
        });
      }
      update();
    },
  };
}
