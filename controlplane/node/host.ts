// `outpost controlplane run` in one call: open the state directory, build the control plane over the SQLite store,
// file key vault, in-memory session registry and Node timers, and serve it on one port.

import type { Clock } from '../../protocol/clock.ts';
import type { Logger } from '../../protocol/log.ts';
import type { MetricsRegistry } from '../../protocol/metrics.ts';
import { type ControlPlane, createControlPlane } from '../control-plane.ts';
import type { ControlPlaneLimits } from '../settings.ts';
import { type NodeServer, nodeScheduler, startNodeServer } from './server.ts';
import { type OpenedState, openStateDir } from './state-dir.ts';

export interface HostOptions {
  readonly dir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly version: string;
  /** Overrides of the config file's listen address. */
  readonly host?: string;
  readonly port?: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly limits?: Partial<ControlPlaneLimits>;
  readonly nativeBinding?: string | object;
}

export interface ControlPlaneHost {
  readonly url: string;
  readonly port: number;
  readonly controlPlane: ControlPlane;
  readonly state: OpenedState;
  readonly server: NodeServer;
  /** Stops serving and closes the store. */
  close(): Promise<void>;
}

export async function startControlPlaneHost(o: HostOptions): Promise<ControlPlaneHost> {
  const state = openStateDir({
    dir: o.dir,
    env: o.env,
    clock: o.clock,
    log: o.log,
    ...(o.nativeBinding ? { nativeBinding: o.nativeBinding } : {}),
  });
  try {
    const settings = o.limits
      ? { ...state.settings, limits: { ...state.settings.limits, ...o.limits } }
      : state.settings;
    const controlPlane = createControlPlane({
      store: state.store,
      vault: state.vault,
      scheduler: nodeScheduler,
      clock: o.clock,
      log: o.log,
      metrics: o.metrics,
      settings,
      version: o.version,
    });
    await controlPlane.start();
    const tls = o.tls ?? state.config.tls;
    const server = await startNodeServer({
      controlPlane,
      host: o.host ?? state.config.listen.host,
      port: o.port ?? state.config.listen.port,
      ...(tls ? { tls } : {}),
      log: o.log,
      maxPayloadBytes: settings.limits.maxEnvelopeBytes,
    });
    return {
      url: server.url,
      port: server.port,
      controlPlane,
      state,
      server,
      async close() {
        await server.close();
        state.close();
      },
    };
  } catch (e) {
    state.close();
    throw e;
  }
}
