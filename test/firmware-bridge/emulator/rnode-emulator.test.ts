import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { AirReception } from '../../../firmware-bridge/emulator/air.ts';
import { createVirtualScheduler } from '../../../firmware-bridge/emulator/air-scheduler.ts';
import { type RNodeEmulator, startRNodeEmulator } from '../../../firmware-bridge/emulator/rnode-emulator.ts';
import { createSimulatedAir, type SimulatedAir } from '../../../firmware-bridge/emulator/simulated-air.ts';
import { CMD, type DeviceMessage, PLATFORM } from '../../../firmware-bridge/rnode/commands.ts';
import { openRawKissHost, type RawKissHost, tempDir } from '../../support/radio-fixtures.ts';

const is =
  <K extends DeviceMessage['kind']>(kind: K, check: (m: Extract<DeviceMessage, { kind: K }>) => boolean = () => true) =>
  (m: DeviceMessage) =>
    m.kind === kind && check(m as Extract<DeviceMessage, { kind: K }>);

const u32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

async function configure(host: RawKissHost, opts: { sf?: number; bw?: number; txp?: number } = {}): Promise<void> {
  await host.write(CMD.FREQUENCY, u32(867_200_000));
  await host.write(CMD.BANDWIDTH, u32(opts.bw ?? 500_000));
  await host.write(CMD.TXPOWER, [opts.txp ?? 14]);
  await host.write(CMD.SF, [opts.sf ?? 7]);
  await host.write(CMD.CR, [5]);
  await host.write(CMD.RADIO_STATE, [1]);
  await host.expect(is('radioState', (m) => m.on));
}

describe('RNode emulator over a real pty (RADIO_PROTOCOLS §6.1)', { timeout: 30_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let air: SimulatedAir;
  const open: { emu: RNodeEmulator; host?: RawKissHost }[] = [];

  before(async () => {
    ({ dir, cleanup } = await tempDir());
    air = createSimulatedAir({ timeScale: 1 });
  });
  after(async () => {
    for (const o of open) {
      await o.host?.close();
      await o.emu.close();
    }
    air.close();
    await cleanup();
  });

  async function start(name: string, extra: Partial<Parameters<typeof startRNodeEmulator>[0]> = {}) {
    const emu = await startRNodeEmulator({ dir, name, air, bootDelayMs: 0, ...extra });
    const host = await openRawKissHost(emu.hostPath);
    open.push({ emu, host });
    await new Promise<void>((resolve) => {
      if (emu.state().booted) return resolve();
      const off = emu.onEvent((e) => {
        if (e.type === 'booted') {
          off();
          resolve();
        }
      });
    });
    return { emu, host };
  }

  it('answers the detect burst with DETECT, version 1.86, ESP32 platform and MCU', async () => {
    const { host } = await start('detect');
    await host.writeRaw([0xc0, 0x08, 0x73, 0xc0, 0x50, 0x00, 0xc0, 0x48, 0x00, 0xc0, 0x49, 0x00, 0xc0]);
    await host.expect(is('mcu'));
    const kinds = host.messages().filter((m) => m.kind !== 'reset');
    assert.deepEqual(kinds, [
      { kind: 'detect', ok: true },
      { kind: 'firmwareVersion', major: 1, minor: 0x56 },
      { kind: 'platform', platform: PLATFORM.ESP32 },
      { kind: 'mcu', mcu: 0x81 },
    ]);
  });

  it('echoes parameters, clamps like an SX1262, and treats 0 / 0xFF as queries', async () => {
    const { host } = await start('params');
    host.mark();
    await host.write(CMD.FREQUENCY, [0, 0, 0, 0]);
    await host.expect(is('frequency', (m) => m.hz === 0));
    await host.write(CMD.TXPOWER, [30]);
    await host.expect(is('txPower', (m) => m.dbm === 22));
    await host.write(CMD.SF, [13]);
    await host.expect(is('spreadingFactor', (m) => m.sf === 12));
    await host.write(CMD.SF, [4]);
    await host.expect(is('spreadingFactor', (m) => m.sf === 5));
    await host.write(CMD.CR, [9]);
    await host.expect(is('codingRate', (m) => m.cr === 8));
    host.mark();
    await host.write(CMD.SF, [0xff]);
    await host.expect(is('spreadingFactor', (m) => m.sf === 5));
    await host.write(CMD.ST_ALOCK, [0x0c, 0xe4]);
    await host.expect(is('stAlock', (m) => m.percent === 33));
    await host.write(CMD.LT_ALOCK, [0x27, 0x10]);
    await host.expect(
      is('ltAlock', (m) => m.percent === 0),
      2_000,
    );
  });

  it('turns the radio on only when frequency, bandwidth, TX power and SF are set', async () => {
    const { host } = await start('lock');
    host.mark();
    await host.write(CMD.RADIO_STATE, [1]);
    await host.expect(is('radioState', (m) => !m.on));
    await host.write(CMD.RADIO_LOCK, [0]);
    await host.expect(is('radioLock', (m) => m.locked));
    await configure(host);
    await host.expect(
      is('phyParams', (m) => m.preambleSymbols === 94),
      2_000,
    );
    host.mark();
    await host.write(CMD.RADIO_STATE, [0xff]);
    await host.expect(is('radioState', (m) => m.on));
    await host.write(CMD.RADIO_STATE, [0]);
    await host.expect(is('radioState', (m) => !m.on));
  });

  it('data for a radio that is off fails with 90 02', async () => {
    const { host } = await start('off');
    host.mark();
    await host.write(CMD.DATA, [1, 2, 3]);
    const m = await host.expect(is('error'));
    assert.ok(m.kind === 'error' && m.error.code === 'RNODE_TX_FAILED');
  });

  it('puts the firmware framing on air (header byte, 500 B split 255 + 247) and reassembles on receive', async () => {
    const a = await start('air-a');
    const b = await start('air-b');
    await configure(a.host);
    await configure(b.host);
    const frames: number[] = [];
    const headers: number[] = [];
    const off = air.onTrace((e) => {
      if (e.type === 'tx' && e.portId === 'air-a') frames.push(e.bytes);
    });
    const watcher = air.attach({
      id: 'watcher',
      network: 'rnode',
      params: () => ({
        freqHz: 867_200_000,
        bandwidthHz: 500_000,
        spreadingFactor: 7,
        codingRate: 5,
        txPowerDbm: 14,
        preambleSymbols: 94,
        region: 'ANY',
      }),
    });
    watcher.onReceive((rx: AirReception) => headers.push(rx.frame[0]!));
    const packet = Uint8Array.from({ length: 500 }, (_, i) => (i * 7) & 0xff);
    b.host.mark();
    await a.host.write(CMD.DATA, packet);
    const data = await b.host.expect(is('data'), 5_000);
    off();
    watcher.detach();
    assert.deepEqual(frames, [255, 247]);
    assert.equal(headers.length, 2);
    assert.equal(headers[0], headers[1], 'both frames carry the same header');
    assert.equal(headers[0]! & 0x01, 1, 'split flag');
    assert.ok(data.kind === 'data');
    assert.deepEqual([...data.data], [...packet]);
    // RSSI and SNR frames precede the data, each in its own frame.
    const kinds = b.host
      .messages()
      .map((m) => m.kind)
      .filter((k) => k === 'rssi' || k === 'snr' || k === 'data');
    assert.deepEqual(kinds, ['rssi', 'snr', 'data']);
  });

  it('never sends 0x21/0x22 unsolicited; answers them when asked', async () => {
    const { host } = await start('stats');
    host.mark();
    await configure(host);
    await host.write(CMD.DATA, [1, 2, 3]);
    await host.expect(is('channelStats'), 2_000);
    assert.equal(host.frames.filter((f) => f.command === 0x21 || f.command === 0x22).length, 0);
    await host.write(CMD.STAT_RX, [0]);
    await host.expect(is('statRx'));
  });

  it('announces 55 F8 after a reboot, loses its settings, and ignores input while booting', async () => {
    const { emu, host } = await start('reboot', { bootDelayMs: 50 });
    await configure(host);
    host.mark();
    await emu.reboot();
    await host.write(CMD.DETECT, [0x73]); // lost: the MCU is still booting
    await host.expect(is('reset'), 2_000);
    assert.equal(host.messages().filter((m) => m.kind === 'detect').length, 0);
    assert.equal(emu.state().radioOn, false);
    assert.equal(emu.state().freqHz, 0);
  });

  it('an AVR board announces nothing at boot and sends no status frames', async () => {
    const { emu, host } = await start('avr', { platform: PLATFORM.AVR, bootDelayMs: 10 });
    await configure(host);
    host.mark();
    await emu.reboot();
    await new Promise<void>((resolve) => {
      const off = emu.onEvent((e) => {
        if (e.type === 'booted') {
          off();
          resolve();
        }
      });
    });
    await host.write(CMD.DETECT, [0x73]);
    await host.expect(is('detect'));
    assert.ok(!host.messages().some((m) => m.kind === 'reset' || m.kind === 'phyParams'));
  });

  it('drops packets silently when its queue is full (R6)', async () => {
    const { emu, host } = await start('queue', { queueMaxPackets: 2 });
    await configure(host, { sf: 12, bw: 125_000 }); // slow: the queue cannot drain meanwhile
    for (let i = 0; i < 5; i++) await host.write(CMD.DATA, [i, 1, 2, 3]);
    await new Promise<void>((resolve) => {
      if (emu.state().droppedQueueFull >= 3) return resolve();
      const off = emu.onEvent((e) => {
        if (e.type === 'queue-drop' && emu.state().droppedQueueFull >= 3) {
          off();
          resolve();
        }
      });
    });
    assert.equal(emu.state().droppedQueueFull, 3);
    assert.ok(!host.messages().some((m) => m.kind === 'error'), 'no error frame: the firmware is silent');
  });

  it('unplug removes the host path; replug brings it back at the same path, freshly booted', async () => {
    const { emu, host } = await start('plug');
    await configure(host);
    await host.close();
    await emu.unplug();
    assert.equal(existsSync(emu.hostPath), false);
    assert.equal(emu.state().plugged, false);
    await emu.replug();
    assert.equal(existsSync(emu.hostPath), true);
    const again = await openRawKissHost(emu.hostPath);
    open.push({ emu, host: again });
    await again.expect(is('reset'), 2_000);
    assert.equal(emu.state().radioOn, false);
    await again.write(CMD.DETECT, [0x73]);
    await again.expect(is('detect'));
  });

  it('airtime locks hold the queue (never drop) until the window slides (virtual air time)', async () => {
    const scheduler = createVirtualScheduler();
    const vair = createSimulatedAir({ scheduler });
    const emu = await startRNodeEmulator({ dir, name: 'alock', air: vair, bootDelayMs: 0 });
    const host = await openRawKissHost(emu.hostPath);
    open.push({ emu, host });
    await host.expect(is('reset')); // booted and listening
    await configure(host);
    await host.write(CMD.ST_ALOCK, [0x00, 0x32]); // 0.5 % of the 15 s short-term window = 75 ms
    await host.expect(is('stAlock', (m) => m.percent === 0.5));
    const txAt: number[] = [];
    emu.onEvent((e) => {
      if (e.type === 'tx') txAt.push(scheduler.nowMs());
    });
    const queued = new Promise<void>((resolve) => {
      // Host events fire before the packet is queued: look at the state once the handler is done.
      const off = emu.onEvent(() =>
        setImmediate(() => {
          if (emu.state().queuedPackets + emu.state().txPackets >= 3) {
            off();
            resolve();
          }
        }),
      );
    });
    for (let i = 0; i < 3; i++)
      await host.write(
        CMD.DATA,
        Uint8Array.from({ length: 200 }, () => i),
      );
    await queued;
    await scheduler.advance(1_000);
    assert.equal(txAt.length, 1, 'the first packet (101 ms on air) uses the whole short-term budget');
    await scheduler.advance(30_000);
    assert.equal(txAt.length, 3, 'held packets go out once the window has slid');
    assert.ok(txAt[1]! - txAt[0]! > 10_000);
    assert.equal(emu.state().droppedQueueFull, 0);
    await emu.close();
    vair.close();
  });

  it('garbage, raw frames and a slow link reach the host as written', async () => {
    const { emu, host } = await start('faults');
    host.mark();
    emu.setSlowLink({ chunkBytes: 1, delayMs: 2 });
    await emu.injectGarbage(Uint8Array.of(0x01, 0x02, 0xdb, 0x03));
    await emu.sendFrame(0x21, Uint8Array.of(0, 0, 0, 9));
    const m = await host.expect(is('statRx'));
    assert.ok(m.kind === 'statRx' && m.count === 9);
    emu.setSlowLink(undefined);
  });
});
