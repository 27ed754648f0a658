// The durable uplink store: every frame that passed the cheap checks is on stable storage (fsynced) before
// the gateway counts it as stored, and leaves only when the control plane acknowledges it — or when a cap
// (bytes, items, age) drops it, lowest priority first, counted. Built on the store's sealed outbox.

import { hkdfSync } from 'node:crypto';
import type { StoreDatabase } from '../store/database.ts';
import { createOutbox, type DropCount, type DropReason, type Outbox, type SeqRange } from '../store/outbox.ts';
import { decodeFrameRecord, encodeFrameRecord, type FrameRecord } from './frame-record.ts';
import type { UplinkClass } from './uplink-filter.ts';

/** Store priority per class (0 most urgent): results and enrollments outlive telemetry when space runs out. */
export const UPLINK_CLASS_PRIORITY: Readonly<Record<UplinkClass, number>> = {
  result: 1,
  enroll: 2,
  telemetry: 4,
  heartbeat: 6,
};

export interface UplinkQueueOptions {
  /** The gateway's identity seed: the at-rest key is derived from it. */
  readonly identitySeed: Uint8Array;
  readonly maxBytes?: number;
  readonly maxItems?: number;
  readonly maxAgeMs?: number;
  readonly onDrop?: (drop: DropCount) => void;
}

export interface StoredFrame {
  readonly stream: UplinkClass;
  readonly seq: number;
  readonly record: FrameRecord;
}

export interface UplinkLease {
  readonly id: number;
  readonly frames: readonly StoredFrame[];
}

export interface UplinkQueueStats {
  readonly frames: number;
  readonly bytes: number;
  readonly leased: number;
  readonly oldestAgeMs: number | null;
  readonly byClass: Readonly<Record<string, number>>;
  readonly dropsByReason: Readonly<Record<DropReason, number>>;
}

export interface UplinkQueue {
  /** Stores one frame; durable when this returns. Throws StoreError (STORE_DISK_FULL, STORE_IO …). */
  store(record: FrameRecord, cls: UplinkClass): { stream: UplinkClass; seq: number };
  /** Leases up to `maxFrames` / `maxBytes`, by priority then arrival, for `leaseMs` of store time. */
  lease(maxFrames: number, maxBytes: number, leaseMs: number): UplinkLease;
  /** The control plane has them: delete. */
  ack(ranges: readonly SeqRange[]): number;
  release(leaseId: number): void;
  stats(): UplinkQueueStats;
  close(): void;
}

const QUEUE_KEY_INFO = 'outpost/gateway-uplink-at-rest/v1';

/** The uplink queue in `db` (which must include OUTBOX_MIGRATIONS). */
export function createUplinkQueue(db: StoreDatabase, options: UplinkQueueOptions): UplinkQueue {
  const key = new Uint8Array(hkdfSync('sha256', options.identitySeed, new Uint8Array(0), QUEUE_KEY_INFO, 32));
  const outbox: Outbox = createOutbox(db, {
    key,
    queue: 'gateway-uplink',
    streams: Object.fromEntries(Object.entries(UPLINK_CLASS_PRIORITY).map(([s, priority]) => [s, { priority }])),
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
    ...(options.maxItems === undefined ? {} : { maxItems: options.maxItems }),
    ...(options.maxAgeMs === undefined ? {} : { maxAgeMs: options.maxAgeMs }),
    maxItemBytes: 1024,
    ...(options.onDrop === undefined ? {} : { onDrop: options.onDrop }),
  });
  return {
    store(record, cls) {
      const [appended] = outbox.append([{ stream: cls, payload: encodeFrameRecord(record) }]);
      return { stream: cls, seq: appended!.seq };
    },
    lease(maxFrames, maxBytes, leaseMs) {
      const lease = outbox.lease(maxFrames, maxBytes, leaseMs);
      const frames: StoredFrame[] = [];
      const unreadable: SeqRange[] = [];
      for (const item of lease.items) {
        try {
          frames.push({ stream: item.stream as UplinkClass, seq: item.seq, record: decodeFrameRecord(item.payload) });
        } catch {
          // Written by this code and sealed at rest, so this is corruption: forwarding it is pointless.
          unreadable.push({ stream: item.stream, from: item.seq, to: item.seq });
        }
      }
      if (unreadable.length > 0) outbox.ack(unreadable);
      return { id: lease.id, frames };
    },
    ack: (ranges) => (ranges.length === 0 ? 0 : outbox.ack(ranges).items),
    release(leaseId) {
      outbox.release(leaseId);
    },
    stats() {
      const s = outbox.stats();
      return {
        frames: s.items,
        bytes: s.bytes,
        leased: s.leasedItems,
        oldestAgeMs: s.oldestAgeMs,
        byClass: Object.fromEntries(Object.entries(s.streams).map(([k, v]) => [k, v.items])),
        dropsByReason: s.dropsByReason,
      };
    },
    close: () => outbox.close(),
  };
}
