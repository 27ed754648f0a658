// The Meshtastic driver end to end: real socat ptys, the driver opening the host side through
// serialport, emulated firmware on the device side, the simulated air between two radios. Every
// applicable pitfall of RADIO_PROTOCOLS §5 (M1–M11) has a named test here.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SerialPort } from 'serialport';
import {
  MESHTASTIC_SESSION_TIMEOUT_MS,
  type MeshtasticEmulator,
  type MeshtasticEmulatorOptions,
  startMeshtasticEmulator,
} from '../../../firmware-bridge/emulator/meshtastic-emulator.ts';
import { openPtyPair } from '../../../firmware-bridge/emulator/pty.ts';
import { createSimulatedAir, type SimulatedAir } from '../../../firmware-bridge/emulator/simulated-air.ts';
import {
  createMeshtasticRadio,
  DEFAULT_MESHTASTIC_TIMING,
  type MeshtasticRadio,
  type MeshtasticRadioOptions,
  type MeshtasticTiming,
} from '../../../firmware-bridge/meshtastic/driver.ts';
import { MeshtasticError } from '../../../firmware-bridge/meshtastic/errors.ts';
import { probeMeshtastic } from '../../../firmware-bridge/meshtastic/probe.ts';
import { decodeToRadio, NONCE_ONLY_CONFIG, NONCE_ONLY_NODES } from '../../../firmware-bridge/meshtastic/protobuf.ts';
import { createStreamDecoder } from '../../../firmware-bridge/meshtastic/stream-framer.ts';
import type { RadioStatus, ReceivedPacket, SendOutcome } from '../../../firmware-bridge/radio.ts';
import { FakeClock } from '../../../protocol/clock.ts';
import { isOutpostError } from '../../../protocol/errors.ts';

const run = promisify(execFile);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outpost-mt-drv-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Short timeouts so each scenario takes well under a second of real time. */
const FAST: Partial<MeshtasticTiming> = {
  tickMs: 10,
  wakeDelayMs: 5,
  handshakeTimeoutMs: 5_000,
  queueStatusTimeoutMs: 5_000,
  ackTimeoutMs: 20_000,
  presenceCheckMs: 30,
  idleFlushMs: 1_000,
  backoffInitialMs: 30,
  backoffMaxMs: 300,
  queueFullPollMs: 100,
  heartbeatIntervalMs: 60_000,
};

interface Rig {
  readonly air: SimulatedAir;
  emulator(name: string, nodeNum: number, extra?: Partial<MeshtasticEmulatorOptions>): Promise<MeshtasticEmulator>;
  driver(path: string, extra?: Partial<MeshtasticRadioOptions>): MeshtasticRadio;
  close(): Promise<void>;
}

let rigCount = 0;
function rig(): Rig {
  const air = createSimulatedAir({ timeScale: 25 });
  const owned: { close(): Promise<void> }[] = [];
  const prefix = `r${++rigCount}`;
  return {
    air,
    async emulator(name, nodeNum, extra = {}) {
      const e = await startMeshtasticEmulator({ dir, name: `${prefix}-${name}`, id: name, air, nodeNum, ...extra });
      owned.push(e);
      return e;
    },
    driver(path, extra = {}) {
      const d = createMeshtasticRadio({ path, ...extra, timing: { ...FAST, ...extra.timing } });
      owned.push(d);
      return d;
    },
    async close() {
      for (const o of owned.reverse()) await o.close();
      air.close();
    },
  };
}

async function until(radio: MeshtasticRadio, state: RadioStatus['state'], extra?: (s: RadioStatus) => boolean) {
  for await (const s of radio.statusChanges()) {
    if (s.state === state && (!extra || extra(s))) return s;
  }
  throw new Error(`radio closed before reaching ${state}`);
}

/** Collects received packets and resolves waits for them. */
function inbox(radio: MeshtasticRadio) {
  const got: ReceivedPacket[] = [];
  const waiters = new Set<() => void>();
  void (async () => {
    for await (const p of radio.packets()) {
      got.push(p);
      for (const w of [...waiters]) w();
    }
  })();
  return {
    got,
    async waitFor(predicate: (ps: ReceivedPacket[]) => boolean) {
      if (predicate(got)) return;
      await new Promise<void>((resolve) => {
        const w = () => {
          if (!predicate(got)) return;
          waiters.delete(w);
          resolve();
        };
        waiters.add(w);
      });
    },
  };
}

const show = (o: SendOutcome) => (o.state === 'failed' ? `failed:${o.code}:${o.reason}` : o.state);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const stuffed = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => [0x94, 0xc3, 0x00, (seed + i) & 0xff][i % 4]!);

async function pair(r: Rig, extraA: Partial<MeshtasticEmulatorOptions> = {}, extraB = {}) {
  const ea = await r.emulator('a', 0xa1, extraA);
  const eb = await r.emulator('b', 0xb2, extraB);
  const da = r.driver(ea.hostPath, { destination: 0xb2 });
  const db = r.driver(eb.hostPath, { destination: 0xa1 });
  const ia = inbox(da);
  const ib = inbox(db);
  await Promise.all([da.open(), db.open()]);
  await Promise.all([until(da, 'ready'), until(db, 'ready')]);
  return { ea, eb, da, db, ia, ib };
}

describe('meshtastic driver over ptys', () => {
  it('two radios exchange packets both ways with ACKs, and report their LoRa parameters', async () => {
    const r = rig();
    try {
      const { da, db, ia, ib } = await pair(r);
      const s = da.status();
      assert.equal(s.state, 'ready');
      if (s.state === 'ready') {
        assert.equal(s.firmware, '2.7.15.567b8ea');
        assert.deepEqual(
          { ...s.params },
          {
            freqHz: 869_525_000,
            bandwidthHz: 250_000,
            spreadingFactor: 11,
            codingRate: 5,
            txPowerDbm: 27,
            preambleSymbols: 16,
            region: 'EU868',
          },
        );
      }
      const ab = await da.send(Uint8Array.from([1, 2, 3]), { wantAck: true });
      assert.equal(ab.state, 'acked');
      assert.ok(ab.state === 'acked' && ab.airtimeMs > 300, 'LongFast airtime is reported');
      await ib.waitFor((ps) => ps.length === 1);
      assert.equal(hex(ib.got[0]!.payload), '010203');
      assert.equal(ib.got[0]!.from, '!000000a1');
      assert.ok(ib.got[0]!.rssiDbm < 0);
      const ba = await db.send(Uint8Array.from([9, 8, 7]));
      assert.equal(ba.state, 'acked');
      await ia.waitFor((ps) => ps.length === 1);
      assert.equal(hex(ia.got[0]!.payload), '090807');
      const noAck = await da.send(Uint8Array.from([5]), { wantAck: false });
      assert.equal(noAck.state, 'sent');
      assert.ok(da.airtime().totalMs > 0);
      assert.equal(da.diagnostics().node?.id, '!000000a1');
      assert.equal(da.diagnostics().node?.preset, 'LongFast');
    } finally {
      await r.close();
    }
  });

  it('sends want_config with a random nonce after 32 wake bytes', async () => {
    const pty = await openPtyPair({ dir, name: 'wake' });
    const device = new SerialPort({ path: pty.devicePath, baudRate: 115_200, autoOpen: false, lock: false });
    await new Promise<void>((res, rej) => device.open((e) => (e ? rej(e) : res())));
    const bytes: number[] = [];
    const seen = new Promise<void>((resolve) =>
      device.on('data', (c: Buffer) => {
        bytes.push(...c);
        if (bytes.length >= 32 + 4 + 2) resolve();
      }),
    );
    const d = createMeshtasticRadio({ path: pty.hostPath, timing: { ...FAST, handshakeTimeoutMs: 60_000 } });
    try {
      void d.open();
      await seen;
      assert.deepEqual(bytes.slice(0, 32), new Array(32).fill(0xc3));
      const frames = createStreamDecoder().push(Uint8Array.from(bytes.slice(32)));
      const first = frames.find((e) => e.kind === 'frame');
      assert.ok(first && first.kind === 'frame');
      const m = decodeToRadio(first.body);
      assert.equal(m.payload.kind, 'wantConfigId');
      const nonce = m.payload.kind === 'wantConfigId' ? m.payload.wantConfigId : 0;
      assert.ok(nonce !== 0 && nonce !== NONCE_ONLY_CONFIG && nonce !== NONCE_ONLY_NODES);
    } finally {
      await d.close();
      await new Promise<void>((res) => device.close(() => res()));
      await pty.close();
    }
  });

  it('M2: payloads full of 0x94 0xC3 travel both ways intact', async () => {
    const r = rig();
    try {
      const { da, db, ia, ib } = await pair(r);
      const ab = stuffed(233, 1);
      const ba = stuffed(200, 7);
      const [o1, o2] = await Promise.all([da.send(ab), db.send(ba)]);
      assert.equal(show(o1), 'acked');
      assert.equal(show(o2), 'acked');
      await ib.waitFor((ps) => ps.length === 1);
      await ia.waitFor((ps) => ps.length === 1);
      assert.equal(hex(ib.got[0]!.payload), hex(ab));
      assert.equal(hex(ia.got[0]!.payload), hex(ba));
      assert.equal(da.diagnostics().counters.tornFrames, 0);
    } finally {
      await r.close();
    }
  });

  it('M1: a stray 0x94 in the console text before the handshake does not stop it', async () => {
    const r = rig();
    try {
      const e = await r.emulator('m1', 0x31, { bootLogStrayByte: true, consoleLineIntervalMs: 2 });
      const d = r.driver(e.hostPath, { timing: { wakeDelayMs: 40 } });
      await e.injectGarbage(Uint8Array.from([0x94, 0x20, 0x94]));
      await d.open();
      await until(d, 'ready');
      assert.ok(d.diagnostics().counters.consoleBytes > 0, 'console text was read and set aside');
    } finally {
      await r.close();
    }
  });

  it('M8: a payload above 233 bytes is refused locally, never sent', async () => {
    const r = rig();
    try {
      const e = await r.emulator('m8', 0x38);
      const d = r.driver(e.hostPath);
      await d.open();
      await until(d, 'ready');
      const before = e.state().packetsFromHost;
      const o = await d.send(new Uint8Array(234));
      assert.equal(o.state, 'failed');
      assert.equal(o.state === 'failed' && o.code, 'PAYLOAD_TOO_LARGE');
      assert.equal(d.maxPayloadBytes, 233);
      assert.equal((await d.send(new Uint8Array(233), { wantAck: false })).state, 'sent');
      assert.equal(e.state().packetsFromHost, before + 1);
    } finally {
      await r.close();
    }
  });

  it('M9: a lost packet fails with the routing reason name (MAX_RETRANSMIT)', async () => {
    const r = rig();
    try {
      const { da } = await pair(r);
      r.air.setLinkLossRate('a', 'b', 1);
      const o = await da.send(Uint8Array.from([1]));
      assert.deepEqual(
        { state: o.state, code: o.state === 'failed' ? o.code : '' },
        { state: 'failed', code: 'MAX_RETRANSMIT' },
      );
      r.air.setLinkLossRate('a', 'b', undefined);
      assert.equal((await da.send(Uint8Array.from([2]))).state, 'acked');
    } finally {
      await r.close();
    }
  });

  it('M10: a silent reboot mid-transfer is noticed by its console text; the driver re-handshakes and loses nothing', async () => {
    const r = rig();
    try {
      const { ea, da, ib } = await pair(r);
      const payloads = Array.from({ length: 6 }, (_, i) => Uint8Array.from([0xee, i]));
      const sends = payloads.map((p) => da.send(p));
      await ea.nextEvent((e) => e.type === 'tx');
      ea.reboot('silent');
      const outcomes = await Promise.all(sends);
      assert.deepEqual(
        outcomes.map(show),
        payloads.map(() => 'acked'),
      );
      await ib.waitFor((ps) => payloads.every((p) => ps.some((g) => hex(g.payload) === hex(p))));
      assert.ok((da.diagnostics().rehandshakes['console-text'] ?? 0) >= 1);
      assert.equal(da.status().state, 'ready');
    } finally {
      await r.close();
    }
  });

  it('M10: a silent reboot without console text is caught by the missing queueStatus', async () => {
    const r = rig();
    try {
      const ea = await r.emulator('a', 0xa1, { bootLog: [] });
      await r.emulator('b', 0xb2);
      const da = r.driver(ea.hostPath, { destination: 0xb2, timing: { queueStatusTimeoutMs: 300 } });
      await da.open();
      await until(da, 'ready');
      ea.reboot('silent'); // HEAD firmware, no boot log reaching the host: only silence tells
      const o = await da.send(Uint8Array.from([7, 7]));
      assert.equal(o.state, 'acked');
      assert.ok((da.diagnostics().rehandshakes['no-queue-status'] ?? 0) >= 1);
    } finally {
      await r.close();
    }
  });

  it('old firmware: a rebooted frame triggers a re-handshake', async () => {
    const r = rig();
    try {
      const e = await r.emulator('old', 0x51, { rebootStyle: 'rebooted-frame', bootLog: [] });
      const d = r.driver(e.hostPath);
      await d.open();
      await until(d, 'ready');
      const handshakes = d.diagnostics().counters.handshakes;
      const again = e.nextEvent((ev) => ev.type === 'config-sent');
      e.reboot();
      await again;
      await until(d, 'ready');
      assert.equal(d.diagnostics().rehandshakes.rebooted, 1);
      assert.equal(d.diagnostics().counters.handshakes, handshakes + 1);
      assert.equal(d.diagnostics().node?.rebootCount, 2);
    } finally {
      await r.close();
    }
  });

  it('M5: unplug → absent, replug → reopened with backoff, nothing queued is lost', async () => {
    const r = rig();
    try {
      const { ea, da, ib } = await pair(r);
      await ea.unplug();
      await until(da, 'absent');
      const sends = [1, 2, 3].map((i) => da.send(Uint8Array.from([0x55, i])));
      await ea.replug();
      await until(da, 'ready');
      const outcomes = await Promise.all(sends);
      assert.deepEqual(outcomes.map(show), ['acked', 'acked', 'acked']);
      await ib.waitFor((ps) => ['5501', '5502', '5503'].every((h) => ps.some((p) => hex(p.payload) === h)));
      assert.ok(da.diagnostics().counters.opens >= 2);
    } finally {
      await r.close();
    }
  });

  it('M5: a fast unplug/replug at the same path is noticed (the device node changed)', async () => {
    const r = rig();
    try {
      const { ea, da, db, ia } = await pair(r);
      const absent = until(da, 'absent');
      await ea.unplug();
      await ea.replug();
      await absent;
      await until(da, 'ready');
      assert.equal((await db.send(Uint8Array.from([3]))).state, 'acked');
      await ia.waitFor((ps) => ps.length === 1);
    } finally {
      await r.close();
    }
  });

  it('M6: an absent or busy port never crashes the process; the driver waits and connects when it can', async () => {
    const r = rig();
    try {
      const d = r.driver(join(dir, 'not-yet'));
      await d.open();
      assert.equal(d.status().state, 'absent');
      const e = await r.emulator('late', 0x61);
      // Hold the port with an exclusive lock: the driver reports it busy and retries.
      const holder = new SerialPort({ path: e.hostPath, baudRate: 115_200, autoOpen: false, lock: true });
      await new Promise<void>((res, rej) => holder.open((err) => (err ? rej(err) : res())));
      const d2 = r.driver(e.hostPath);
      await d2.open();
      const s = await until(d2, 'error');
      assert.equal(s.state === 'error' && s.code, 'PORT_FAILED');
      await new Promise<void>((res) => holder.close(() => res()));
      await until(d2, 'ready');
    } finally {
      await r.close();
    }
  });

  it('M3: heartbeats keep the session alive far past the 15-minute timeout; without them it dies', async () => {
    // Both sides read one fake clock: 50 minutes pass in ten steps without waiting for any of them.
    const r = rig();
    const clock = new FakeClock();
    try {
      const e = await r.emulator('hb', 0x71, { clock, sessionCheckIntervalMs: 5 });
      const d = r.driver(e.hostPath, { clock, timing: { rehandshakeAfterSilenceMs: 0 } });
      let closedSessions = 0;
      e.onEvent((ev) => {
        if (ev.type === 'session' && !ev.open) closedSessions++;
      });
      await d.open();
      await until(d, 'ready');
      for (let i = 0; i < 10; i++) {
        const heartbeat = e.nextEvent((ev) => ev.type === 'to-radio' && ev.message.payload.kind === 'heartbeat');
        clock.advance(DEFAULT_MESHTASTIC_TIMING.heartbeatIntervalMs);
        await heartbeat;
      }
      assert.equal(closedSessions, 0, '50 minutes with a heartbeat every 5 and the session is still open');
      assert.equal(e.state().session, 'packets');
      // Control: the same radio with heartbeats off loses its session after 15 minutes.
      const e2 = await r.emulator('nohb', 0x72, { clock, sessionCheckIntervalMs: 5 });
      const d2 = r.driver(e2.hostPath, {
        clock,
        timing: { heartbeatIntervalMs: 3_600_000, rehandshakeAfterSilenceMs: 0 },
      });
      await d2.open();
      await until(d2, 'ready');
      const ended = e2.nextEvent((ev) => ev.type === 'session' && !ev.open);
      clock.advance(MESHTASTIC_SESSION_TIMEOUT_MS + 1_000);
      assert.deepEqual(await ended, { type: 'session', open: false, reason: 'timeout' });
    } finally {
      await r.close();
    }
  });

  it('queue full: the driver never overfills the device queue and sends everything once there is room', async () => {
    const r = rig();
    try {
      const { ea, da, ib } = await pair(r);
      ea.setQueueFull(true);
      const sends = [1, 2, 3, 4].map((i) => da.send(Uint8Array.from([0x0f, i])));
      await ea.nextEvent((ev) => ev.type === 'queue-full');
      // While full, only polls (heartbeats) go to the radio, no further packets.
      await ea.nextEvent((ev) => ev.type === 'to-radio' && ev.message.payload.kind === 'heartbeat');
      assert.equal(ea.state().queueFullRefusals, 1);
      ea.setQueueFull(false);
      const outcomes = await Promise.all(sends);
      assert.deepEqual(outcomes.map(show), ['acked', 'acked', 'acked', 'acked']);
      // The mesh does not promise order (a retransmitted packet may arrive after the next one).
      await ib.waitFor((ps) => ps.length >= 4);
      assert.deepEqual(ib.got.map((p) => hex(p.payload)).sort(), ['0f01', '0f02', '0f03', '0f04']);
      assert.equal(da.diagnostics().counters.queueFullRefusals, 1);
    } finally {
      await r.close();
    }
  });

  it('M11: torn and undecodable frames, garbage and false headers are counted and skipped', async () => {
    const r = rig();
    try {
      const { ea, da, db, ia } = await pair(r, { apiLogIntervalMs: 5 });
      ea.corruptNextFrames(2, 'logRecord');
      await ea.sendRawFrame(Uint8Array.from([0x12, 0x40, 0x08])); // packet field cut short
      await ea.injectGarbage(Uint8Array.from([0x94, 0xc3, 0x00, 0x30, 0xde, 0xad, 0x94, 0x94, 0xc3, 0xff, 0xff]));
      ea.tearNextFrame('logRecord');
      const outcome = await db.send(Uint8Array.from([0x11, 0x94, 0xc3]));
      assert.equal(outcome.state, 'acked');
      await ia.waitFor((ps) => ps.some((p) => hex(p.payload) === '1194c3'));
      const c = da.diagnostics().counters;
      assert.ok(c.tornFrames >= 3, `torn frames counted (${c.tornFrames})`);
      assert.equal(da.status().state, 'ready');
      assert.equal((await da.send(Uint8Array.from([0x22]))).state, 'acked');
    } finally {
      await r.close();
    }
  });

  it('M4: HUPCL is cleared on the tty before the port is opened', async () => {
    const r = rig();
    try {
      const e = await r.emulator('hupcl', 0x81);
      await run('stty', ['-F', e.hostPath, 'hupcl']);
      assert.match((await run('stty', ['-F', e.hostPath, '-a'])).stdout, /(^|\s)hupcl/);
      const d = r.driver(e.hostPath);
      await d.open();
      await until(d, 'ready');
      assert.match((await run('stty', ['-F', e.hostPath, '-a'])).stdout, /-hupcl/);
    } finally {
      await r.close();
    }
  });

  it('M10: no mesh packet for the configured time also triggers a re-handshake', async () => {
    const r = rig();
    const clock = new FakeClock();
    try {
      const e = await r.emulator('quiet', 0x3a, { clock });
      const d = r.driver(e.hostPath, { clock, timing: { rehandshakeAfterSilenceMs: 20 * 60_000 } });
      await d.open();
      await until(d, 'ready');
      const again = e.nextEvent((ev) => ev.type === 'to-radio' && ev.message.payload.kind === 'wantConfigId');
      clock.advance(20 * 60_000);
      await again;
      await until(d, 'ready');
      assert.equal(d.diagnostics().rehandshakes.silence, 1);
    } finally {
      await r.close();
    }
  });

  it('a port that opens but never answers ends in MT_HANDSHAKE_INCOMPLETE and is retried', async () => {
    const pty = await openPtyPair({ dir, name: 'mute' });
    const d = createMeshtasticRadio({
      path: pty.hostPath,
      timing: { ...FAST, handshakeTimeoutMs: 50, handshakeAttempts: 2 },
    });
    try {
      await d.open();
      const s = await until(d, 'error');
      assert.equal(s.state === 'error' && s.code, 'MT_HANDSHAKE_INCOMPLETE');
      await until(d, 'configuring'); // it tries again after the backoff
    } finally {
      await d.close();
      await pty.close();
    }
  });

  it('US915 dwell limit: LongFast frames over 400 ms are refused locally in enforce mode, passed on in account mode', async () => {
    const us = { lora: { region: 1 } };
    const r = rig();
    try {
      const e = await r.emulator('us', 0x4a, us);
      const d = r.driver(e.hostPath);
      await d.open();
      await until(d, 'ready');
      const o = await d.send(Uint8Array.from([1, 2, 3]));
      assert.equal(o.state === 'failed' && o.code, 'DWELL_TIME_EXCEEDED');
      assert.equal(e.state().packetsFromHost, 0);
    } finally {
      await r.close();
    }
    // With the law left to the operator (and an air that does not enforce it either), the packet goes out.
    const air = createSimulatedAir({ timeScale: 25, enforceRegulations: false });
    const a = await startMeshtasticEmulator({ dir, name: 'us-a', id: 'us-a', air, nodeNum: 0x4b, ...us });
    const b = await startMeshtasticEmulator({ dir, name: 'us-b', id: 'us-b', air, nodeNum: 0x4c, ...us });
    const d = createMeshtasticRadio({ path: a.hostPath, destination: 0x4c, dutyCycle: 'account', timing: FAST });
    try {
      await d.open();
      await until(d, 'ready');
      assert.equal(show(await d.send(Uint8Array.from([1, 2, 3]))), 'acked');
      assert.ok(d.airtime().totalMs > 400);
    } finally {
      await d.close();
      await a.close();
      await b.close();
      air.close();
    }
  });

  it('a slow serial link (output in 7-byte pieces) still configures and delivers', async () => {
    const r = rig();
    try {
      const ea = await r.emulator('a', 0xa1);
      const eb = await r.emulator('b', 0xb2);
      // The silence rule must stay well above the gaps between pieces, whatever the machine's load.
      const da = r.driver(ea.hostPath, { destination: 0xb2, timing: { idleFlushMs: 5_000 } });
      const db = r.driver(eb.hostPath, { destination: 0xa1 });
      const ia = inbox(da);
      await Promise.all([da.open(), db.open()]);
      await Promise.all([until(da, 'ready'), until(db, 'ready')]);
      ea.setSlowLink({ chunkBytes: 7, delayMs: 2 });
      const o = await db.send(stuffed(150, 3));
      assert.equal(show(o), 'acked');
      await ia.waitFor((ps) => ps.length === 1);
      assert.equal(hex(ia.got[0]!.payload), hex(stuffed(150, 3)));
      const handshakes = da.diagnostics().counters.handshakes;
      ea.reboot('rebooted-frame');
      await ea.nextEvent((ev) => ev.type === 'config-sent');
      await until(da, 'ready', () => da.diagnostics().counters.handshakes > handshakes);
      assert.equal(show(await da.send(Uint8Array.from([4]))), 'acked');
      assert.equal(da.diagnostics().counters.incompleteFrames, 0, 'pauses inside frames are shorter than idleFlushMs');
    } finally {
      await r.close();
    }
  });

  it('a radio that ignores input while it boots is configured on the retry', async () => {
    const r = rig();
    try {
      const e = await r.emulator('slowboot', 0x5a, { bootDelayMs: 500 });
      const d = r.driver(e.hostPath, { timing: { handshakeTimeoutMs: 100 } });
      await d.open();
      await until(d, 'ready');
      const configured = e.nextEvent((ev) => ev.type === 'config-sent');
      e.reboot('silent');
      await configured;
      await until(d, 'ready', () => d.diagnostics().counters.handshakes >= 2);
      assert.ok((d.diagnostics().rehandshakes.incomplete ?? 0) >= 1, 'the first want_config after the reboot was lost');
      assert.equal(e.state().session, 'packets');
    } finally {
      await r.close();
    }
  });

  it('close settles everything still waiting with RADIO_CLOSED and says goodbye to the radio', async () => {
    const r = rig();
    try {
      const e = await r.emulator('bye', 0x91);
      const d = r.driver(e.hostPath);
      await d.open();
      await until(d, 'ready');
      await e.unplug();
      await until(d, 'absent');
      const pending = d.send(Uint8Array.from([1]));
      await e.replug();
      await until(d, 'configuring');
      await d.close();
      const o: SendOutcome = await pending;
      assert.equal(o.state === 'failed' && o.code, 'RADIO_CLOSED');
      assert.equal((await d.send(Uint8Array.from([1]))).state, 'failed');
      await assert.rejects(d.open(), (err: unknown) => isOutpostError(err, 'RADIO_CLOSED'));
    } finally {
      await r.close();
    }
  });

  it('rejects impossible options with MT_INVALID_OPTION', () => {
    for (const bad of [{ portnum: 5 }, { portnum: 600 }, { channel: 8 }, { hopLimit: 9 }, { maxInFlight: 0 }]) {
      assert.throws(
        () => createMeshtasticRadio({ path: '/dev/null', ...bad }),
        (err: unknown) => err instanceof MeshtasticError && err.code === 'MT_INVALID_OPTION',
      );
    }
  });
});

describe('probeMeshtastic', () => {
  it('identifies an emulated radio', async () => {
    const r = rig();
    try {
      const e = await r.emulator('probe', 0x1234, { longName: 'Ridge gateway', shortName: 'RDG' });
      const bye = e.nextEvent((ev) => ev.type === 'session' && !ev.open);
      const p = await probeMeshtastic(e.hostPath);
      assert.equal(p.nodeId, '!00001234');
      assert.equal(p.longName, 'Ridge gateway');
      assert.equal(p.region, 'EU_868');
      assert.equal(p.preset, 'LongFast');
      assert.equal(p.params.spreadingFactor, 11);
      assert.equal(p.channels, 1);
      assert.deepEqual(await bye, { type: 'session', open: false, reason: 'disconnect' }, 'it said goodbye');
    } finally {
      await r.close();
    }
  });

  it('reports MT_NOT_DETECTED for a port where nothing answers, PORT_FAILED for a missing one', async () => {
    const pty = await openPtyPair({ dir, name: 'silent' });
    try {
      await assert.rejects(
        probeMeshtastic(pty.hostPath, { timeoutMs: 300 }),
        (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_NOT_DETECTED',
      );
    } finally {
      await pty.close();
    }
    await assert.rejects(probeMeshtastic(join(dir, 'nothing')), (e: unknown) => isOutpostError(e, 'PORT_FAILED'));
  });
});
