// One device (or gateway) session of the WSS hub, subprotocol aethermesh.v2 (envelope.md): the hello handshake
// over a fresh nonce, sequence numbers, heartbeats, manifest announcements held for approval, tool calls and their
// results, telemetry stored exactly once and acknowledged by range, token refresh. It talks to its peer only through
// a `Connection`, so any host that can carry text frames runs it. A bad peer hurts only its own session.

import { fromBase64Url, toBase64Url } from '../protocol/bytes.ts';
import { parseJson } from '../protocol/canonical-json.ts';
import {
  type BodyOf,
  decodeEnvelope,
  type Envelope,
  type EnvelopeOf,
  type EnvelopeType,
  encodeEnvelope,
  MessageId,
  newMessageId,
  type WireErrorCode,
} from '../protocol/envelope.ts';
import { isOutpostError } from '../protocol/errors.ts';
import { isDeviceId } from '../protocol/identifiers.ts';
import { type CapabilityManifest, decodeManifest, manifestHash } from '../protocol/manifest.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { constantTimeEqual } from './credentials.ts';
import { issueDeviceToken } from './enrollment.ts';
import { ControlPlaneError } from './errors.ts';
import { diffManifests } from './manifest-diff.ts';
import type { DeviceRecord, MachineRole, SessionHandle, ToolCallRequest, ToolResultBody } from './ports.ts';
import { CONTROL_PLANE_AUDIENCE } from './settings.ts';
import { prepareTelemetryBatch } from './telemetry-ingest.ts';

/** What the hub needs from the transport: text out, close, and how much is still queued to send. */
export interface Connection {
  send(text: string): void;
  /** Closes with a WebSocket close code (RFC 6455 §7.4) and a short reason. */
  close(code: number, reason: string): void;
  /** Bytes accepted by send() but not yet written; a peer that does not read is closed. */
  bufferedBytes(): number;
  /** Optional backpressure: stop and restart reading frames from the peer. */
  pause?(): void;
  resume?(): void;
}

/** The host feeds a connection's events here. */
export interface HubConnection {
  /** Queues a text frame; resolves when it has been processed (hosts may ignore the promise). */
  onText(text: string): Promise<void>;
  /** Binary frames are a protocol violation (envelope.md §2): the connection closes with 1003. */
  onBinary(): void;
  /** The transport closed (either side). */
  onClose(): void;
}

/** WebSocket close codes used by the hub (RFC 6455 §7.4.1). */
export const CLOSE = Object.freeze({
  goingAway: 1001,
  unsupportedData: 1003,
  policy: 1008,
  tryAgainLater: 1013,
});

/** A peer with more than this queued unread is dropped (it does not read, or reads too slowly). */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** Refusals audited one by one per session; beyond, only the count (at close). */
const AUDITED_REFUSALS = 10;
/** Above these, the host stops reading the peer's socket (TCP backpressure) until the queue drains to half. */
const PAUSE_QUEUED = 64;
const PAUSE_QUEUED_BYTES = 2 * 1024 * 1024;
/** Above these (a host without backpressure, or a peer outrunning it), new envelopes are dropped as RATE_LIMITED. */
const MAX_QUEUED = 1024;
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** A peer that made the session drop this many envelopes ignores both backpressure and RATE_LIMITED: closed. */
const MAX_DROPPED = 1024;

const CLOSING_CODES: ReadonlySet<WireErrorCode> = new Set([
  'HANDSHAKE_REQUIRED',
  'HANDSHAKE_FAILED',
  'HANDSHAKE_TIMEOUT',
  'UNAUTHENTICATED',
  'TOKEN_EXPIRED',
  'SEQ_VIOLATION',
  'SESSION_REPLACED',
  'SHUTTING_DOWN',
]);

/** Device-to-control-plane types; anything else from a device is refused (FORBIDDEN). */
const FROM_DEVICE: ReadonlySet<EnvelopeType> = new Set([
  'hello',
  'manifest.announce',
  'tool.result',
  'telemetry.batch',
  'token.refresh',
  'error',
  'ping',
  'pong',
  'lora.uplink',
  'lora.downlink.report',
  'lora.ack',
  'lora.health',
]);

interface PendingCall {
  resolve(result: ToolResultBody): void;
  reject(error: Error): void;
  cancelTimer(): void;
}

/** The envelope's id, when the text is JSON with a well-formed `id`, so a refusal can name it. */
function readableId(text: string, maxBytes: number): string | null {
  try {
    const v = parseJson(text, maxBytes) as { id?: unknown } | null;
    const id = v && typeof v === 'object' ? v.id : undefined;
    return MessageId.safeParse(id).success ? (id as string) : null;
  } catch {
    return null; // not JSON: nothing to name
  }
}

/**
 * Starts a session on a freshly upgraded connection for tenant `tid` (from the URL), sending hello.challenge at
 * once. `address` names the peer in logs and audit.
 */
export function acceptHubConnection(
  ctx: ControlPlaneContext,
  options: { tid: string; connection: Connection; address: string },
): HubConnection {
  const { tid, connection, address } = options;
  const { settings, clock, log, metrics, store, sessions, scheduler } = ctx;
  const limits = settings.limits;
  const nonce = ctx.random(32);
  let phase: 'challenge' | 'open' | 'closed' = 'challenge';
  let outSeq = 0;
  let expectedSeq = 0;
  const relayedSeq = new Map<string, number>();
  let device = '';
  /** The src of a decoded envelope before the handshake completed: where refusals are addressed. */
  let peerHint = '';
  let role: MachineRole = 'device';
  let peerName = '';
  let runningHash = '';
  let tokenExpMs = 0;
  let handle: SessionHandle | undefined;
  let lastReceivedMono = clock.monotonicMs();
  let lastSentMono = clock.monotonicMs();
  const pendingCalls = new Map<string, PendingCall>();
  const pendingPings = new Set<string>();
  let violations = 0;
  let auditedRefusals = 0;
  let refusals = 0;
  const sessionId = newMessageId();
  const connectedAtMs = clock.nowMs();
  let slog = log.child({ part: 'hub', session: sessionId, address });
  // Rate limit: a token bucket on the monotonic clock.
  let bucket = limits.envelopeBurst;
  let bucketAt = clock.monotonicMs();
  let dropped = 0;
  let queue: Promise<void> = Promise.resolve();
  let queued = 0;
  let queuedBytes = 0;
  let paused = false;
  let throttleNoticeSent = false;
  /** Resolvers of rate-limit waits, released at close so no promise is left hanging. */
  const waiting = new Set<() => void>();
  /** Cancellers of the session's pending timers; each removes itself when it fires. */
  const timers = new Set<() => void>();

  function later(ms: number, fn: () => void): void {
    const cancel = scheduler.after(ms, () => {
      timers.delete(cancel);
      fn();
    });
    timers.add(cancel);
  }

  /** Sends one control-plane envelope; returns its id ('' when it could not be sent). */
  function sendEnvelope<T extends EnvelopeType>(type: T, body: BodyOf<T>): string {
    if (phase === 'closed') return '';
    const to = type === 'hello.challenge' ? '*' : device || peerHint;
    // Before the peer has named itself there is no one to address an envelope to: the close code speaks.
    if (to === '') return '';
    const id = newMessageId();
    const env = {
      v: 2,
      id,
      tid,
      type,
      ts: Math.floor(clock.nowMs()),
      seq: outSeq++,
      src: settings.controlPlaneId,
      dst: to,
      body,
    } as unknown as Envelope;
    let text: string;
    try {
      text = encodeEnvelope(env);
    } catch (e) {
      slog.error('hub.encode_failed', { type, err: e as Error });
      return '';
    }
    connection.send(text);
    lastSentMono = clock.monotonicMs();
    if (connection.bufferedBytes() > MAX_BUFFERED_BYTES) {
      slog.warning('hub.slow_peer', { bufferedBytes: connection.bufferedBytes() });
      closeSession(CLOSE.policy, 'peer does not read');
    }
    return id;
  }

  function sendError(code: WireErrorCode, message: string, inReplyTo: string | null): void {
    sendEnvelope('error', { code, message: message.slice(0, 1024), inReplyTo });
    if (CLOSING_CODES.has(code)) {
      closeSession(code === 'SHUTTING_DOWN' ? CLOSE.goingAway : CLOSE.policy, code);
    }
  }

  function closeSession(code: number, reason: string): void {
    if (phase === 'closed') return;
    const wasOpen = phase === 'open';
    phase = 'closed';
    for (const cancel of [...timers]) cancel();
    timers.clear();
    for (const release of [...waiting]) release();
    for (const [, call] of pendingCalls) {
      call.cancelTimer();
      call.reject(new ControlPlaneError('SESSION_CLOSED', 'the device session closed during the call'));
    }
    pendingCalls.clear();
    if (handle) {
      sessions.unregister(handle);
      if (role === 'gateway' && sessions.get(device) === undefined) ctx.lora.gatewayGone(device);
    }
    try {
      connection.close(code, reason.slice(0, 120));
    } catch (e) {
      slog.debug('hub.close_failed', { err: e as Error });
    }
    if (wasOpen) {
      slog.info('session.closed', { code, reason, refusals });
      void audit(ctx, {
        kind: 'session.close',
        actor: device,
        subject: sessionId,
        decision: 'allow',
        reason: reason.replace(/[^A-Z0-9_]/gi, '_').slice(0, 64) || 'CLOSED',
        details: { code, refusals },
      }).catch(() => undefined);
    }
  }

  async function refuse(
    code: WireErrorCode,
    message: string,
    inReplyTo: string | null,
    details: Record<string, string> = {},
  ) {
    metrics.envelopesRefused.inc({ code });
    refusals++;
    slog.info('hub.refused', { code, message, ...details });
    if (auditedRefusals < AUDITED_REFUSALS) {
      auditedRefusals++;
      await audit(ctx, {
        kind: 'envelope',
        actor: device || `address:${address}`,
        subject: inReplyTo ?? 'unreadable',
        decision: 'deny',
        reason: code,
        details: { message: message.slice(0, 200), ...details },
      });
    }
    sendError(code, message, inReplyTo);
    if (!CLOSING_CODES.has(code) && ++violations > limits.maxViolations) {
      sendError('FORBIDDEN', 'too many refused envelopes', null);
      closeSession(CLOSE.policy, 'too many violations');
    }
  }

  /**
   * Takes one envelope's worth from the token bucket; when it is empty, resolves once the bucket refilled (the
   * session's queue waits, and with it the peer: its envelopes are delayed, never dropped while the queue is short).
   */
  function rateGate(): Promise<void> | undefined {
    const now = clock.monotonicMs();
    bucket = Math.min(limits.envelopeBurst, bucket + ((now - bucketAt) * limits.envelopesPerSecond) / 1000);
    bucketAt = now;
    if (bucket >= 1) {
      bucket -= 1;
      return undefined;
    }
    if (!throttleNoticeSent) {
      throttleNoticeSent = true;
      metrics.envelopesRefused.inc({ code: 'RATE_LIMITED' });
      sendEnvelope('error', {
        code: 'RATE_LIMITED',
        message: 'over the envelope rate: processing is delayed',
        inReplyTo: null,
      });
    }
    const waitMs = Math.max(1, Math.ceil(((1 - bucket) * 1000) / limits.envelopesPerSecond));
    return new Promise<void>((resolve) => {
      const release = () => {
        waiting.delete(release);
        resolve();
      };
      waiting.add(release);
      later(waitMs, release);
    }).then(() => (phase === 'closed' ? undefined : rateGate()));
  }

  // ------------------------------------------------------------------------------------------
  // Heartbeats and token expiry (envelope.md §5.5)

  function tick(): void {
    if (phase !== 'open') return;
    const now = clock.monotonicMs();
    if (now - lastReceivedMono >= 3 * settings.heartbeatMs) {
      slog.notice('session.timeout', { silentMs: Math.round(now - lastReceivedMono) });
      closeSession(CLOSE.goingAway, 'no traffic for three heartbeats');
      return;
    }
    if (clock.nowMs() >= tokenExpMs + 60_000) {
      sendError('TOKEN_EXPIRED', 'the session token expired; refresh it before expiry or reconnect', null);
      return;
    }
    if (now - lastSentMono >= settings.heartbeatMs) {
      pendingPings.add(sendEnvelope('ping', {}));
      if (pendingPings.size > 8) pendingPings.delete(pendingPings.values().next().value as string);
    }
    later(Math.max(500, Math.floor(settings.heartbeatMs / 2)), tick);
  }

  // ------------------------------------------------------------------------------------------
  // The handshake (envelope.md §5.1)

  async function onHello(env: EnvelopeOf<'hello'>): Promise<void> {
    const fail = async (code: WireErrorCode, why: string, message: string) => {
      await audit(ctx, {
        kind: 'session.hello',
        actor: env.src,
        subject: tid,
        decision: 'deny',
        reason: why,
        details: { address },
      });
      metrics.envelopesRefused.inc({ code });
      sendError(code, message, env.id);
    };
    if (env.seq !== 0) return fail('SEQ_VIOLATION', 'SEQ_VIOLATION', 'hello must have seq 0');
    if (env.dst !== settings.controlPlaneId)
      return fail('HANDSHAKE_FAILED', 'WRONG_DESTINATION', 'hello dst is not this control plane');
    if (!constantTimeEqual(fromBase64Url(env.body.challenge), nonce)) {
      return fail('HANDSHAKE_FAILED', 'CHALLENGE_MISMATCH', 'hello does not answer this connection’s challenge');
    }
    let claims: Awaited<ReturnType<typeof ctx.issuer.verify>>['claims'];
    try {
      ({ claims } = await ctx.issuer.verify(env.body.token, { audience: CONTROL_PLANE_AUDIENCE, tid }));
    } catch (e) {
      const code = isOutpostError(e) ? e.code : 'TOKEN_INVALID';
      if (code === 'TOKEN_EXPIRED')
        return fail('TOKEN_EXPIRED', code, 'token expired: get a fresh one (POST /v1/devices/token)');
      return fail('UNAUTHENTICATED', code, 'token refused');
    }
    if (claims.sub !== env.src || claims.dev !== env.src || (claims.role !== 'device' && claims.role !== 'gateway')) {
      return fail('HANDSHAKE_FAILED', 'TOKEN_SUBJECT', 'token is not this device’s session token');
    }
    const record = await store.getDevice(env.src);
    if (!record || record.tid !== tid || record.role !== claims.role) {
      return fail('HANDSHAKE_FAILED', 'DEVICE_UNKNOWN', 'device is not enrolled in this tenant');
    }
    if (record.status !== 'active') return fail('HANDSHAKE_FAILED', 'DEVICE_REVOKED', 'device is revoked');
    if (phase !== 'challenge') return; // the handshake timed out meanwhile
    if (sessions.count() >= limits.maxSessions && !sessions.get(env.src)) {
      metrics.envelopesRefused.inc({ code: 'RATE_LIMITED' });
      sendEnvelope('error', { code: 'RATE_LIMITED', message: 'the hub is full; retry later', inReplyTo: env.id });
      closeSession(CLOSE.tryAgainLater, 'hub full');
      return;
    }
    device = env.src;
    role = claims.role;
    peerName = record.name;
    runningHash = env.body.manifestHash;
    tokenExpMs = claims.exp * 1000;
    expectedSeq = 1;
    slog = slog.child({ device, name: record.name });
    const resumeFrom = env.body.resume.lastAckedSeq;
    const ackedThroughSeq = await store.telemetryResumePoint(device, resumeFrom);
    if (phase !== 'challenge') return;
    phase = 'open';
    handle = sessionHandle(record.name);
    const replaced = sessions.register(handle);
    if (replaced && replaced !== handle) replaced.close('SESSION_REPLACED', 'a newer session of this device took over');
    await store.touchDevice(device, clock.nowMs());
    sendEnvelope('hello.ack', { sessionId, heartbeatMs: settings.heartbeatMs, resume: { ackedThroughSeq } });
    const policy = await store.getPolicy(tid);
    if (policy) sendEnvelope('policy.update', { policy: policy.policy });
    if (role === 'gateway') await ctx.lora.gatewayOpened(device, tid);
    later(Math.max(500, Math.floor(settings.heartbeatMs / 2)), tick);
    slog.info('session.opened', { role, manifestHash: runningHash, ackedThroughSeq });
    await audit(ctx, {
      kind: 'session.open',
      actor: device,
      subject: sessionId,
      decision: 'allow',
      reason: 'OK',
      details: { tid, role, address, manifestHash: runningHash, jti: claims.jti },
    });
  }

  function sessionHandle(name: string): SessionHandle {
    return {
      sessionId,
      device,
      tid,
      role,
      connectedAtMs,
      manifestHash: () => runningHash,
      send: (type, body) => sendEnvelope(type, body as never),
      close: (code, message) => {
        sendEnvelope('error', { code, message, inReplyTo: null });
        closeSession(code === 'SHUTTING_DOWN' ? CLOSE.goingAway : CLOSE.policy, code);
      },
      callTool: (call) => callTool(call, name),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Tool calls (envelope.md §6.2)

  function callTool(call: ToolCallRequest, name: string): Promise<ToolResultBody> {
    if (phase !== 'open')
      return Promise.reject(new ControlPlaneError('SESSION_CLOSED', 'the device session is closed'));
    if (pendingCalls.size >= limits.maxCallsPerSession) {
      return Promise.reject(new ControlPlaneError('DEVICE_BUSY', `${name} has too many calls in flight`));
    }
    const callId = newMessageId();
    return new Promise<ToolResultBody>((resolve, reject) => {
      const waitMs = Math.max(1000, call.deadlineMs - clock.nowMs() + 5_000);
      const cancelTimer = scheduler.after(waitMs, () => {
        if (pendingCalls.delete(callId)) {
          reject(new ControlPlaneError('DEVICE_TIMEOUT', `${name} did not answer ${call.tool} in time`));
        }
      });
      pendingCalls.set(callId, { resolve, reject, cancelTimer });
      try {
        sendEnvelope('tool.call', {
          callId,
          tool: call.tool,
          args: call.args as Record<string, unknown>,
          token: call.token,
          ...(call.quorum ? { quorum: call.quorum } : {}),
          deadlineMs: call.deadlineMs,
        });
      } catch (e) {
        pendingCalls.delete(callId);
        cancelTimer();
        reject(e as Error);
      }
    });
  }

  // ------------------------------------------------------------------------------------------
  // Messages after the handshake

  async function onManifest(env: EnvelopeOf<'manifest.announce'>): Promise<void> {
    let manifest: CapabilityManifest;
    try {
      manifest = decodeManifest(env.body.manifest);
    } catch (e) {
      if (!isOutpostError(e)) throw e;
      return refuse('ENVELOPE_MALFORMED', `manifest refused: ${e.message}`, env.id, { manifestCode: e.code });
    }
    if (manifest.device.id !== device) {
      return refuse('ENVELOPE_WRONG_SOURCE', 'manifest device.id is not this device', env.id);
    }
    const hash = manifestHash(manifest);
    runningHash = hash;
    const record = await store.getDevice(device);
    if (!record) return;
    if (record.accepted?.hash === hash) {
      if (record.pending) await store.setPendingManifest(device, undefined);
      sendEnvelope('manifest.ack', { manifestHash: hash, status: 'accepted' });
      return;
    }
    if (record.pending?.hash !== hash) {
      await store.setPendingManifest(device, { hash, manifest, sinceMs: clock.nowMs() });
      const diff = diffManifests(record.accepted?.manifest, manifest);
      slog.notice('manifest.pending', { manifestHash: hash, ...diff.summary });
      await audit(ctx, {
        kind: 'manifest.change',
        actor: device,
        subject: hash,
        decision: 'hold',
        reason: diff.downgrades.length > 0 ? 'CLASS_DOWNGRADE' : 'PENDING_APPROVAL',
        details: { previous: record.accepted?.hash ?? null, ...diff.summary },
      });
    }
    sendEnvelope('manifest.ack', { manifestHash: hash, status: 'pending_approval' });
  }

  async function onTelemetry(env: EnvelopeOf<'telemetry.batch'>): Promise<void> {
    const own = device;
    const prepared = await prepareTelemetryBatch(
      { tid, device: own, role },
      env.body.units,
      (d) => store.getDevice(d),
      clock.nowMs(),
    );
    if (prepared.batch.units.length > 0) {
      const result = await store.ingestTelemetry(prepared.batch);
      metrics.telemetryRecords.inc({ outcome: 'stored' }, result.stored);
      metrics.telemetryRecords.inc({ outcome: 'duplicate' }, result.duplicates);
      if (prepared.misfits > 0) metrics.telemetryRecords.inc({ outcome: 'misfit' }, prepared.misfits);
      if (result.conflicts.length > 0) {
        metrics.telemetryRecords.inc({ outcome: 'conflict' }, result.conflicts.length);
        slog.warning('telemetry.conflict', { records: result.conflicts.length, first: result.conflicts[0]?.seq });
        await audit(ctx, {
          kind: 'telemetry.conflict',
          actor: own,
          subject: result.conflicts[0]!.device,
          decision: 'deny',
          reason: 'CONTENT_DIFFERS',
          details: { seqs: result.conflicts.slice(0, 32).map((c) => c.seq) },
        });
      }
    }
    if (phase !== 'open') return; // stored, but the connection is gone: the device resends and dedup holds
    if (prepared.ranges.length > 0) sendEnvelope('telemetry.ack', { ranges: prepared.ranges.slice(0, 256) });
    if (prepared.refused.length > 0) {
      const first = prepared.refused[0]!;
      await refuse(
        first.code,
        `${prepared.refused.length} unit(s) refused, first #${first.index}: ${first.reason}`,
        env.id,
      );
    }
  }

  async function onTokenRefresh(env: EnvelopeOf<'token.refresh'>): Promise<void> {
    try {
      const { claims } = await ctx.issuer.verify(env.body.token, { audience: CONTROL_PLANE_AUDIENCE, tid });
      if (claims.sub !== device) throw new ControlPlaneError('FORBIDDEN', 'not this session’s token');
    } catch (e) {
      const code = isOutpostError(e) ? e.code : 'TOKEN_INVALID';
      await audit(ctx, { kind: 'token.refresh', actor: device, subject: device, decision: 'deny', reason: code });
      metrics.envelopesRefused.inc({ code: 'UNAUTHENTICATED' });
      return sendError('UNAUTHENTICATED', `token refused (${code})`, env.id);
    }
    const record = await store.getDevice(device);
    if (record?.status !== 'active') return sendError('UNAUTHENTICATED', 'device is revoked', env.id);
    const issued = await issueDeviceToken(ctx, record as DeviceRecord);
    tokenExpMs = issued.claims.exp * 1000;
    sendEnvelope('token.refreshed', { token: issued.token, jwks: ctx.issuer.jwks() });
    await audit(ctx, {
      kind: 'token.refresh',
      actor: device,
      subject: device,
      decision: 'allow',
      reason: 'OK',
      details: { jti: issued.claims.jti },
    });
  }

  function checkSeq(env: Envelope): boolean {
    if (env.src === device) {
      if (env.seq !== expectedSeq) return false;
      expectedSeq++;
      return true;
    }
    const last = relayedSeq.get(env.src);
    if (last !== undefined && env.seq <= last) return false;
    relayedSeq.set(env.src, env.seq);
    if (relayedSeq.size > 4096) relayedSeq.delete(relayedSeq.keys().next().value as string);
    return true;
  }

  async function onEnvelope(env: Envelope): Promise<void> {
    // The sequence comes first: an envelope that decoded is counted whatever happens to it next.
    if (env.src !== device) {
      // Only a gateway relays, and only signed telemetry of its tenant's devices.
      if (role !== 'gateway' || env.type !== 'telemetry.batch' || !isDeviceId(env.src)) {
        return refuse('ENVELOPE_WRONG_SOURCE', 'src is not this session’s device', env.id);
      }
    }
    if (!checkSeq(env)) {
      metrics.envelopesRefused.inc({ code: 'SEQ_VIOLATION' });
      return sendError('SEQ_VIOLATION', `unexpected seq ${env.seq}`, env.id);
    }
    if (!FROM_DEVICE.has(env.type)) return refuse('FORBIDDEN', `devices do not send ${env.type}`, env.id);
    if (env.type === 'hello') return refuse('FORBIDDEN', 'the session is already open', env.id);
    if (env.dst !== settings.controlPlaneId) {
      return refuse('FORBIDDEN', 'envelopes on this session go to this control plane only', env.id, { dst: env.dst });
    }
    metrics.envelopesIn.inc({ type: env.type });
    switch (env.type) {
      case 'manifest.announce':
        return onManifest(env);
      case 'telemetry.batch':
        return onTelemetry(env);
      case 'tool.result': {
        const call = pendingCalls.get(env.body.callId);
        if (!call) return refuse('UNKNOWN_CALL', 'no call with this callId is outstanding', env.id);
        pendingCalls.delete(env.body.callId);
        call.cancelTimer();
        call.resolve(env.body);
        return;
      }
      case 'token.refresh':
        return onTokenRefresh(env);
      case 'ping':
        sendEnvelope('pong', { inReplyTo: env.id });
        return;
      case 'pong':
        if (!pendingPings.delete(env.body.inReplyTo)) return refuse('UNKNOWN_CALL', 'no ping with this id', env.id);
        return;
      case 'lora.uplink':
      case 'lora.downlink.report': {
        if (role !== 'gateway') return refuse('FORBIDDEN', `only gateways send ${env.type}`, env.id);
        if (env.type === 'lora.uplink') await ctx.lora.onUplink(device, tid, env.body);
        else ctx.lora.onReport(device, env.body);
        // Acknowledged only once every frame is durable: the gateway deletes what this names.
        sendEnvelope('lora.ack', { inReplyTo: env.id });
        return;
      }
      case 'lora.health':
        // Kept in memory only, never acknowledged: the next report replaces it (lora-relay.md §6a).
        if (role !== 'gateway') return refuse('FORBIDDEN', 'only gateways send lora.health', env.id);
        ctx.lora.onHealth(device, peerName, env.body);
        return;
      case 'lora.ack':
        // The gateway holds a lora.downlink durably: delivery itself is what the device answers (lora-relay.md §5).
        if (role !== 'gateway') return refuse('FORBIDDEN', 'only gateways send lora.ack', env.id);
        return;
      case 'error':
        slog.info('hub.peer_error', { code: env.body.code, message: env.body.message, inReplyTo: env.body.inReplyTo });
        return;
      default:
        return refuse('FORBIDDEN', `devices do not send ${env.type}`, env.id);
    }
  }

  async function process(text: string): Promise<void> {
    if (phase === 'closed') return;
    let env: Envelope;
    try {
      env = decodeEnvelope(text, { maxBytes: limits.maxEnvelopeBytes, tid });
    } catch (e) {
      if (!isOutpostError(e)) throw e;
      const code = (e.code.startsWith('ENVELOPE_') ? e.code : 'ENVELOPE_MALFORMED') as WireErrorCode;
      if (phase === 'challenge') {
        await refuse(code, e.message, readableId(text, limits.maxEnvelopeBytes));
        return sendError('HANDSHAKE_FAILED', 'the first envelope must be a valid hello', null);
      }
      return refuse(code, e.message, readableId(text, limits.maxEnvelopeBytes));
    }
    if (phase === 'challenge') {
      peerHint = env.src;
      if (env.type !== 'hello') {
        metrics.envelopesRefused.inc({ code: 'HANDSHAKE_REQUIRED' });
        return sendError('HANDSHAKE_REQUIRED', 'send hello first', env.id);
      }
      return onHello(env);
    }
    return onEnvelope(env);
  }

  // The challenge goes out at once; the peer has handshakeTimeoutMs to answer it.
  sendEnvelope('hello.challenge', { nonce: toBase64Url(nonce) });
  later(settings.handshakeTimeoutMs, () => {
    if (phase === 'challenge') {
      metrics.envelopesRefused.inc({ code: 'HANDSHAKE_TIMEOUT' });
      sendError('HANDSHAKE_TIMEOUT', 'no hello in time', null);
    }
  });

  return {
    onText(text) {
      if (phase === 'closed') return Promise.resolve();
      lastReceivedMono = clock.monotonicMs();
      if (queued >= MAX_QUEUED || queuedBytes + text.length > MAX_QUEUED_BYTES) {
        metrics.envelopesRefused.inc({ code: 'RATE_LIMITED' });
        if (++dropped % 50 === 1)
          sendEnvelope('error', { code: 'RATE_LIMITED', message: 'slow down', inReplyTo: null });
        if (dropped > MAX_DROPPED) {
          sendError('FORBIDDEN', 'rate limit exceeded persistently', null);
          closeSession(CLOSE.policy, 'rate limit');
        }
        return Promise.resolve();
      }
      queued++;
      queuedBytes += text.length;
      if (!paused && connection.pause && (queued > PAUSE_QUEUED || queuedBytes > PAUSE_QUEUED_BYTES)) {
        paused = true;
        connection.pause();
      }
      queue = queue
        .then(async () => {
          const wait = rateGate();
          if (wait) await wait;
          await process(text);
        })
        .catch((e) => {
          slog.error('hub.internal', { err: e as Error });
          if (phase !== 'closed')
            sendEnvelope('error', { code: 'INTERNAL', message: 'internal error', inReplyTo: null });
        })
        .finally(() => {
          queued--;
          queuedBytes -= text.length;
          if (paused && queued <= PAUSE_QUEUED / 2 && queuedBytes <= PAUSE_QUEUED_BYTES / 2) {
            paused = false;
            throttleNoticeSent = false;
            connection.resume?.();
          }
        });
      return queue;
    },
    onBinary() {
      metrics.envelopesRefused.inc({ code: 'ENVELOPE_MALFORMED' });
      closeSession(CLOSE.unsupportedData, 'binary frames are not envelopes');
    },
    onClose() {
      closeSession(CLOSE.goingAway, 'connection closed');
    },
  };
}
