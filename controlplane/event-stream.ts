// GET /v1/operator/events: the event bus (events.ts) as a server-sent event stream for live views. Each change is a
// topic list, coalesced over a short window so a burst of telemetry is one event; a comment line every 15 s keeps
// idle connections alive through proxies and lets the host notice a vanished client. Streams per process are capped.

import type { Principal } from './auth.ts';
import type { ControlPlaneContext } from './context.ts';
import { ControlPlaneError } from './errors.ts';
import { EVENT_TOPICS, type EventTopic } from './events.ts';

/** Open event streams per control-plane process; more are refused with 429. */
export const MAX_EVENT_STREAMS = 32;
const COALESCE_MS = 250;
const KEEPALIVE_MS = 15_000;

const encoder = new TextEncoder();

/** One SSE message: `event:` and a one-line JSON `data:`. */
export function sseMessage(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function eventStream(ctx: ControlPlaneContext, principal: Principal, signal: AbortSignal): Response {
  // Each stream is one subscriber of the process's bus: the cap protects the process, whatever the tenants.
  if (ctx.events.subscribers >= MAX_EVENT_STREAMS) {
    throw new ControlPlaneError('RATE_LIMITED', `at most ${MAX_EVENT_STREAMS} event streams are open at once`);
  }
  let cleanup = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const pending = new Set<EventTopic>();
      let cancelFlush: (() => void) | undefined;
      let cancelKeepalive: (() => void) | undefined;
      let closed = false;
      const write = (text: string) => {
        if (closed) return;
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          cleanup();
        }
      };
      const keepalive = () => {
        write(': keepalive\n\n');
        cancelKeepalive = ctx.scheduler.after(KEEPALIVE_MS, keepalive);
      };
      const unsubscribe = ctx.events.subscribe((topic) => {
        pending.add(topic);
        cancelFlush ??= ctx.scheduler.after(COALESCE_MS, () => {
          cancelFlush = undefined;
          const topics = [...pending];
          pending.clear();
          write(sseMessage('change', { topics }));
        });
      });
      cleanup = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        cancelFlush?.();
        cancelKeepalive?.();
        try {
          controller.close();
        } catch {
          // already closed by the reader's cancel
        }
      };
      signal.addEventListener('abort', () => cleanup(), { once: true });
      // `retry` tells a browser's EventSource how soon to reconnect; `hello` says who is listening to what.
      write(`retry: 3000\n${sseMessage('hello', { subject: principal.subject, topics: EVENT_TOPICS })}`);
      cancelKeepalive = ctx.scheduler.after(KEEPALIVE_MS, keepalive);
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(body, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    },
  });
}
