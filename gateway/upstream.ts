// One WebSocket session with the control plane (envelope.md): handshake as a did:key peer with a runtime token
// of role `gateway`, signed envelopes out, strictly decoded envelopes in, pings answered. The session does not
// reconnect by itself: the gateway decides when to dial from its link state, and with what backoff.

import WebSocket from 'ws';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  decodeEnvelope,
  type Envelope,
  type EnvelopeOf,
  type EnvelopeType,
  encodeEnvelope,
  newMessageId,
  signEnvelope,
  type UnsignedEnvelope,
  WSS_SUBPROTOCOL,
} from '../protocol/envelope.ts';
import { isOutpostError } from '../protocol/errors.ts';
import type { Logger } from '../protocol/log.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { GatewayError } from './errors.ts';
import type { Timers } from './time.ts';

export interface UpstreamSessionOptions {
  /** wss://… (ws:// only on loopback, for tests and development). */
  readonly url: string;
  readonly tid: string;
  readonly token: string;
  /** The gateway's Ed25519 identity seed. */
  readonly seed: Uint8Array;
  readonly agentVersion: string;
  readonly manifestHash: string;
  readonly timers: Timers;
  readonly wallMs: () => number;
  readonly log: Logger;
  /** PEM of the CA that signs the control plane's certificate (default: the system's). */
  readonly ca?: string | Buffer;
  readonly maxEnvelopeBytes?: number;
  /** Called for every envelope after hello.ack (pings are answered here first). */
  readonly onEnvelope: (envelope: Envelope) => void;
  readonly onEstablished: (info: { heartbeatMs: number; sessionId: string; controlPlane: string }) => void;
  readonly onClosed: (info: { code: number; reason: string; error?: GatewayError }) => void;
}

export interface UpstreamFacts {
  readonly socketOpen: boolean;
  readonly sessionEstablished: boolean;
  readonly receiveSilenceMs: number | null;
  readonly sendSilenceMs: number | null;
  readonly heartbeatMs: number | null;
}

/** Types the gateway sends. */
export type OutboundType =
  | 'lora.uplink'
  | 'lora.ack'
  | 'lora.downlink.report'
  | 'lora.health'
  | 'manifest.announce'
  | 'token.refresh'
  | 'tool.result'
  | 'ping'
  | 'pong'
  | 'error';

export interface UpstreamSession {
  facts(): UpstreamFacts;
  /** Sends a signed envelope; returns its id. Throws UPSTREAM_CLOSED when the session is not established. */
  send<T extends OutboundType>(type: T, body: EnvelopeOf<T>['body']): string;
  /** Bytes queued in the socket, not yet written (for flow control). */
  bufferedBytes(): number;
  close(code?: number, reason?: string): void;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
}

export function openUpstreamSession(o: UpstreamSessionOptions): UpstreamSession {
  const did = didKeyFromEd25519(ed25519KeyPair(o.seed).publicKey);
  const log = o.log.child({ upstream: o.url });
  const maxBytes = o.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
  let open = false;
  let established = false;
  let cpId: string | undefined;
  let heartbeatMs: number | null = null;
  let sendSeq = 0;
  let recvSeq = -1;
  let lastRx = o.timers.nowMs();
  let lastTx = o.timers.nowMs();
  let done = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });

  const ws = new WebSocket(o.url, [WSS_SUBPROTOCOL], {
    maxPayload: maxBytes,
    handshakeTimeout: 10_000,
    perMessageDeflate: false,
    ...(o.ca === undefined ? {} : { ca: o.ca }),
  });

  function finish(code: number, reason: string, error?: GatewayError): void {
    if (done) return;
    done = true;
    open = false;
    established = false;
    o.onClosed({ code, reason, ...(error ? { error } : {}) });
    resolveClosed();
  }

  function fail(error: GatewayError, code = 1008): void {
    log.warning('upstream.failed', { code: error.code, message: error.message });
    try {
      ws.close(code, error.code);
    } catch {
      ws.terminate(); // not yet open: nothing to say goodbye on
    }
    finish(code, error.message, error);
  }

  function write(envelope: Envelope): void {
    ws.send(encodeEnvelope(envelope));
    lastTx = o.timers.nowMs();
  }

  function sendRaw<T extends EnvelopeType>(type: T, body: EnvelopeOf<T>['body']): string {
    if (!cpId) throw new GatewayError('UPSTREAM_CLOSED', 'no session');
    const id = newMessageId();
    const unsigned = {
      v: 2,
      id,
      tid: o.tid,
      type,
      ts: Math.max(0, Math.floor(o.wallMs())),
      seq: sendSeq++,
      src: did,
      dst: cpId,
      body,
    } as unknown as UnsignedEnvelope<T>;
    write(signEnvelope(unsigned, o.seed));
    return id;
  }

  ws.on('open', () => {
    open = true;
    lastRx = o.timers.nowMs();
    if (ws.protocol !== WSS_SUBPROTOCOL) {
      fail(new GatewayError('UPSTREAM_PROTOCOL', `server did not select ${WSS_SUBPROTOCOL}`), 1002);
    }
  });

  ws.on('message', (data, isBinary) => {
    if (done) return;
    lastRx = o.timers.nowMs();
    if (isBinary) return fail(new GatewayError('UPSTREAM_PROTOCOL', 'binary frame from the control plane'), 1003);
    let env: Envelope;
    try {
      env = decodeEnvelope((data as Buffer).toString('utf8'), { tid: o.tid, maxBytes });
    } catch (e) {
      const code = isOutpostError(e) ? e.code : 'ENVELOPE_MALFORMED';
      return fail(
        new GatewayError('UPSTREAM_PROTOCOL', `undecodable envelope from the control plane: ${code}`, { cause: e }),
      );
    }
    if (env.type === 'hello.challenge' && cpId !== undefined) {
      return fail(new GatewayError('UPSTREAM_PROTOCOL', 'a second hello.challenge'));
    }
    if (env.type !== 'hello.challenge') {
      if (env.seq !== recvSeq + 1 || env.src !== cpId || env.dst !== did) {
        return fail(new GatewayError('UPSTREAM_PROTOCOL', `envelope out of sequence or misaddressed (${env.type})`));
      }
    }
    recvSeq = env.seq;
    if (!established) {
      if (env.type === 'hello.challenge' && cpId === undefined) {
        cpId = env.src;
        recvSeq = env.seq;
        try {
          sendRaw('hello', {
            token: o.token,
            device: did,
            agentVersion: o.agentVersion,
            manifestHash: o.manifestHash,
            resume: { lastAckedSeq: null },
            challenge: env.body.nonce,
          });
        } catch (e) {
          return fail(new GatewayError('UPSTREAM_HANDSHAKE_FAILED', 'cannot build hello', { cause: e }));
        }
        return;
      }
      if (env.type === 'hello.ack') {
        established = true;
        heartbeatMs = env.body.heartbeatMs;
        log.info('upstream.established', { sessionId: env.body.sessionId, heartbeatMs });
        o.onEstablished({ heartbeatMs: env.body.heartbeatMs, sessionId: env.body.sessionId, controlPlane: env.src });
        return;
      }
      if (env.type === 'error') {
        return fail(
          new GatewayError('UPSTREAM_HANDSHAKE_FAILED', `control plane refused the handshake: ${env.body.code}`, {
            details: { wireCode: env.body.code },
          }),
        );
      }
      return fail(new GatewayError('UPSTREAM_PROTOCOL', `unexpected ${env.type} before hello.ack`));
    }
    if (env.type === 'ping') {
      sendRaw('pong', { inReplyTo: env.id });
      return;
    }
    if (env.type === 'pong') return;
    try {
      o.onEnvelope(env);
    } catch (e) {
      log.error('upstream.handler_failed', { type: env.type, error: e });
    }
  });

  ws.on('close', (code, reason) => finish(code, reason.toString('utf8') || 'closed'));
  ws.on('error', (e) => {
    log.debug('upstream.socket_error', { error: e });
    finish(1006, e.message, new GatewayError('UPSTREAM_CLOSED', e.message, { cause: e }));
    ws.terminate();
  });

  return {
    facts: () => {
      const now = o.timers.nowMs();
      return {
        socketOpen: open && !done,
        sessionEstablished: established && !done,
        receiveSilenceMs: open && !done ? now - lastRx : null,
        sendSilenceMs: open && !done ? now - lastTx : null,
        heartbeatMs,
      };
    },
    send(type, body) {
      if (!established || done)
        throw new GatewayError('UPSTREAM_CLOSED', 'the control-plane session is not established');
      return sendRaw(type, body);
    },
    bufferedBytes: () => ws.bufferedAmount,
    close(code = 1000, reason = 'closing') {
      if (done) return;
      try {
        ws.close(code, reason);
      } catch {
        ws.terminate();
      }
      // Do not wait for the peer's close frame forever.
      const cancel = o.timers.setTimer(2_000, () => ws.terminate());
      void closed.then(cancel);
    },
    closed,
  };
}
