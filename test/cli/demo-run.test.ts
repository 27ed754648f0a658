// `outpost demo` as a newcomer runs it (non-TTY, JSON lines): every part comes up, telemetry arrives over WSS and
// over LoRa, a tool answers through the MCP gateway, the backhaul key pulls the gateway's link, Ctrl-C stops all.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { DemoSnapshot } from '../../cli/demo-view.ts';
import { startCli } from '../support/cli-process.ts';
import { freePort } from '../support/controlplane.ts';

describe('outpost demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-demo-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the whole site, shows it, pulls the backhaul on a key and stops cleanly', { timeout: 400_000 }, async () => {
    const port = await freePort();
    const state = join(dir, 'site');
    const demo = startCli(['demo', '--json', '--state-dir', state, '--port', String(port), '--refresh-s', '1'], {
      stdinPipe: true,
    });
    const events = () =>
      demo.lines
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { event: string } & Partial<DemoSnapshot>);
    const snapshot = async (what: string, ok: (s: DemoSnapshot) => boolean, timeoutMs = 180_000) => {
      const line = await demo.waitForLine(
        (l) => {
          if (!l.startsWith('{"event":"snapshot"')) return false;
          return ok(JSON.parse(l) as DemoSnapshot);
        },
        timeoutMs,
        what,
      );
      return JSON.parse(line) as DemoSnapshot;
    };
    try {
      await demo.waitForLine((l) => l.startsWith('{"event":"ready"'), 180_000, 'the demo ready');
      const agents = ['greenhouse-1', 'greenhouse-2', 'field-rnode', 'field-mesh'];
      const s = await snapshot('telemetry from every agent, over WSS and over LoRa', (x) =>
        agents.every((a) => (x.telemetry.find((t) => t.device === a)?.total ?? 0) > 0),
      );
      assert.equal(s.devices.find((d) => d.name === 'greenhouse-1')?.online, true);
      assert.equal(s.gateway?.link.backhaul, 'up');

      const mcp = new Client({ name: 'demo-test', version: '1' });
      await mcp.connect(
        new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), {
          requestInit: {
            headers: { authorization: `Bearer ${readFileSync(join(state, 'mcp.token'), 'utf8').trim()}` },
          },
        }),
      );
      const r = await mcp.callTool({ name: 'greenhouse-1.env.sample', arguments: {} });
      assert.equal(r.isError, undefined, JSON.stringify(r));
      assert.equal(typeof (r.structuredContent as { celsius: number }).celsius, 'number');
      await mcp.close();

      demo.child.stdin!.write('b');
      await snapshot('the backhaul pulled', (x) => !x.backhaulUp && x.gateway?.link.backhaul !== 'up', 60_000);
      demo.child.stdin!.write('b');
      await snapshot('the backhaul back', (x) => x.backhaulUp && x.gateway?.link.backhaul === 'up', 60_000);

      const pids = (await snapshot('a snapshot', () => true)).pids;
      assert.ok(pids.length >= 7, `children: ${pids.join(',')}`);
      assert.equal(await demo.stop('SIGINT'), 0);
      for (const pid of pids) {
        assert.throws(() => process.kill(pid, 0), /ESRCH/, `child ${pid} is gone`);
      }
      assert.ok(events().some((e) => e.event === 'backhaul'));
    } catch (e) {
      const last = demo.lines.filter((l) => l.startsWith('{"event":"snapshot"')).at(-1);
      console.log(
        'last snapshot',
        last?.slice(0, 4000),
        demo.lines.filter((l) => !l.includes('snapshot')).join('\n'),
        demo.stderr().slice(-2000),
      );
      throw e;
    } finally {
      await demo.stop('SIGKILL').catch(() => undefined);
    }
  });
});
