// An in-process control plane for deterministic tests: real SQLite state in a temp dir, a FakeClock, a scheduler that
// runs only when told, and hub connections over an in-memory Connection whose output the test reads.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authenticate } from '../../controlplane/auth.ts';
import { type ControlPlane, createControlPlane } from '../../controlplane/control-plane.ts';
import { enrollDevice, mintEnrollToken } from '../../controlplane/enrollment.ts';
import type { Connection, HubConnection } from '../../controlplane/hub-session.ts';
import { initStateDir, type OpenedState, openStateDir } from '../../controlplane/node/state-dir.ts';
import type { Scheduler } from '../../controlplane/ports.ts';
import type { ControlPlaneLimits } from '../../controlplane/settings.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import type { FakeClock } from '../../protocol/clock.ts';
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
} from '../../protocol/envelope.ts';
import { silentLogger } from '../../protocol/log.ts';
import { manifestHash } from '../../protocol/manifest.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import { greenhouseManifest } from './controlplane.ts';

/** Timers that fire only when `run()` is called, at the FakeClock's monotonic time. */
export class ManualScheduler implements Scheduler {
  readonly #clock: FakeClock;
  #tasks: { dueMs: number; fn: () => void; id: number }[] = [];
  #next = 0;
  constructor(clock: FakeClock) {
    this.#clock = clock;
  }
  after(ms: number, fn: () => void): () => void {
    const id = this.#next++;
    this.#tasks.push({ dueMs: this.#clock.monotonicMs() + ms, fn, id });
    return () => {
      this.#tasks = this.#tasks.filter((t) => t.id !== id);
    };
  }
  /** Runs every task due now (including ones they schedule that are due too). */
  run(): number {
    let ran = 0;
    for (;;) {
      const now = this.#clock.monotonicMs();
      const due = this.#tasks.filter((t) => t.dueMs <= now).sort((a, b) => a.dueMs - b.dueMs)[0];
      if (!due) return ran;
      this.#tasks = this.#tasks.filter((t) => t !== due);
      due.fn();
      ran++;
    }
  }
  get pending(): number {
    return this.#tasks.length;
  }
}

/** A Connection that records what the hub sends. */
export class FakeConnection implements Connection {
  readonly sent: Envelope[] = [];
  closed?: { code: number; reason: string };
  buffered = 0;
  #waiters: { match: (e: Envelope) => boolean; resolve: (e: Envelope) => void }[] = [];
  #closeWaiters: (() => void)[] = [];
  send(text: string): void {
    const env = decodeEnvelope(text);
    this.sent.push(env);
    const i = this.#waiters.findIndex((w) => w.match(env));
    if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(env);
  }
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    for (const w of this.#closeWaiters.splice(0)) w();
  }
  bufferedBytes(): number {
    return this.buffered;
  }
  /** The next envelope of `type` sent after the `from`-th (default: any not yet taken). */
  next<T extends EnvelopeType>(type: T, match: (e: Extract<Envelope, { type: T }>) => boolean = () => true) {
    return new Promise<Extract<Envelope, { type: T }>>((resolve) => {
      const test = (e: Envelope) => e.type === type && match(e as Extract<Envelope, { type: T }>);
      const seen = this.sent.find((e) => test(e) && !this.#taken.has(e));
      if (seen) {
        this.#taken.add(seen);
        resolve(seen as Extract<Envelope, { type: T }>);
        return;
      }
      this.#waiters.push({
        match: (e) => test(e) && !this.#taken.has(e),
        resolve: (e) => {
          this.#taken.add(e);
          resolve(e as Extract<Envelope, { type: T }>);
        },
      });
    });
  }
  #taken = new Set<Envelope>();
  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.#closeWaiters.push(r));
  }
}

export interface CoreHarness {
  readonly cp: ControlPlane;
  readonly state: OpenedState;
  readonly clock: FakeClock;
  readonly scheduler: ManualScheduler;
  readonly tid: string;
  readonly operatorKey: string;
  close(): void;
}

export async function createCoreHarness(
  clock: FakeClock,
  limits: Partial<ControlPlaneLimits> = {},
  options: { hybrid?: boolean } = {},
): Promise<CoreHarness & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-core-'));
  const init = await initStateDir({
    dir,
    env: {},
    clock,
    log: silentLogger,
    listenHost: '127.0.0.1',
    listenPort: 7380,
    tenant: 'acme',
    hybridTokens: options.hybrid ?? false,
  });
  const state = openStateDir({ dir, env: {}, clock, log: silentLogger });
  const scheduler = new ManualScheduler(clock);
  const cp = createControlPlane({
    store: state.store,
    vault: state.vault,
    scheduler,
    clock,
    log: silentLogger,
    metrics: new MetricsRegistry(),
    settings: { ...state.settings, limits: { ...state.settings.limits, ...limits } },
    version: '0.0.0-test',
  });
  await cp.start();
  return {
    dir,
    cp,
    state,
    clock,
    scheduler,
    tid: init.created.tenant.tid,
    operatorKey: init.created.operatorKey,
    close() {
      cp.shutdown();
      state.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A device enrolled directly through the core (no HTTP). */
export interface CoreDevice {
  readonly seed: Uint8Array;
  readonly did: string;
  readonly name: string;
  token: string;
}

export async function enrollCoreDevice(
  h: CoreHarness,
  name: string,
  operatorKey = h.operatorKey,
  role: 'device' | 'gateway' = 'device',
): Promise<CoreDevice> {
  const ctx = h.cp.context;
  const principal = await authenticate(ctx, `Bearer ${operatorKey}`, 'test');
  const minted = await mintEnrollToken(ctx, principal, { role });
  const seed = ed25519KeyPair().seed;
  const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
  const manifest = greenhouseManifest(did, name);
  const proof = signEd25519(
    seed,
    ENROLL_PROOF_CONTEXT,
    enrollProofMessage({ device: did, token: minted.token, manifestHash: manifestHash(manifest) }),
  );
  const r = await enrollDevice(
    ctx,
    { v: 1, token: minted.token, device: did, manifest, proof: toBase64Url(proof) },
    'test',
  );
  return { seed, did, name, token: r.runtimeToken };
}

/** One hub connection driven by the test. */
export class CoreSession {
  readonly conn = new FakeConnection();
  readonly hub: HubConnection;
  readonly device: CoreDevice;
  readonly tid: string;
  seq = 0;
  constructor(h: CoreHarness, device: CoreDevice, tid = h.tid) {
    this.device = device;
    this.tid = tid;
    this.hub = h.cp.acceptHub(tid, this.conn, 'test');
  }
  build<T extends EnvelopeType>(type: T, body: BodyOf<T>, overrides: Record<string, unknown> = {}): Envelope {
    const challenge = this.conn.sent.find((e) => e.type === 'hello.challenge');
    return signEnvelope(
      {
        v: 2,
        id: newMessageId(),
        tid: this.tid,
        type,
        ts: 0,
        seq: this.seq++,
        src: this.device.did,
        dst: challenge?.src ?? 'cp:127.0.0.1',
        body,
        ...overrides,
      } as never,
      this.device.seed,
    ) as Envelope;
  }
  send<T extends EnvelopeType>(type: T, body: BodyOf<T>, overrides: Record<string, unknown> = {}): Envelope {
    const env = this.build(type, body, overrides);
    this.hub.onText(encodeEnvelope(env));
    return env;
  }
  async hello(options: { token?: string; lastAckedSeq?: number | null } = {}) {
    const sent = this.conn.sent.find((e) => e.type === 'hello.challenge') as Extract<
      Envelope,
      { type: 'hello.challenge' }
    >;
    const challenge = sent.body.nonce;
    this.send('hello', {
      token: options.token ?? this.device.token,
      device: this.device.did,
      agentVersion: '0.0.0',
      manifestHash: manifestHash(greenhouseManifest(this.device.did, this.device.name)),
      resume: { lastAckedSeq: options.lastAckedSeq ?? null },
      challenge,
    });
  }
}
