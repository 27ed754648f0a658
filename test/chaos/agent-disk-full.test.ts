// A full disk, made real with RLIMIT_FSIZE (prlimit) on the agent process: telemetry ingest answers with a
// clear DISK_FULL error, nothing stored before is lost, and the agent keeps serving tools and its status.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { IngestResponse, StatusView, ToolCallResponse } from '../../agent/api-types.ts';
import { createLocalApiClient } from '../../agent/local-api/client.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { type AgentProcess, canRun, startAgent } from '../support/agent-process.ts';
import { checkQueuedRecords } from '../support/agent-queue.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-full-'));
let agent: AgentProcess | undefined;
after(async () => {
  await agent?.kill9();
  rmSync(dir, { recursive: true, force: true });
});
const configFile = join(dir, 'agent.toml');
writeFileSync(
  configFile,
  `[agent]
name = "full"
[paths]
state_dir = "state"
[mcp]
http_enabled = false
[metrics]
enabled = false
[[streams]]
name = "load.value"
unit = "1"
period_s = 1
source = { kind = "ingest" }
[[tools]]
name = "box.read"
description = "Reads the box."
safety_class = "read_only"
[tools.exec]
argv = ["/bin/echo", "fine"]
`,
);
const api = createLocalApiClient({ socketPath: join(dir, 'state', 'agent.sock'), timeoutMs: 20_000 });

async function push(values: number[]): Promise<readonly number[]> {
  const r = await api.post<IngestResponse>('/v1/telemetry', {
    records: values.map((value) => ({ stream: 'load.value', value })),
  });
  return r.seqs;
}

describe('agent on a full disk', () => {
  it('refuses ingest with DISK_FULL, keeps what it had, keeps serving tools', { timeout: 300_000 }, async (t) => {
    if (!canRun('prlimit', ['--version'])) {
      t.skip('prlimit (util-linux) is not installed');
      return;
    }
    const acked = new Map<number, number>();
    let value = 0;
    // 1. A normal run stores some records.
    agent = startAgent({ configFile });
    await agent.ready;
    for (let i = 0; i < 20; i++) {
      const vs = Array.from({ length: 10 }, () => value++);
      for (const [k, s] of (await push(vs)).entries()) acked.set(s, vs[k]!);
    }
    assert.equal(await agent.stop(), 0);

    // 2. Again, with no room for the database to grow more than a little.
    const db = join(dir, 'state', 'agent.db');
    const limit = statSync(db).size + 160 * 1024;
    agent = startAgent({ configFile, fileSizeLimitBytes: limit });
    await agent.ready;
    let refusal: unknown;
    for (let i = 0; i < 2_000 && refusal === undefined; i++) {
      const vs = Array.from({ length: 100 }, () => value++);
      try {
        for (const [k, s] of (await push(vs)).entries()) acked.set(s, vs[k]!);
      } catch (e) {
        refusal = e;
      }
    }
    assert.ok(isOutpostError(refusal, 'DISK_FULL'), `ingest failed with ${String(refusal)}`);
    assert.match((refusal as Error).message, /disk is full/);
    // Still serving: status says why, and read_only tools answer.
    const s = await api.get<StatusView>('/v1/status');
    assert.ok(
      s.status.problems.some((p) => p.code === 'DISK_FULL'),
      JSON.stringify(s.status),
    );
    const echo = await api.post<ToolCallResponse>('/v1/tools/call', {
      tool: 'system.echo',
      args: { message: 'still here' },
    });
    assert.deepEqual(echo.result, { message: 'still here' });
    const box = await api.post<ToolCallResponse>('/v1/tools/call', { tool: 'box.read' });
    assert.equal(box.result, 'fine');
    // A smaller batch may still fit; either way the answer is typed.
    await push([value++]).then(
      (seqs) => acked.set(seqs[0]!, value - 1),
      (e) => assert.ok(isOutpostError(e, 'DISK_FULL'), String(e)),
    );
    assert.equal(agent.child.exitCode, null, 'the agent is still running');
    await agent.stop();

    // 3. With room again: everything acknowledged is there, and the chain verifies.
    agent = startAgent({ configFile });
    await agent.ready;
    const q = await api.get<{ by_stream: Record<string, { depth: number }> }>('/v1/queue');
    assert.ok(q.by_stream['load.value']!.depth >= 1);
    const v = await api.post<{ ok: boolean }>('/v1/audit/verify', {});
    assert.equal(v.ok, true);
    for (const s of await push([value++])) acked.set(s, value - 1);
    await agent.stop();
    checkQueuedRecords(join(dir, 'state'), acked);
  });
});
