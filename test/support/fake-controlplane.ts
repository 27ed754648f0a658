// A small control-plane stand-in for gateway tests: a real WebSocket server on 127.0.0.1 speaking aethermesh.v2
// (challenge, signed hello with a real runtime token, hello.ack), recording the gateway's lora.* envelopes and
// answering them as the relay contract says (lora-relay.md). Tests drive it: send downlink, cut sessions,
// withhold acks. It does not open LoRa frames; the control plane's LoRa endpoint has its own tests.

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { fromBase64Url } from '../../protocol/bytes.ts';
import { systemClock } from '../../protocol/clock.ts';
import { ed25519FromDidKey } from '../../protocol/did-key.ts';
import { verifyDeviceTokenProof, verifyEnrollProof } from '../../protocol/enroll-proof.ts';
import {
  decodeEnvelope,
  type Envelope,
  type EnvelopeOf,
  type EnvelopeType,
  encodeEnvelope,
  newMessageId,
  WSS_SUBPROTOCOL,
} from '../../protocol/envelope.ts';
import { publishedJwk } from '../../protocol/jwks.ts';
import type { DownlinkReport, RelayedFrame } from '../../protocol/lora-relay.ts';
import { decodeManifest, manifestHash } from '../../protocol/manifest.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { newJti, signRuntimeToken, verifyRuntimeToken } from '../../protocol/tokens.ts';

export const FAKE_TID = '0e6c3a3d-952c-55af-be8a-3d562dcf52c7';
const ISSUER = 'https://cp.test';
const AUDIENCE = 'outpost';

export interface ReceivedFrame extends RelayedFrame {
  readonly envelopeId: string;
}

export interface FakeControlPlane {
  readonly port: number;
  readonly url: string;
  readonly tid: string;
  mintToken(did: string, options?: { lifetimeS?: number; role?: 'gateway' | 'device' }): Promise<string>;
  /** A single-use enroll token for POST /v1/devices/enroll. */
  issueEnrollToken(): string;
  /** Lifetime of runtime tokens issued at enrollment and renewal (default 3600 s). */
  setTokenLifetime(seconds: number): void;
  enrolled(): string[];
  readonly httpUrl: string;
  /** Frames received in lora.uplink envelopes, in arrival order (duplicates included). */
  readonly frames: ReceivedFrame[];
  readonly reports: DownlinkReport[];
  readonly received: Envelope[];
  /** Sessions that completed the handshake. */
  sessions(): number;
  connected(): boolean;
  /** Answer lora.uplink with lora.ack (default true). */
  setAutoAck(on: boolean): void;
  /** Devices sent in lora.devices after every handshake. */
  setDevices(devices: EnvelopeOf<'lora.devices'>['body']['devices']): void;
  send<T extends EnvelopeType>(type: T, body: EnvelopeOf<T>['body']): string;
  /** Resolves when `predicate` holds (checked after every received envelope), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Closes the current session from the server side. */
  kick(code?: number): void;
  close(): Promise<void>;
}

export interface FakeControlPlaneOptions {
  heartbeatMs?: number;
  /** The tenant (default FAKE_TID). */
  tid?: string;
  cpId?: string;
  /** Handles each lora.uplink before it is acknowledged (the ack waits for it; a throw closes the session). */
  onUplink?: (body: EnvelopeOf<'lora.uplink'>['body'], gateway: string) => Promise<void>;
  onReport?: (body: EnvelopeOf<'lora.downlink.report'>['body'], gateway: string) => void;
}

export async function startFakeControlPlane(options: FakeControlPlaneOptions = {}): Promise<FakeControlPlane> {
  const tid = options.tid ?? FAKE_TID;
  const signingSeed = randomBytes(32);
  const kid = 'test-key-1';
  const jwks = { keys: [publishedJwk(ed25519KeyPair(signingSeed).publicKey, 'active', kid)] };
  const cpId = options.cpId ?? 'cp:test';
  const frames: ReceivedFrame[] = [];
  const reports: DownlinkReport[] = [];
  const received: Envelope[] = [];
  let devices: EnvelopeOf<'lora.devices'>['body']['devices'] = [];
  let autoAck = true;
  let sessions = 0;
  let current: { ws: WebSocket; peer: string; seq: number } | undefined;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  // The enrollment API of the control plane (lora-relay.md does not cover it; docs/gateway.md §5 does).
  const enrollTokens = new Set<string>();
  const enrolled = new Set<string>();
  const challenges = new Map<string, string>();
  let tokenLifetimeS = 3600;
  const http: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    let text = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      text += d;
    });
    req.on('end', () => {
      void (async () => {
        let b: Record<string, string>;
        try {
          b = JSON.parse(text) as Record<string, string>;
        } catch {
          return reply(400, { error: { code: 'BAD_REQUEST', message: 'not JSON' } });
        }
        const device = b.device ?? '';
        try {
          ed25519FromDidKey(device);
        } catch {
          return reply(400, { error: { code: 'BAD_REQUEST', message: 'device' } });
        }
        if (req.url === '/v1/devices/enroll') {
          if (!enrollTokens.has(b.token ?? ''))
            return reply(401, { error: { code: 'ENROLL_TOKEN_UNKNOWN', message: '' } });
          const manifest = b.manifest as unknown as Record<string, unknown>;
          const input = { device, token: b.token!, manifestHash: manifestHash(decodeManifest(manifest)) };
          if (!verifyEnrollProof(input, fromBase64Url(b.proof ?? ''))) {
            return reply(401, { error: { code: 'PROOF_INVALID', message: '' } });
          }
          enrollTokens.delete(b.token!);
          enrolled.add(device);
          return reply(201, {
            v: 1,
            device,
            tid: tid,
            runtimeToken: await mint(device, tokenLifetimeS),
            tokenExpiresAtMs: Date.now() + tokenLifetimeS * 1000,
            wssUrl: `ws://127.0.0.1:${(http.address() as { port: number }).port}/v1/wss`,
            controlPlaneId: cpId,
            heartbeatMs: options.heartbeatMs ?? 30_000,
          });
        }
        if (req.url === '/v1/devices/challenge') {
          const challenge = randomBytes(16).toString('base64url');
          challenges.set(challenge, device);
          return reply(200, { challenge, expiresAtMs: Date.now() + 120_000 });
        }
        if (req.url === '/v1/devices/token') {
          const ok =
            challenges.get(b.challenge ?? '') === device &&
            enrolled.has(device) &&
            verifyDeviceTokenProof(device, b.challenge ?? '', fromBase64Url(b.proof ?? ''));
          if (!ok) return reply(401, { error: { code: 'PROOF_INVALID', message: '' } });
          challenges.delete(b.challenge!);
          return reply(200, { runtimeToken: await mint(device, tokenLifetimeS), tokenExpiresAtMs: 0 });
        }
        return reply(404, { error: { code: 'NOT_FOUND', message: '' } });
      })();
    });
  });
  const wss = new WebSocketServer({
    server: http,
    maxPayload: 1 << 20,
    handleProtocols: (protocols) => (protocols.has(WSS_SUBPROTOCOL) ? WSS_SUBPROTOCOL : false),
  });

  function sendOn(
    conn: { ws: WebSocket; peer: string; seq: number },
    type: EnvelopeType,
    body: unknown,
    dst?: string,
  ): string {
    const id = newMessageId();
    const env = {
      v: 2,
      id,
      tid: tid,
      type,
      ts: Date.now(),
      seq: conn.seq++,
      src: cpId,
      dst: dst ?? conn.peer,
      body,
    } as unknown as Envelope;
    conn.ws.send(encodeEnvelope(env));
    return id;
  }

  wss.on('connection', (ws) => {
    const conn = { ws, peer: '*', seq: 0 };
    const nonce = randomBytes(32).toString('base64url');
    let established = false;
    sendOn(conn, 'hello.challenge', { nonce }, '*');
    // Envelopes are handled one at a time, in order, as the hub does.
    let chain: Promise<void> = Promise.resolve();
    ws.on('message', (data) => {
      chain = chain.then(async () => {
        let env: Envelope;
        try {
          env = decodeEnvelope(data.toString(), { tid: tid });
        } catch {
          ws.close(1008, 'bad envelope');
          return;
        }
        received.push(env);
        if (!established) {
          if (env.type !== 'hello' || env.body.challenge !== nonce) {
            ws.close(1008, 'handshake');
            return;
          }
          try {
            const v = await verifyRuntimeToken(env.body.token, {
              jwks,
              clock: systemClock,
              issuer: ISSUER,
              audience: AUDIENCE,
              tid: tid,
            });
            if (v.claims.sub !== env.src || v.claims.role !== 'gateway') throw new Error('wrong principal');
          } catch {
            conn.peer = env.src;
            sendOn(conn, 'error', { code: 'UNAUTHENTICATED', message: 'token refused', inReplyTo: env.id });
            ws.close(1008, 'unauthenticated');
            return;
          }
          established = true;
          conn.peer = env.src;
          current?.ws.close(4000, 'replaced');
          current = conn;
          sessions++;
          sendOn(conn, 'hello.ack', {
            sessionId: newMessageId(),
            heartbeatMs: options.heartbeatMs ?? 30_000,
            resume: { ackedThroughSeq: null },
          });
          sendOn(conn, 'lora.devices', { devices });
          notify();
          return;
        }
        switch (env.type) {
          case 'lora.uplink':
            for (const f of env.body.frames) frames.push({ ...f, envelopeId: env.id });
            if (options.onUplink) {
              try {
                await options.onUplink(env.body, conn.peer);
              } catch {
                ws.close(1011, 'uplink handling failed');
                return;
              }
            }
            if (autoAck && ws.readyState === ws.OPEN) sendOn(conn, 'lora.ack', { inReplyTo: env.id });
            break;
          case 'lora.downlink.report':
            reports.push(...env.body.reports);
            options.onReport?.(env.body, conn.peer);
            sendOn(conn, 'lora.ack', { inReplyTo: env.id });
            break;
          case 'ping':
            sendOn(conn, 'pong', { inReplyTo: env.id });
            break;
          case 'token.refresh':
            break;
          default:
            break;
        }
        notify();
      });
    });
    ws.on('close', () => {
      if (current?.ws === ws) current = undefined;
      notify();
    });
  });

  async function mint(did: string, lifetimeS: number): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return signRuntimeToken(
      {
        iss: ISSUER,
        aud: AUDIENCE,
        sub: did,
        dev: did,
        tid: tid,
        role: 'gateway',
        scope: '',
        iat: now,
        nbf: now,
        exp: now + lifetimeS,
        jti: newJti(),
      },
      { kid, ed25519Seed: signingSeed },
    );
  }

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as { port: number }).port;

  return {
    port,
    url: `ws://127.0.0.1:${port}/v1/wss`,
    httpUrl: `http://127.0.0.1:${port}`,
    tid: tid,
    issueEnrollToken() {
      const t = `oet_${randomBytes(32).toString('base64url')}`;
      enrollTokens.add(t);
      return t;
    },
    setTokenLifetime(s) {
      tokenLifetimeS = s;
    },
    enrolled: () => [...enrolled],
    async mintToken(did, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      return signRuntimeToken(
        {
          iss: ISSUER,
          aud: AUDIENCE,
          sub: did,
          dev: did,
          tid: tid,
          role: o.role ?? 'gateway',
          scope: '',
          iat: now,
          nbf: now,
          exp: now + (o.lifetimeS ?? 3600),
          jti: newJti(),
        },
        { kid, ed25519Seed: signingSeed },
      );
    },
    frames,
    reports,
    received,
    sessions: () => sessions,
    connected: () => current !== undefined,
    setAutoAck(on) {
      autoAck = on;
    },
    setDevices(d) {
      devices = d;
      if (current) sendOn(current, 'lora.devices', { devices });
    },
    send(type, body) {
      if (!current) throw new Error('no gateway connected');
      return sendOn(current, type, body);
    },
    waitFor(predicate, timeoutMs = 10_000, what = 'condition') {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate()) return;
          waiters.delete(check);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    kick(code = 1001) {
      current?.ws.close(code, 'kicked');
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        http.close(() => resolve());
      }),
  };
}
