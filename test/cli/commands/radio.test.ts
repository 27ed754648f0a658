import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { EXIT } from '../../../cli/exit.ts';
import type { CliIo } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import type { RadioSimInfo } from '../../../cli/radio-sim.ts';
import { startCli } from '../../support/cli-process.ts';
import { tempDir } from '../../support/radio-fixtures.ts';

function capture(stop = new AbortController().signal) {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    env: {},
    stdin: Readable.from([]),
    isTty: false,
    cwd: process.cwd(),
    stopSignal: stop,
  };
  return { io, out: () => out, err: () => err };
}

async function run(args: string[]) {
  const c = capture();
  const code = await main(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

function control(socketPath: string, method: string, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('outpost radio sim | probe | send | listen', () => {
  it('hosts emulated radios other processes can use, reports the air, and cleans up on SIGTERM', async (t) => {
    const { dir, cleanup } = await tempDir('outpost-cli-radio-');
    t.after(cleanup);
    const sim = startCli(['radio', 'sim', '--rnode', '2', '--meshtastic', '1', '--dir', dir, '--json']);
    t.after(() => sim.stop('SIGKILL'));
    const info = await sim.waitForJson<RadioSimInfo>();
    assert.deepEqual(
      info.radios.map((r) => [r.name, r.kind]),
      [
        ['rnode-0', 'rnode'],
        ['rnode-1', 'rnode'],
        ['meshtastic-0', 'meshtastic'],
      ],
    );

    // Each command is its own process, as an operator runs them.
    const rnode = startCli(['radio', 'probe', info.radios[0]!.path, '--json']);
    assert.equal((await rnode.waitForJson()).kind, 'rnode');
    assert.equal(await rnode.exited, EXIT.ok);
    const mesh = startCli(['radio', 'probe', info.radios[2]!.path, '--json']);
    assert.equal((await mesh.waitForJson()).kind, 'meshtastic');
    assert.equal(await mesh.exited, EXIT.ok);

    // listen on one RNode while another sends: the frame arrives, its LoRa header decoded.
    const listener = startCli(['radio', 'listen', info.radios[1]!.path, '--kind', 'rnode', '--count', '1', '--json']);
    t.after(() => listener.stop('SIGKILL'));
    const deadline = Date.now() + 20_000;
    while (!listener.stderr().includes('listening on')) {
      assert.ok(Date.now() < deadline, `listener not ready: ${listener.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const frame = `2100a1b2c3d400000007${'ab'.repeat(20)}`;
    const sender = startCli(['radio', 'send', info.radios[0]!.path, '--kind', 'rnode', '--hex', frame, '--json']);
    assert.equal(((await sender.waitForJson()) as { outcomes: { state: string }[] }).outcomes[0]!.state, 'sent');
    assert.equal(await sender.exited, EXIT.ok);
    const line = await listener.waitForLine((l) => l.startsWith('{'), 10_000, 'a received packet');
    assert.equal(await listener.exited, EXIT.ok);
    const heard = JSON.parse(line) as { hex: string; lora: { type: string; shortId: string; seq: number } };
    assert.equal(heard.hex, frame);
    assert.deepEqual(heard.lora, { type: 'telemetry', direction: 'uplink', shortId: 'a1b2c3d4', seq: 7 });

    const stats = (await control(info.control, 'GET', '/v1/stats')) as {
      air: { ports: Record<string, { tx: { frames: number } }> };
    };
    assert.equal(stats.air.ports['rnode-0']!.tx.frames, 1);

    // Unplugged through the control socket: probing now fails as unavailable.
    await control(info.control, 'POST', '/v1/radios/rnode-1/unplug');
    const gone = await run(['radio', 'probe', info.radios[1]!.path]);
    assert.equal(gone.code, EXIT.unavailable);

    assert.equal(await sim.stop('SIGTERM'), 0);
    assert.deepEqual(readdirSync(dir), [], 'ptys and the control socket are removed');
  });

  it('refuses bad arguments with a usage error', async () => {
    for (const args of [
      ['radio', 'sim', '--rnode', '0'],
      ['radio', 'sim', '--loss', '2'],
      ['radio', 'send', '/dev/null', '--hex', 'abc'],
      ['radio', 'send', '/dev/null'],
      ['radio', 'probe'],
    ]) {
      assert.equal((await run(args)).code, EXIT.usage, args.join(' '));
    }
  });
});
