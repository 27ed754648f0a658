// sd_notify(3) for the daemons: READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 to systemd's $NOTIFY_SOCKET.
// Node has no AF_UNIX datagram sockets, so each message is handed to systemd-notify(1), which waits on a
// BARRIER=1 (systemd >= 246) until the manager has processed it: race-free with NotifyAccess=all.
// See docs/operations.md "Readiness and watchdog" for the options weighed.

import { type ChildProcess, spawn as nodeSpawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Logger } from '../protocol/log.ts';
import { silentLogger } from '../protocol/log.ts';

/** What a daemon needs from its service manager; agent/ and gateway/ take this shape as a dependency. */
export interface ServiceNotifier {
  /** True when a service manager listens ($NOTIFY_SOCKET is set). */
  readonly enabled: boolean;
  /** READY=1 (and STATUS= when given): send once the daemon's link state machine has started. */
  ready(status?: string): Promise<boolean>;
  status(text: string): Promise<boolean>;
  /** STOPPING=1: send when shutdown begins. */
  stopping(): Promise<boolean>;
  /** One WATCHDOG=1 keep-alive. */
  watchdogPing(): Promise<boolean>;
  /** Half of $WATCHDOG_USEC in ms when the watchdog is armed for this process, else undefined. */
  readonly watchdogIntervalMs: number | undefined;
  /**
   * Pings every watchdogIntervalMs while `isHealthy()` holds (a stalled event loop stops the pings too, so
   * systemd restarts a hung daemon). Returns a function that stops the pings. No-op when the watchdog is off.
   */
  startWatchdog(isHealthy?: () => boolean): () => void;
}

/** A notify message field name: upper-case letters, digits and '_' (sd_notify(3)). */
const FIELD_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Validates fields and renders them as systemd-notify arguments `NAME=VALUE`; throws RangeError on bad input. */
export function notifyArguments(fields: Readonly<Record<string, string>>): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (!FIELD_NAME.test(name)) throw new RangeError(`bad sd_notify field name ${JSON.stringify(name)}`);
    if (/[\n\0]/.test(value) || value.length > 1024) {
      throw new RangeError(`sd_notify ${name} must be one line of at most 1024 characters`);
    }
    args.push(`${name}=${value}`);
  }
  if (args.length === 0) throw new RangeError('an sd_notify message needs at least one field');
  return args;
}

/**
 * Half of $WATCHDOG_USEC in milliseconds (systemd.service(5) recommends pinging at half the timeout), when
 * the watchdog is set and meant for `pid` ($WATCHDOG_PID absent or equal). Undefined otherwise or when malformed.
 */
export function watchdogIntervalMs(env: Readonly<Record<string, string | undefined>>, pid: number): number | undefined {
  const usecText = env.WATCHDOG_USEC;
  if (!usecText || !/^[1-9][0-9]{0,15}$/.test(usecText)) return undefined;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && forPid !== String(pid)) return undefined;
  return Math.max(1, Math.floor(Number(usecText) / 2000));
}

/** Where systemd-notify lives on Debian and Raspberry Pi OS (merged /usr) and on older layouts. */
export const SYSTEMD_NOTIFY_PATHS: readonly string[] = ['/usr/bin/systemd-notify', '/bin/systemd-notify'];

export interface SdNotifierOptions {
  env?: Readonly<Record<string, string | undefined>>;
  pid?: number;
  /** Path of systemd-notify; default: the first of SYSTEMD_NOTIFY_PATHS that exists. */
  command?: string;
  spawn?: (cmd: string, args: string[], env: Record<string, string>) => ChildProcess;
  /** Kill a systemd-notify that has not finished after this long (its own barrier timeout is 5 s). */
  timeoutMs?: number;
  log?: Logger;
}

/** Creates the notifier; every method resolves to whether systemd-notify reported success, and never throws. */
export function createSdNotifier(options: SdNotifierOptions = {}): ServiceNotifier {
  const env = options.env ?? process.env;
  const pid = options.pid ?? process.pid;
  const log = options.log ?? silentLogger;
  const socket = env.NOTIFY_SOCKET;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const spawn =
    options.spawn ??
    ((cmd, args, childEnv) => nodeSpawn(cmd, args, { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] }));
  const command = options.command ?? SYSTEMD_NOTIFY_PATHS.find((p) => existsSync(p));
  const interval = watchdogIntervalMs(env, pid);
  // Messages go out one at a time and in order (READY before the first WATCHDOG); a ping already queued
  // makes another one redundant.
  let chain: Promise<unknown> = Promise.resolve();
  let pingQueued = false;

  const sendNow = (args: string[]): Promise<boolean> =>
    new Promise((resolve) => {
      if (!socket) return resolve(false);
      if (!command) {
        log.error('sd_notify.unavailable', { reason: 'systemd-notify not found', paths: SYSTEMD_NOTIFY_PATHS });
        return resolve(false);
      }
      let stderr = '';
      let child: ChildProcess;
      try {
        child = spawn(command, args, { NOTIFY_SOCKET: socket });
      } catch (e) {
        log.warning('sd_notify.failed', { fields: args.map((a) => a.split('=')[0]), error: e as Error });
        return resolve(false);
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < 2000) stderr += d;
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        log.warning('sd_notify.failed', { fields: args.map((a) => a.split('=')[0]), error: e });
        resolve(false);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0) {
          log.warning('sd_notify.failed', {
            fields: args.map((a) => a.split('=')[0]),
            code,
            signal,
            stderr: stderr.trim(),
          });
        }
        resolve(code === 0);
      });
    });

  const send = (fields: Record<string, string>): Promise<boolean> => {
    const args = notifyArguments(fields);
    const next = chain.then(() => sendNow(args));
    chain = next;
    return next;
  };

  const watchdogPing = (): Promise<boolean> => {
    if (!socket) return Promise.resolve(false);
    if (pingQueued) return Promise.resolve(true);
    pingQueued = true;
    const next = chain.then(() => {
      pingQueued = false;
      return sendNow(['WATCHDOG=1']);
    });
    chain = next;
    return next;
  };

  return {
    enabled: Boolean(socket),
    watchdogIntervalMs: interval,
    ready: (status) => send(status === undefined ? { READY: '1' } : { READY: '1', STATUS: status }),
    status: (text) => send({ STATUS: text }),
    stopping: () => send({ STOPPING: '1' }),
    watchdogPing,
    startWatchdog(isHealthy = () => true) {
      if (!socket || interval === undefined) return () => {};
      const timer = setInterval(() => {
        if (isHealthy()) void watchdogPing();
        else log.warning('sd_notify.watchdog_withheld', { reason: 'daemon reports itself unhealthy' });
      }, interval);
      timer.unref();
      void watchdogPing();
      return () => clearInterval(timer);
    },
  };
}
