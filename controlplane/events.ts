// What changed, for live views: a small in-process bus the HTTP API turns into a server-sent event stream. Events
// name a topic only ("approvals changed"), never data, so a subscriber re-reads through the authenticated API what
// its principal may see; the bus cannot leak one tenant's records to another.
//
// Every decision the control plane makes is audited, so the store's audit append is where most events are born;
// telemetry is not audited (too many records), so the store's telemetry ingest is the other source.

import type { AuditInput, ControlPlaneStore } from './ports.ts';

export const EVENT_TOPICS = ['devices', 'telemetry', 'approvals', 'calls', 'audit'] as const;
export type EventTopic = (typeof EVENT_TOPICS)[number];

export interface ControlPlaneEvents {
  emit(topic: EventTopic): void;
  /** Calls `listener` for each event until the returned function is called. */
  subscribe(listener: (topic: EventTopic) => void): () => void;
  /** Current subscribers (for metrics and tests). */
  readonly subscribers: number;
}

export function createControlPlaneEvents(): ControlPlaneEvents {
  const listeners = new Set<(topic: EventTopic) => void>();
  return {
    emit(topic) {
      for (const l of listeners) {
        try {
          l(topic);
        } catch {
          // one broken subscriber must not stop the others or the decision that emitted
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    get subscribers() {
      return listeners.size;
    },
  };
}

/** The topic an audit entry's kind touches besides `audit` itself. */
export function topicOfAuditKind(kind: string): EventTopic | undefined {
  if (kind.startsWith('approval.')) return 'approvals';
  if (kind === 'tool.call') return 'calls';
  if (
    kind === 'enroll' ||
    kind.startsWith('session.') ||
    kind.startsWith('manifest.') ||
    kind.startsWith('device.') ||
    kind === 'tenant.create'
  ) {
    return 'devices';
  }
  return undefined;
}

/** The store, emitting an event after each durable audit append and each telemetry ingest that stored records. */
export function observedStore(store: ControlPlaneStore, events: ControlPlaneEvents): ControlPlaneStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'audit') {
        return async (entries: readonly AuditInput[]) => {
          await target.audit(entries);
          const topics = new Set<EventTopic>(['audit']);
          for (const e of entries) {
            const t = topicOfAuditKind(e.kind);
            if (t) topics.add(t);
          }
          for (const t of topics) events.emit(t);
        };
      }
      if (prop === 'ingestTelemetry') {
        return async (...args: Parameters<ControlPlaneStore['ingestTelemetry']>) => {
          const result = await target.ingestTelemetry(...args);
          if (result.stored > 0) events.emit('telemetry');
          return result;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
