// Opens the gateway's one SQLite file (WAL, synchronous=FULL): the uplink store, the downlink queue, the
// served-device list and the beacon counter, all in the state directory.

import type { Clock } from '../protocol/clock.ts';
import type { Logger } from '../protocol/log.ts';
import { openDatabase, type StoreDatabase } from '../store/database.ts';
import type { DropCount } from '../store/outbox.ts';
import { OUTBOX_MIGRATIONS } from '../store/outbox.ts';
import { createSequence, SEQUENCE_MIGRATIONS, type Sequence } from '../store/sequence.ts';
import {
  createDeviceRegistry,
  createDownlinkQueue,
  type DeviceRegistry,
  type DownlinkQueue,
  GATEWAY_MIGRATIONS,
} from './downlink-queue.ts';
import { createUplinkQueue, type UplinkQueue } from './uplink-queue.ts';

export interface GatewayStoreOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly identitySeed: Uint8Array;
  readonly uplinkMaxBytes?: number;
  readonly uplinkMaxAgeMs?: number;
  readonly downlinkMaxItems?: number;
  readonly onUplinkDrop?: (drop: DropCount) => void;
  readonly nativeBinding?: string | object;
}

export interface GatewayStore {
  readonly db: StoreDatabase;
  readonly uplink: UplinkQueue;
  readonly downlink: DownlinkQueue;
  readonly devices: DeviceRegistry;
  /** Beacon counter (lora-frames.md §4.9: seq of the beacon header). Never repeats. */
  readonly beaconSeq: Sequence;
  close(): void;
}

export function openGatewayStore(path: string, options: GatewayStoreOptions): GatewayStore {
  const db = openDatabase(path, {
    migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS, GATEWAY_MIGRATIONS],
    clock: options.clock,
    log: options.log,
    ...(options.nativeBinding === undefined ? {} : { nativeBinding: options.nativeBinding }),
  });
  try {
    const uplink = createUplinkQueue(db, {
      identitySeed: options.identitySeed,
      ...(options.uplinkMaxBytes === undefined ? {} : { maxBytes: options.uplinkMaxBytes }),
      ...(options.uplinkMaxAgeMs === undefined ? {} : { maxAgeMs: options.uplinkMaxAgeMs }),
      ...(options.onUplinkDrop === undefined ? {} : { onDrop: options.onUplinkDrop }),
    });
    const downlink = createDownlinkQueue(db, {
      ...(options.downlinkMaxItems === undefined ? {} : { maxItems: options.downlinkMaxItems }),
    });
    const devices = createDeviceRegistry(db);
    const beaconSeq = createSequence(db, 'gateway-beacon', { max: 0xffff_ffff, blockSize: 64 });
    return {
      db,
      uplink,
      downlink,
      devices,
      beaconSeq,
      close() {
        uplink.close();
        db.close();
      },
    };
  } catch (e) {
    db.close();
    throw e;
  }
}
