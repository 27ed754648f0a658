// A real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET. Node cannot bind one, so a small
// Perl receiver (perl-base is Essential on Debian) binds it and prints each datagram as a hex line. It reads
// with plain recv(2), so the kernel closes any passed descriptors, as the manager does for BARRIER=1.

import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { createInterface } from 'node:readline';

const RECEIVER = `
use strict; use Socket;
my $path = shift;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
bind($s, pack_sockaddr_un($path)) or die "bind: $!";
$| = 1; print "listening\\n";
while (1) { my $buf; defined(recv($s, $buf, 65536, 0)) or die "recv: $!"; print unpack("H*", $buf), "\\n"; }
`;

export interface NotifySocket {
  path: string;
  /** Every datagram received so far, decoded as UTF-8. */
  readonly messages: string[];
  /** Resolves with the first message (already received or future) that satisfies `match`. */
  waitFor(match: (message: string) => boolean): Promise<string>;
  close(): Promise<void>;
}

/** Binds a datagram socket at `path` (which must not exist) and resolves once it is listening. */
export async function openNotifySocket(path: string): Promise<NotifySocket> {
  const child: ChildProcess = spawn('perl', ['-e', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events = new EventEmitter();
  const messages: string[] = [];
  const lines = createInterface({ input: child.stdout! });
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    listening = resolve;
    child.once('exit', (code) => reject(new Error(`notify receiver exited (${code}) before listening`)));
  });
  lines.on('line', (line) => {
    if (line === 'listening') return listening();
    const message = Buffer.from(line, 'hex').toString('utf8');
    messages.push(message);
    events.emit('message', message);
  });
  await ready;
  return {
    path,
    messages,
    waitFor(match) {
      const seen = messages.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const on = (m: string) => {
          if (!match(m)) return;
          events.off('message', on);
          resolve(m);
        };
        events.on('message', on);
      });
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}
