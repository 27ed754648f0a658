// `[uplink] mode = "auto"`: the control-plane WSS link while it is connected, the LoRa link otherwise. Both links
// run all the time (tool calls may arrive on either); each lease goes to the one that is up when it is sent. The
// control plane deduplicates by (device, seq), so a lease retried on the other link after a cut is stored once.

import type { Logger } from '../protocol/log.ts';
import type { Lease, SeqRange } from '../store/outbox.ts';
import { LinkError } from './link-errors.ts';
import type { Uplink, UplinkBinding, UplinkState } from './uplink.ts';

export interface AutoUplinkOptions {
  /** Preferred while connected (the WSS link). */
  readonly primary: Uplink;
  /** Used whenever the primary is down (the LoRa link). */
  readonly fallback: Uplink;
  readonly log: Logger;
}

export function createAutoUplink(options: AutoUplinkOptions): Uplink {
  const { primary, fallback, log } = options;
  const listeners = new Set<(state: UplinkState) => void>();
  let last: UplinkState = 'disconnected';
  let lastActive = '';

  const state = (): UplinkState =>
    primary.state() === 'connected' || fallback.state() === 'connected' ? 'connected' : 'disconnected';
  const active = (): Uplink | undefined =>
    primary.state() === 'connected' ? primary : fallback.state() === 'connected' ? fallback : undefined;

  function changed(): void {
    const now = state();
    const using = active()?.name ?? 'none';
    if (using !== lastActive) {
      log.notice('uplink.auto_switch', { using, from: lastActive || 'none' });
      lastActive = using;
    }
    if (now === last) return;
    last = now;
    for (const l of [...listeners]) l(now);
  }
  const unsubscribe = [primary.onStateChange(changed), fallback.onStateChange(changed)];

  return {
    name: 'auto',
    state,
    onStateChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    deliver(lease: Lease): Promise<readonly SeqRange[]> {
      const link = active();
      if (!link) return Promise.reject(new LinkError('LINK_DOWN', 'neither the WSS nor the LoRa uplink is connected'));
      return link.deliver(lease);
    },
    bind(binding: UplinkBinding) {
      primary.bind?.(binding);
      fallback.bind?.(binding);
    },
    async start() {
      await Promise.all([primary.start(), fallback.start()]);
      changed();
    },
    async stop() {
      for (const u of unsubscribe) u();
      await Promise.all([primary.stop(), fallback.stop()]);
    },
    detail() {
      return {
        mode: 'auto',
        using: active()?.name ?? null,
        [primary.name]: primary.detail?.() ?? { state: primary.state() },
        [fallback.name]: fallback.detail?.() ?? { state: fallback.state() },
      };
    },
  };
}
