// Fixtures for control-plane tests: a real control plane (state dir in a temp dir, SQLite, Node server on
// 127.0.0.1) and a scripted device speaking aethermesh.v2 over a real ws client, so tests can also misbehave.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import type { EnrollResponse } from '../../controlplane/enrollment.ts';
import { type ControlPlaneHost, startControlPlaneHost } from '../../controlplane/node/host.ts';
import { initStateDir } from '../../controlplane/node/state-dir.ts';
import type { ControlPlaneLimits } from '../../controlplane/settings.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { type Clock, systemClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { ENROLL_PROOF_CONTEXT, enrollProofMessage } from '../../protocol/enroll-proof.ts';
import {
  type BodyOf,
  decodeEnvelope,
  type Envelope,
  type EnvelopeType,
  encodeEnvelope,
  newMessageId,
  signEnvelope,
  WSS_SUBPROTOCOL,
} from '../../protocol/envelope.ts';
import { silentLogger } from '../../protocol/log.ts';
import { type CapabilityManifest, decodeManifest, manifestHash } from '../../protocol/manifest.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import { signTelemetryUnit, type TelemetryRecord } from '../../protocol/telemetry.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** A TCP port free right now on 127.0.0.1 (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

export interface TestControlPlane {
  readonly dir: string;
  readonly url: string;
  readonly port: number;
  readonly operatorKey: string;
  readonly tid: string;
  host: ControlPlaneHost;
  /** Stops and starts the server on the same state and port (a clean restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestControlPlane(
  options: { clock?: Clock; limits?: Partial<ControlPlaneLimits>; hybrid?: boolean; tenant?: string } = {},
): Promise<TestControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-cp-'));
  const port = await freePort();
  const clock = options.clock ?? systemClock;
  const init = await initStateDir({
    dir,
    env: {},
    clock,
    log: silentLogger,
    listenHost: '127.0.0.1',
    listenPort: port,
    tenant: options.tenant ?? 'acme',
    hybridTokens: options.hybrid ?? false,
  });
  const start = () =>
    startControlPlaneHost({
      dir,
      env: {},
      clock,
      log: silentLogger,
      metrics: new MetricsRegistry(),
      version: '0.0.0-test',
      ...(options.limits ? { limits: options.limits } : {}),
    });
  const t: TestControlPlane = {
    dir,
    url: `http://127.0.0.1:${port}`,
    port,
    operatorKey: init.created.operatorKey,
    tid: init.created.tenant.tid,
    host: await start(),
    async restart() {
      await t.host.close();
      t.host = await start();
    },
    async close() {
      await t.host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** JSON over HTTP with a bearer credential; resolves with status and parsed body. */
export async function api(
  url: string,
  path: string,
  options: { method?: string; body?: unknown; auth?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const res = await fetch(`${url}${path}`, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.auth ? { authorization: `Bearer ${options.auth}` } : {}),
      ...(options.headers ?? {}),
    },
    ...(options.body === undefined
      ? {}
      : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

/** The greenhouse example manifest, re-addressed to `device` and named `name`. */
export function greenhouseManifest(device: string, name: string): CapabilityManifest {
  const m = JSON.parse(readFileSync(join(ROOT, 'examples/manifests/greenhouse.json'), 'utf8')) as CapabilityManifest;
  return decodeManifest({ ...m, device: { ...m.device, id: device, name } });
}

/** Mints an enroll token with the operator key. */
export async function mintEnrollToken(cp: TestControlPlane, body: Record<string, unknown> = {}): Promise<string> {
  const r = await api(cp.url, '/v1/operator/enroll-token', { body, auth: cp.operatorKey });
  if (r.status !== 201) throw new Error(`enroll-token: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

/** Mints a caller token (role, scopes) with the operator key. */
export async function mintCallerToken(
  cp: TestControlPlane,
  body: { role: string; subject: string; scopes?: string[]; ttlSeconds?: number },
): Promise<string> {
  const r = await api(cp.url, '/v1/operator/tokens', { body, auth: cp.operatorKey });
  if (r.status !== 201) throw new Error(`tokens: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

export type ToolHandler = (args: Record<string, unknown>, call: BodyOf<'tool.call'>) => unknown;

/** A device identity with its manifest, able to enroll and to open sessions. */
export class SimDevice {
  readonly seed: Uint8Array;
  readonly did: string;
  manifest: CapabilityManifest;
  enrollment?: EnrollResponse;
  token = '';

  constructor(name: string, seed: Uint8Array = ed25519KeyPair().seed) {
    this.seed = seed;
    this.did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
    this.manifest = greenhouseManifest(this.did, name);
  }

  /** The enroll request body (valid unless the caller alters it). */
  enrollBody(token: string, x25519PublicKey?: string): Record<string, unknown> {
    const hash = manifestHash(this.manifest);
    const proof = signEd25519(
      this.seed,
      ENROLL_PROOF_CONTEXT,
      enrollProofMessage({
        device: this.did,
        token,
        manifestHash: hash,
        ...(x25519PublicKey ? { x25519PublicKey } : {}),
      }),
    );
    return {
      v: 1,
      token,
      device: this.did,
      manifest: this.manifest,
      ...(x25519PublicKey ? { x25519PublicKey } : {}),
      proof: toBase64Url(proof),
    };
  }

  async enroll(cp: { url: string }, token: string): Promise<EnrollResponse> {
    const r = await api(cp.url, '/v1/devices/enroll', { body: this.enrollBody(token) });
    if (r.status !== 201) throw new Error(`enroll: ${r.status} ${JSON.stringify(r.body)}`);
    this.enrollment = r.body as unknown as EnrollResponse;
    this.token = this.enrollment.runtimeToken;
    return this.enrollment;
  }

  /** Opens a session (raw: no automatic hello). */
  connect(url?: string): Promise<SimSession> {
    return SimSession.open(this, url ?? this.enrollment!.wssUrl);
  }

  /** Opens a session and completes the handshake; resolves after hello.ack. */
  async session(options: { url?: string; lastAckedSeq?: number | null; announce?: boolean } = {}): Promise<SimSession> {
    const s = await this.connect(options.url);
    await s.hello({ lastAckedSeq: options.lastAckedSeq ?? null });
    if (options.announce ?? true) {
      s.send('manifest.announce', { manifest: this.manifest, manifestHash: manifestHash(this.manifest) });
      await s.next('manifest.ack');
    }
    return s;
  }
}

/** One WebSocket session of a SimDevice, with an inbox of decoded envelopes. */
export class SimSession {
  readonly device: SimDevice;
  readonly ws: WebSocket;
  readonly received: Envelope[] = [];
  readonly tools = new Map<string, ToolHandler>();
  tid = '';
  cpId = '';
  challenge = '';
  seq = 0;
  closed?: { code: number; reason: string };
  #waiters: { match: (e: Envelope) => boolean; resolve: (e: Envelope) => void }[] = [];
  #closeWaiters: ((c: { code: number; reason: string }) => void)[] = [];

  private constructor(device: SimDevice, ws: WebSocket) {
    this.device = device;
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const env = decodeEnvelope(data.toString());
      this.received.push(env);
      if (env.type === 'hello.challenge') {
        this.challenge = env.body.nonce;
        this.tid = env.tid;
        this.cpId = env.src;
      }
      if (env.type === 'tool.call' && this.tools.has(env.body.tool)) {
        const handler = this.tools.get(env.body.tool)!;
        Promise.resolve()
          .then(() => handler(env.body.args, env.body))
          .then(
            (result) =>
              this.send('tool.result', { callId: env.body.callId, ok: true, result: result ?? null, durationMs: 1 }),
            (e: Error) =>
              this.send('tool.result', {
                callId: env.body.callId,
                ok: false,
                error: { code: 'TOOL_FAILED', message: e.message },
                durationMs: 1,
              }),
          );
      }
      const i = this.#waiters.findIndex((w) => w.match(env));
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(env);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.#closeWaiters.splice(0)) w(this.closed);
    });
    ws.on('error', () => undefined);
  }

  static open(device: SimDevice, url: string, protocols: string[] = [WSS_SUBPROTOCOL]): Promise<SimSession> {
    return new Promise((resolveOpen, reject) => {
      const ws = new WebSocket(url, protocols);
      const s = new SimSession(device, ws);
      ws.once('open', () => resolveOpen(s));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Resolves with the next envelope of `type` (already received ones first, in order). */
  next<T extends EnvelopeType>(type: T, match: (e: Extract<Envelope, { type: T }>) => boolean = () => true) {
    return new Promise<Extract<Envelope, { type: T }>>((resolveNext) => {
      const test = (e: Envelope) => e.type === type && match(e as Extract<Envelope, { type: T }>);
      const seen = this.received.findIndex(test);
      if (seen >= 0) {
        resolveNext(this.received.splice(seen, 1)[0] as Extract<Envelope, { type: T }>);
        return;
      }
      this.#waiters.push({
        match: test,
        resolve: (e) => {
          this.received.splice(this.received.indexOf(e), 1);
          resolveNext(e as Extract<Envelope, { type: T }>);
        },
      });
    });
  }

  /** Resolves when the server closes the connection. */
  whenClosed(): Promise<{ code: number; reason: string }> {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((r) => this.#closeWaiters.push(r));
  }

  /** Builds, signs and sends an envelope; returns it. */
  send<T extends EnvelopeType>(type: T, body: BodyOf<T>, overrides: Partial<Envelope> = {}): Envelope {
    const unsigned = {
      v: 2,
      id: newMessageId(),
      tid: this.tid,
      type,
      ts: Date.now(),
      seq: this.seq++,
      src: this.device.did,
      dst: this.cpId,
      body,
      ...overrides,
    };
    const env = signEnvelope(unsigned as never, this.device.seed) as Envelope;
    this.ws.send(encodeEnvelope(env));
    return env;
  }

  sendRaw(text: string): void {
    this.ws.send(text);
  }

  async hello(options: { lastAckedSeq?: number | null; token?: string; challenge?: string } = {}) {
    if (!this.challenge) await this.next('hello.challenge');
    this.send('hello', {
      token: options.token ?? this.device.token,
      device: this.device.did,
      agentVersion: '0.0.0-test',
      manifestHash: manifestHash(this.device.manifest),
      resume: { lastAckedSeq: options.lastAckedSeq ?? null },
      challenge: options.challenge ?? this.challenge,
    });
    return this.next('hello.ack');
  }

  /** Sends records as one signed unit in a telemetry.batch. */
  sendTelemetry(records: readonly TelemetryRecord[]): Envelope {
    return this.send('telemetry.batch', { units: [signTelemetryUnit(this.device.seed, records)] });
  }

  close(): void {
    this.ws.close();
  }
}

/** `n` readings of soil.moisture from seq `first`. */
export function readings(first: number, n: number, ts = Date.now()): TelemetryRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    seq: first + i,
    stream: 'soil.moisture',
    ts: ts + i,
    value: 40 + (i % 10),
  }));
}
