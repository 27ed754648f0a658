// The control plane's HTTP API from the page: same origin, the operator key as a bearer token (kept in this tab's
// sessionStorage only), typed errors from the API's error bodies, and the event stream read with fetch (EventSource
// cannot send an Authorization header).

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const TOKEN_KEY = 'outpost.operator-token';

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const token = savedToken();
  const response = await fetch(path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    cache: 'no-store',
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, 'BAD_RESPONSE', `${path}: not JSON (HTTP ${response.status})`);
  }
  if (!response.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, e?.code ?? 'HTTP_ERROR', e?.message ?? `${path}: HTTP ${response.status}`);
  }
  return parsed as T;
}

/**
 * Reads the control plane's event stream until `signal` aborts, calling `onChange` with each change's topics and
 * `onState` as the stream opens and drops; reconnects after the server's retry delay.
 */
export async function followEvents(
  signal: AbortSignal,
  onChange: (topics: readonly string[]) => void,
  onState: (live: boolean) => void,
): Promise<void> {
  let retryMs = 3000;
  while (!signal.aborted) {
    try {
      const token = savedToken();
      const response = await fetch('/v1/operator/events', {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        cache: 'no-store',
        signal,
      });
      if (!response.ok || !response.body) throw new ApiError(response.status, 'EVENTS', 'no event stream');
      onState(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          let event = 'message';
          let data = '';
          for (const line of message.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('retry: ')) retryMs = Number(line.slice(7)) || retryMs;
          }
          if (event === 'change' || event === 'hello') {
            try {
              onChange(event === 'hello' ? ['all'] : ((JSON.parse(data) as { topics: string[] }).topics ?? []));
            } catch {
              // a malformed event is skipped; the next one refreshes anyway
            }
          }
        }
        if (buffer.length > 65_536) buffer = ''; // never grow without bound on a stream without separators
      }
    } catch {
      // dropped or refused: say so and retry
    }
    onState(false);
    if (signal.aborted) return;
    await new Promise((r) => setTimeout(r, retryMs));
  }
}
