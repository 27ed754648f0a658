// Telemetry from a session into the store, exactly once: every unit's signature verified, its device checked
// against the session (a device sends its own; a gateway relays enrolled devices of its tenant), every record
// checked against the accepted manifest, then one durable write, then acknowledgement by seq range.

import { isOutpostError } from '../protocol/errors.ts';
import type { StreamSpec } from '../protocol/manifest.ts';
import { type TelemetryUnit, valueFitsStream, verifyTelemetryUnit } from '../protocol/telemetry.ts';
import type { DeviceRecord, StoredTelemetryRecord, TelemetryIngestBatch } from './ports.ts';

/** A unit that could not be accepted, with the wire code to report (envelope.md §8). */
export interface RefusedUnit {
  readonly index: number;
  readonly device: string;
  readonly code: 'ENVELOPE_BAD_SIGNATURE' | 'FORBIDDEN';
  readonly reason: string;
}

export interface PreparedBatch {
  readonly batch: TelemetryIngestBatch;
  readonly refused: readonly RefusedUnit[];
  /** Closed seq ranges to acknowledge once the batch is stored, merged per device. */
  readonly ranges: readonly { readonly device: string; readonly fromSeq: number; readonly toSeq: number }[];
  readonly misfits: number;
}

/** The session's view of who may send units: itself (device) or any active device of its tenant (gateway). */
export interface IngestPeer {
  readonly tid: string;
  readonly device: string;
  readonly role: 'device' | 'gateway';
}

/** Closed ranges merged where they touch or overlap, per device, sorted. Pure. */
export function mergeRanges(
  ranges: readonly { device: string; fromSeq: number; toSeq: number }[],
): { device: string; fromSeq: number; toSeq: number }[] {
  const sorted = [...ranges].sort((a, b) =>
    a.device === b.device ? a.fromSeq - b.fromSeq : a.device < b.device ? -1 : 1,
  );
  const out: { device: string; fromSeq: number; toSeq: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.device === r.device && r.fromSeq <= last.toSeq + 1) last.toSeq = Math.max(last.toSeq, r.toSeq);
    else out.push({ ...r });
  }
  return out;
}

/**
 * A record as stored, marked `misfit` when its stream is not in the accepted manifest or the value does not fit the
 * stream's type. A null value (a LoRa reading with no value) is kept as a misfit with quality `null`, so that its
 * seq is still stored and acknowledged exactly once.
 */
export function storedRecord(
  spec: StreamSpec | undefined,
  r: {
    readonly seq: number;
    readonly stream: string;
    readonly ts: number;
    readonly value: number | boolean | string | null;
    readonly quality?: readonly string[];
  },
): StoredTelemetryRecord {
  if (r.value === null) {
    return { seq: r.seq, stream: r.stream, ts: r.ts, value: '', quality: [...(r.quality ?? []), 'null'], misfit: true };
  }
  return {
    seq: r.seq,
    stream: r.stream,
    ts: r.ts,
    value: r.value,
    ...(r.quality ? { quality: r.quality } : {}),
    misfit: !spec || !valueFitsStream(r.value, spec.type),
  };
}

/** The accepted manifest's streams by name. */
export function streamIndex(device: DeviceRecord | undefined): Map<string, StreamSpec> {
  return new Map((device?.accepted?.manifest.streams ?? []).map((s) => [s.name, s]));
}

/**
 * Verifies and prepares the units of one batch. `lookup` returns the device record of a unit's device (the session's
 * own for a device session). Pure but for the signature checks; never throws for bad units (they are `refused`).
 */
export async function prepareTelemetryBatch(
  peer: IngestPeer,
  units: readonly TelemetryUnit[],
  lookup: (device: string) => Promise<DeviceRecord | undefined>,
  receivedMs: number,
): Promise<PreparedBatch> {
  const refused: RefusedUnit[] = [];
  const accepted: { device: string; records: StoredTelemetryRecord[] }[] = [];
  const ranges: { device: string; fromSeq: number; toSeq: number }[] = [];
  const streamsByDevice = new Map<string, Map<string, StreamSpec>>();
  let misfits = 0;
  for (const [index, unit] of units.entries()) {
    if (peer.role === 'device' && unit.device !== peer.device) {
      refused.push({ index, device: unit.device, code: 'FORBIDDEN', reason: 'a device sends only its own units' });
      continue;
    }
    try {
      verifyTelemetryUnit(unit);
    } catch (e) {
      if (!isOutpostError(e)) throw e;
      refused.push({ index, device: unit.device, code: 'ENVELOPE_BAD_SIGNATURE', reason: e.code });
      continue;
    }
    let streams = streamsByDevice.get(unit.device);
    if (!streams) {
      const record = await lookup(unit.device);
      if (!record || record.tid !== peer.tid || record.status !== 'active') {
        refused.push({ index, device: unit.device, code: 'FORBIDDEN', reason: 'device not enrolled in this tenant' });
        continue;
      }
      streams = streamIndex(record);
      streamsByDevice.set(unit.device, streams);
    }
    const records = unit.records.map((r) => {
      const stored = storedRecord(streams.get(r.stream), r);
      if (stored.misfit) misfits++;
      return stored;
    });
    accepted.push({ device: unit.device, records });
    const first = unit.records[0]!.seq;
    ranges.push({ device: unit.device, fromSeq: first, toSeq: first + unit.records.length - 1 });
  }
  return { batch: { tid: peer.tid, receivedMs, units: accepted }, refused, ranges: mergeRanges(ranges), misfits };
}
