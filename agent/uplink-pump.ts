// Moves the outbox upstream while an uplink is connected: lease a batch, hand it to the uplink, ack what
// the receiver acknowledged, release the rest. At-least-once: anything not acknowledged is sent again.

import type { Logger } from '../protocol/log.ts';
import type { Outbox } from '../store/outbox.ts';
import type { Uplink } from './uplink.ts';

export interface UplinkPumpOptions {
  readonly outbox: Outbox;
  readonly uplink: Uplink;
  readonly log: Logger;
  readonly maxItems?: number;
  readonly maxBytes?: number;
  /** How long a lease holds its units (store time) if the process dies mid-delivery. */
  readonly leaseMs?: number;
  /** Wait after a failed delivery before the next lease. */
  readonly retryDelayMs?: number;
}

export interface UplinkPump {
  /** Wakes the pump (new units were queued). */
  poke(): void;
  stop(): Promise<void>;
}

export function startUplinkPump(o: UplinkPumpOptions): UplinkPump {
  const maxItems = o.maxItems ?? 64;
  const maxBytes = o.maxBytes ?? 256 * 1024;
  const leaseMs = o.leaseMs ?? 60_000;
  const retryDelayMs = o.retryDelayMs ?? 5_000;
  let stopped = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        wake = undefined;
        resolve();
      };
    });
  const off = o.uplink.onStateChange(() => wake?.());

  async function loop(): Promise<void> {
    while (!stopped) {
      if (o.uplink.state() !== 'connected') {
        await sleep(60_000);
        continue;
      }
      const lease = o.outbox.lease(maxItems, maxBytes, leaseMs);
      if (lease.items.length === 0) {
        o.outbox.release(lease.id);
        await sleep(30_000);
        continue;
      }
      try {
        const acked = await o.uplink.deliver(lease);
        if (acked.length > 0) o.outbox.ack(acked);
        o.outbox.release(lease.id);
      } catch (e) {
        o.outbox.release(lease.id);
        o.log.warning('uplink.delivery_failed', { uplink: o.uplink.name, err: e as Error });
        await sleep(retryDelayMs);
      }
    }
  }

  const running = loop().catch((e) => o.log.error('uplink.pump_failed', { err: e as Error }));
  return {
    poke: () => wake?.(),
    async stop() {
      stopped = true;
      off();
      wake?.();
      await running;
    },
  };
}
