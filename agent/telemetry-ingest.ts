// Telemetry into the outbox: every record is checked against its stream, numbered from the device's
// never-repeating sequence, signed at the source in a unit (protocol/telemetry.ts), and appended durably
// before anything else happens. A producer is answered only after the commit: acknowledged = on disk.

import { utf8 } from '../protocol/bytes.ts';
import type { Clock } from '../protocol/clock.ts';
import { isOutpostError } from '../protocol/errors.ts';
import {
  encodeTelemetryUnit,
  MAX_STRING_VALUE_LENGTH,
  MAX_UNIT_RECORDS,
  type QualityFlag,
  signTelemetryUnit,
  type TelemetryRecord,
} from '../protocol/telemetry.ts';
import type { Outbox } from '../store/outbox.ts';
import type { Sequence } from '../store/sequence.ts';
import { AgentError } from './errors.ts';
import type { StreamRuntime } from './manifest-builder.ts';
import type { RecentTelemetry } from './recent-telemetry.ts';

export interface IngestInput {
  readonly stream: string;
  readonly value: unknown;
  readonly ts_ms?: number;
  readonly quality?: readonly QualityFlag[];
}

/** `api`: another process on the device (only `ingest` streams); `sampler`: the agent's own samplers. */
export type IngestSource = 'api' | 'sampler';

export interface TelemetryIngest {
  /**
   * Validates, signs and durably queues `records`; resolves with their sequence numbers in input order.
   * All or nothing. Rejects with AgentError STREAM_NOT_FOUND, INGEST_INVALID, DISK_FULL or IO_STORE_FAILED.
   */
  ingest(records: readonly IngestInput[], source: IngestSource): Promise<number[]>;
}

export interface TelemetryIngestOptions {
  readonly outbox: Outbox;
  readonly sequence: Sequence;
  /** The device's Ed25519 seed: units are signed with the identity key. */
  readonly identitySeed: Uint8Array;
  readonly streams: ReadonlyMap<string, StreamRuntime>;
  readonly recent: RecentTelemetry;
  readonly clock: Clock;
  /** Called after each durable append (for metrics and status). */
  readonly onAppended?: (stream: string, records: number, source: IngestSource) => void;
  /** Called when a durable append fails (for status: disk full, storage failing). */
  readonly onWriteError?: (error: AgentError) => void;
  /**
   * False when the disk is down to the space kept for safety records (audit, tool runs): telemetry then
   * stops before the disk is truly full, so tool calls can still be audited.
   */
  readonly hasRoom?: () => boolean;
}

function invalid(index: number, message: string): AgentError {
  return new AgentError('INGEST_INVALID', `record ${index}: ${message}`, { details: { index } });
}

/** Checks `value` against the stream's type. Pure. */
export function checkValue(type: StreamRuntime['spec']['type'], value: unknown): string | undefined {
  switch (type) {
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'value must be a finite number';
    case 'integer':
      return Number.isSafeInteger(value) ? undefined : 'value must be an integer';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'value must be true or false';
    case 'string':
      return typeof value === 'string' && value.length <= MAX_STRING_VALUE_LENGTH
        ? undefined
        : `value must be a string of at most ${MAX_STRING_VALUE_LENGTH} characters`;
  }
}

/** Maps store failures to the agent's codes: a full disk is the producer's to hear about, plainly. */
export function storeWriteError(e: unknown): AgentError {
  if (isOutpostError(e, 'STORE_DISK_FULL')) {
    return new AgentError('DISK_FULL', 'the disk is full: telemetry was not stored (nothing queued earlier is lost)', {
      cause: e,
    });
  }
  if (e instanceof AgentError) return e;
  return new AgentError('IO_STORE_FAILED', `telemetry could not be stored: ${(e as Error).message}`, { cause: e });
}

export function createTelemetryIngest(options: TelemetryIngestOptions): TelemetryIngest {
  const { outbox, sequence, streams, clock } = options;

  return {
    async ingest(records, source) {
      if (records.length === 0) return [];
      // 1. Check everything before numbering anything.
      records.forEach((r, i) => {
        const stream = streams.get(r.stream);
        if (!stream)
          throw new AgentError('STREAM_NOT_FOUND', `no stream named "${r.stream}"`, { details: { index: i } });
        if (source === 'api' && stream.config.source.kind !== 'ingest') {
          throw invalid(i, `stream "${r.stream}" is sampled by the agent; only ingest streams accept pushes`);
        }
        const why = checkValue(stream.spec.type, r.value);
        if (why) throw invalid(i, why);
        if (r.ts_ms !== undefined && !(Number.isSafeInteger(r.ts_ms) && r.ts_ms >= 0)) {
          throw invalid(i, 'ts_ms must be a non-negative integer');
        }
      });
      if (options.hasRoom && !options.hasRoom()) {
        const err = new AgentError(
          'DISK_FULL',
          'the disk is full: telemetry was not stored (the space left is kept for the audit log; nothing queued earlier is lost)',
        );
        options.onWriteError?.(err);
        throw err;
      }
      // 2. Group by stream (order kept), number, sign: one unit per stream and at most MAX_UNIT_RECORDS.
      const byStream = new Map<string, number[]>();
      records.forEach((r, i) => {
        const list = byStream.get(r.stream) ?? [];
        list.push(i);
        byStream.set(r.stream, list);
      });
      const seqs = new Array<number>(records.length);
      const items: { stream: string; payload: Uint8Array }[] = [];
      const made: TelemetryRecord[] = [];
      const nowMs = clock.nowMs();
      try {
        for (const [stream, indices] of byStream) {
          for (let at = 0; at < indices.length; at += MAX_UNIT_RECORDS) {
            const chunk = indices.slice(at, at + MAX_UNIT_RECORDS);
            const { first } = sequence.take(chunk.length);
            const unitRecords: TelemetryRecord[] = chunk.map((idx, k) => {
              const r = records[idx]!;
              seqs[idx] = first + k;
              return {
                seq: first + k,
                stream,
                ts: Math.max(0, Math.floor(r.ts_ms ?? nowMs)),
                value: r.value as TelemetryRecord['value'],
                ...(r.quality && r.quality.length > 0 ? { quality: [...r.quality] } : {}),
              };
            });
            const unit = signTelemetryUnit(options.identitySeed, unitRecords);
            items.push({ stream, payload: utf8(encodeTelemetryUnit(unit)) });
            made.push(...unitRecords);
          }
        }
        // 3. Durable before anyone hears "accepted".
        await outbox.appendGrouped(items);
      } catch (e) {
        if (isOutpostError(e) && e.code.startsWith('TELEMETRY_')) {
          throw new AgentError('INGEST_INVALID', e.message, { cause: e });
        }
        const err = storeWriteError(e);
        options.onWriteError?.(err);
        throw err;
      }
      for (const r of made) options.recent.add({ seq: r.seq, stream: r.stream, ts_ms: r.ts, value: r.value });
      for (const [stream, indices] of byStream) options.onAppended?.(stream, indices.length, source);
      return seqs;
    },
  };
}
