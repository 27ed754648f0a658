// A TCP proxy on 127.0.0.1 between a client and a server that misbehaves on command: pass, delay (with
// jitter, order kept), stall (half-open: both directions go silent, sockets stay open, no FIN or RST),
// drop (reset every connection, now and new ones), and reorder (swap whole WebSocket frames after the
// HTTP upgrade, as a misbehaving relay would; TCP itself never reorders bytes).

import { once } from 'node:events';
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'delay'; readonly ms: number; readonly jitterMs?: number }
  | { readonly kind: 'stall' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'reorder'; readonly window: number };

export interface ProxyStats {
  readonly accepted: number;
  readonly open: number;
  readonly resets: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Bytes swallowed while stalled. */
  readonly bytesStalled: number;
  /** WebSocket frames delivered out of order. */
  readonly framesReordered: number;
}

export interface TcpProxy {
  readonly port: number;
  mode(): ProxyMode;
  setMode(mode: ProxyMode): void;
  stats(): ProxyStats;
  close(): Promise<void>;
}

/**
 * Splits a byte stream into whole WebSocket frames (RFC 6455 §5.2) once past the HTTP header of an upgrade
 * (a request with `Upgrade: websocket`, or a `101` response). Plain HTTP (enrollment, token refresh) is not
 * framed: after a header that is not an upgrade, everything passes as raw bytes.
 */
class WsFrameSplitter {
  #buf = Buffer.alloc(0);
  #inHeader = true;
  #plainHttp = false;

  /** Feeds bytes; returns passthrough bytes (HTTP) and complete frames (with their FIN/opcode). */
  push(chunk: Buffer): { raw: Buffer[]; frames: { bytes: Buffer; data: boolean }[] } {
    const raw: Buffer[] = [];
    const frames: { bytes: Buffer; data: boolean }[] = [];
    if (this.#plainHttp) {
      raw.push(chunk);
      return { raw, frames };
    }
    this.#buf = Buffer.concat([this.#buf, chunk]);
    if (this.#inHeader) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return { raw, frames };
      const header = this.#buf.subarray(0, end + 4).toString('latin1');
      raw.push(this.#buf.subarray(0, end + 4));
      this.#buf = this.#buf.subarray(end + 4);
      this.#inHeader = false;
      if (!/^HTTP\/1\.1 101 /.test(header) && !/\r\nupgrade:\s*websocket\r\n/i.test(header)) {
        this.#plainHttp = true;
        if (this.#buf.length > 0) raw.push(this.#buf);
        this.#buf = Buffer.alloc(0);
        return { raw, frames };
      }
    }
    for (;;) {
      if (this.#buf.length < 2) break;
      const b0 = this.#buf[0]!;
      const b1 = this.#buf[1]!;
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.#buf.length < 4) break;
        len = this.#buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.#buf.length < 10) break;
        len = Number(this.#buf.readBigUInt64BE(2));
        at = 10;
      }
      if (b1 & 0x80) at += 4;
      if (this.#buf.length < at + len) break;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      frames.push({ bytes: this.#buf.subarray(0, at + len), data: fin && (opcode === 1 || opcode === 2) });
      this.#buf = this.#buf.subarray(at + len);
    }
    return { raw, frames };
  }
}

export async function startTcpProxy(options: {
  targetPort: number;
  targetHost?: string;
  seed?: number;
}): Promise<TcpProxy> {
  let current: ProxyMode = { kind: 'pass' };
  const sockets = new Set<Socket>();
  let accepted = 0;
  let resets = 0;
  let bytesUp = 0;
  let bytesDown = 0;
  let bytesStalled = 0;
  let framesReordered = 0;
  let rand = options.seed ?? 1;
  const random = () => {
    rand = (rand * 1_103_515_245 + 12_345) % 2_147_483_648;
    return rand / 2_147_483_648;
  };

  const reset = (s: Socket) => {
    if (!s.destroyed) {
      s.resetAndDestroy();
      resets++;
    }
  };

  /** One direction of one connection. */
  const pipe = (from: Socket, to: Socket, count: (n: number) => void) => {
    const splitter = new WsFrameSplitter();
    let lastDueMs = 0;
    let held: Buffer[] = [];
    let heldTimer: NodeJS.Timeout | undefined;
    const write = (b: Buffer) => {
      if (to.destroyed) return;
      count(b.length);
      to.write(b);
    };
    const flushHeld = () => {
      clearTimeout(heldTimer);
      heldTimer = undefined;
      if (held.length > 1) framesReordered += held.length;
      // Deliver the window in reverse: the strongest reordering a window allows.
      for (const f of held.reverse()) write(f);
      held = [];
    };
    from.on('data', (chunk: Buffer) => {
      const m = current;
      if (m.kind === 'stall') {
        bytesStalled += chunk.length;
        return;
      }
      if (m.kind === 'drop') return;
      if (m.kind === 'delay') {
        const due = Math.max(lastDueMs, performance.now() + m.ms + (m.jitterMs ?? 0) * random());
        lastDueMs = due;
        setTimeout(() => write(chunk), Math.max(0, due - performance.now()));
        return;
      }
      if (m.kind === 'pass') {
        // Keep the splitter in step so a later switch to reorder starts at a frame boundary.
        const { raw, frames } = splitter.push(chunk);
        if (held.length > 0) flushHeld();
        for (const r of raw) write(r);
        for (const f of frames) write(f.bytes);
        return;
      }
      const { raw, frames } = splitter.push(chunk);
      for (const r of raw) write(r);
      for (const f of frames) {
        if (!f.data) {
          flushHeld();
          write(f.bytes);
          continue;
        }
        held.push(f.bytes);
        if (held.length >= m.window) flushHeld();
      }
      // A window that does not fill within 50 ms goes out as it is, so a quiet link is not starved.
      if (held.length > 0 && !heldTimer) heldTimer = setTimeout(flushHeld, 50);
    });
    from.on('close', () => {
      clearTimeout(heldTimer);
      if (current.kind === 'stall') return; // half-open: the other side hears nothing
      to.end();
    });
    from.on('error', () => reset(to));
  };

  const server: Server = createServer((client) => {
    accepted++;
    if (current.kind === 'drop') {
      reset(client);
      return;
    }
    const upstream = createConnection({ port: options.targetPort, host: options.targetHost ?? '127.0.0.1' });
    sockets.add(client);
    sockets.add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    pipe(client, upstream, (n) => (bytesUp += n));
    pipe(upstream, client, (n) => (bytesDown += n));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  return {
    port: (server.address() as AddressInfo).port,
    mode: () => current,
    setMode(mode) {
      current = mode;
      if (mode.kind === 'drop') for (const s of [...sockets]) reset(s);
    },
    stats: () => ({
      accepted,
      open: sockets.size / 2,
      resets,
      bytesUp,
      bytesDown,
      bytesStalled,
      framesReordered,
    }),
    async close() {
      for (const s of [...sockets]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
