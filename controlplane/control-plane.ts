// Puts the control plane together over its ports: issuer, HTTP API, hub, key rotation on a timer. A host (the Node
// server in controlplane/node/, or another) passes the store, vault, session registry and scheduler, and feeds it
// HTTP requests and WebSocket connections.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../protocol/clock.ts';
import { WSS_SUBPROTOCOL } from '../protocol/envelope.ts';
import { UUID_PATTERN } from '../protocol/identifiers.ts';
import type { Logger } from '../protocol/log.ts';
import type { MetricsRegistry } from '../protocol/metrics.ts';
import { createAuthLimiter } from './auth-limiter.ts';
import type { ControlPlaneContext } from './context.ts';
import { createControlPlaneEvents, observedStore } from './events.ts';
import { createHttpApi, type RequestInfo } from './http-api.ts';
import { acceptHubConnection, type Connection, type HubConnection } from './hub-session.ts';
import { createLoraEndpoint } from './lora-endpoint.ts';
import { enrollOverLora } from './lora-enrollment.ts';
import { createMemorySessionRegistry } from './memory-sessions.ts';
import { createControlPlaneMetrics } from './metrics.ts';
import type { ControlPlaneStore, KeyVault, Scheduler, SessionRegistry } from './ports.ts';
import { type ControlPlaneSettings, DEVICE_AUDIENCE } from './settings.ts';
import { createTokenIssuer } from './token-issuer.ts';

export interface ControlPlaneDeps {
  readonly store: ControlPlaneStore;
  readonly vault: KeyVault;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly settings: ControlPlaneSettings;
  readonly version: string;
  /** Default: one process's in-memory registry. */
  readonly sessions?: SessionRegistry;
  readonly random?: (n: number) => Uint8Array;
}

export interface ControlPlane {
  readonly context: ControlPlaneContext;
  /** Loads keys and revocations, rotates keys now and whenever the plan says. */
  start(): Promise<void>;
  /** Serves one HTTP request (never rejects). */
  handleHttp(request: Request, info: RequestInfo): Promise<Response>;
  /**
   * Checks a WebSocket upgrade: the tenant id of a hub path (`/v1/hub/<tid>`) whose tenant exists and whose
   * client offered `aethermesh.v2`; else the HTTP status to refuse it with.
   */
  checkUpgrade(
    pathname: string,
    protocols: readonly string[],
  ): Promise<{ tid: string } | { status: number; message: string }>;
  /** Starts a hub session on an upgraded connection. */
  acceptHub(tid: string, connection: Connection, address: string): HubConnection;
  /** Tells every session the control plane is going away (SHUTTING_DOWN) and stops timers. */
  shutdown(): void;
}

export function createControlPlane(deps: ControlPlaneDeps): ControlPlane {
  const { vault, clock, log, settings, scheduler } = deps;
  const events = createControlPlaneEvents();
  const store = observedStore(deps.store, events);
  const sessions = deps.sessions ?? createMemorySessionRegistry();
  const issuer = createTokenIssuer({ store, vault, clock, settings, log: log.child({ part: 'keys' }) });
  const context: ControlPlaneContext = {
    store,
    vault,
    issuer,
    sessions,
    scheduler,
    clock,
    log,
    metrics: createControlPlaneMetrics(deps.metrics, () => sessions.count()),
    settings,
    limiter: createAuthLimiter({
      clock,
      maxFailures: settings.limits.authFailures,
      windowMs: settings.limits.authWindowMs,
      lockoutMs: settings.limits.lockoutMs,
    }),
    random: deps.random ?? ((n) => new Uint8Array(randomBytes(n))),
    lora: createLoraEndpoint({
      store,
      vault,
      sessions,
      scheduler,
      clock,
      log,
      jwks: () => issuer.jwks(),
      tokenIssuer: () => ({ issuer: settings.issuer, audience: DEVICE_AUDIENCE }),
      // Called only once frames arrive, long after `context` exists.
      enroll: (frame, gateway, tid) => enrollOverLora(context, frame, gateway, tid),
    }),
    events,
  };
  const http = createHttpApi(context, { version: deps.version, renderMetrics: () => deps.metrics.render() });
  let cancelRotation: (() => void) | undefined;
  let stopped = false;
  const hubConnections = new Set<HubConnection>();

  async function rotateAndSchedule(): Promise<void> {
    if (stopped) return;
    try {
      const plan = await issuer.rotate();
      // Timers hold at most ~24 days; re-plan at least daily so a long sleep is never one timer.
      const waitMs = Math.min(Math.max(1000, plan.nextCheckAtMs - clock.nowMs()), 86_400_000);
      cancelRotation = scheduler.after(waitMs, () => void rotateAndSchedule());
    } catch (e) {
      log.error('keys.rotation_failed', { err: e as Error });
      cancelRotation = scheduler.after(60_000, () => void rotateAndSchedule());
    }
  }

  return {
    context,
    async start() {
      await issuer.start();
      await rotateAndSchedule();
    },
    handleHttp: (request, info) => http(request, info),
    async checkUpgrade(pathname, protocols) {
      const m = /^\/v1\/hub\/([^/]+)$/.exec(pathname);
      if (!m || !UUID_PATTERN.test(m[1]!)) return { status: 404, message: 'the hub is at /v1/hub/<tenant id>' };
      if (!protocols.includes(WSS_SUBPROTOCOL)) return { status: 426, message: `offer subprotocol ${WSS_SUBPROTOCOL}` };
      if (!(await store.getTenant(m[1]!))) return { status: 404, message: 'no such tenant' };
      return { tid: m[1]! };
    },
    acceptHub(tid, connection, address) {
      const hub = acceptHubConnection(context, { tid, connection, address });
      hubConnections.add(hub);
      return {
        onText: (t) => hub.onText(t),
        onBinary: () => hub.onBinary(),
        onClose: () => {
          hubConnections.delete(hub);
          hub.onClose();
        },
      };
    },
    shutdown() {
      stopped = true;
      cancelRotation?.();
      for (const s of sessions.all()) s.close('SHUTTING_DOWN', 'the control plane is going away');
      for (const h of hubConnections) h.onClose();
      hubConnections.clear();
    },
  };
}
