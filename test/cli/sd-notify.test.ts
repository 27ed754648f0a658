// sd_notify through systemd-notify(1) to a real datagram socket: READY=1, STATUS=, STOPPING=1 and WATCHDOG=1
// arrive, each followed by the BARRIER=1 that makes the hand-off race-free; nothing is sent without $NOTIFY_SOCKET.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSdNotifier, notifyArguments, watchdogIntervalMs } from '../../cli/sd-notify.ts';
import { createMemoryLogger } from '../../protocol/log.ts';
import { type NotifySocket, openNotifySocket } from '../support/notify-socket.ts';

describe('notifyArguments', () => {
  it('renders NAME=VALUE arguments', () => {
    assert.deepEqual(notifyArguments({ READY: '1', STATUS: 'link up: wss' }), ['READY=1', 'STATUS=link up: wss']);
  });
  const bad: Array<[string, Record<string, string>]> = [
    ['no fields', {}],
    ['a lower-case name', { ready: '1' }],
    ['a name with =', { 'A=B': '1' }],
    ['a newline in a value (would inject a field)', { STATUS: 'x\nREADY=1' }],
    ['a NUL in a value', { STATUS: 'x\0' }],
    ['an overlong value', { STATUS: 'x'.repeat(1025) }],
  ];
  for (const [name, fields] of bad)
    it(`rejects ${name}`, () => assert.throws(() => notifyArguments(fields), RangeError));
});

describe('watchdogIntervalMs', () => {
  const table: Array<[string, Record<string, string>, number | undefined]> = [
    ['half of WATCHDOG_USEC', { WATCHDOG_USEC: '30000000' }, 15_000],
    ['for this pid', { WATCHDOG_USEC: '20000000', WATCHDOG_PID: '42' }, 10_000],
    ['not for another pid', { WATCHDOG_USEC: '20000000', WATCHDOG_PID: '43' }, undefined],
    ['unset', {}, undefined],
    ['zero', { WATCHDOG_USEC: '0' }, undefined],
    ['malformed', { WATCHDOG_USEC: '30s' }, undefined],
    ['at least 1 ms', { WATCHDOG_USEC: '1' }, 1],
  ];
  for (const [name, env, want] of table) it(name, () => assert.equal(watchdogIntervalMs(env, 42), want));
});

describe('createSdNotifier with systemd-notify and a real notify socket', () => {
  let dir: string;
  let sock: NotifySocket;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-notify-'));
    sock = await openNotifySocket(join(dir, 'notify'));
  });
  after(async () => {
    await sock.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers READY=1 with STATUS, then STOPPING=1, each behind a barrier', async () => {
    const notifier = createSdNotifier({ env: { NOTIFY_SOCKET: sock.path }, pid: process.pid });
    assert.equal(notifier.enabled, true);
    assert.equal(await notifier.ready('link state machine started'), true);
    await sock.waitFor((m) => m === 'READY=1\nSTATUS=link state machine started');
    assert.equal(await notifier.stopping(), true);
    await sock.waitFor((m) => m === 'STOPPING=1');
    // systemd-notify returned only after the receiver dropped each barrier's descriptor.
    assert.ok(sock.messages.filter((m) => m === 'BARRIER=1').length >= 2);
  });

  it('pings WATCHDOG=1 at half of WATCHDOG_USEC while healthy', async () => {
    const notifier = createSdNotifier({
      env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) },
      pid: process.pid,
    });
    assert.equal(notifier.watchdogIntervalMs, 50);
    const start = sock.messages.length;
    const pings = () => sock.messages.slice(start).filter((m) => m === 'WATCHDOG=1').length;
    const stop = notifier.startWatchdog();
    try {
      // Two pings: the immediate one and at least one from the timer.
      await sock.waitFor(() => pings() >= 2);
    } finally {
      stop();
    }
  });

  it('withholds pings while the daemon reports itself unhealthy, and says so', async () => {
    const { logger, lines } = createMemoryLogger();
    const notifier = createSdNotifier({
      env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '20000' },
      pid: process.pid,
      log: logger,
    });
    let checks = 0;
    const warned = new Promise<void>((resolve) => {
      const stop = notifier.startWatchdog(() => {
        checks++;
        if (checks === 3) {
          stop();
          resolve();
        }
        return false;
      });
    });
    await warned;
    assert.equal(lines.filter((l) => l.includes('sd_notify.watchdog_withheld')).length, 3);
  });

  it('reports failure (false) and logs when the socket is gone', async () => {
    const { logger, lines } = createMemoryLogger();
    const notifier = createSdNotifier({ env: { NOTIFY_SOCKET: join(dir, 'absent') }, log: logger });
    assert.equal(await notifier.ready(), false);
    assert.ok(lines.some((l) => l.includes('sd_notify.failed')));
  });
});

describe('createSdNotifier outside systemd', () => {
  it('sends nothing and spawns nothing without $NOTIFY_SOCKET', async () => {
    let spawned = 0;
    const notifier = createSdNotifier({
      env: { WATCHDOG_USEC: '1000000' },
      spawn: () => {
        spawned++;
        throw new Error('must not spawn');
      },
    });
    assert.equal(notifier.enabled, false);
    assert.equal(await notifier.ready(), false);
    assert.equal(await notifier.watchdogPing(), false);
    notifier.startWatchdog()();
    assert.equal(spawned, 0);
  });
});
