// kill -9 the agent while producers push telemetry through the local API at full speed, 20 times over. After
// the last restart every record a producer was told "accepted" is in the outbox exactly once, signed by the
// device, with the value that was sent; and the audit chain verifies.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { IngestResponse } from '../../agent/api-types.ts';
import { createLocalApiClient } from '../../agent/local-api/client.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';
import { checkQueuedRecords } from '../support/agent-queue.ts';

const CYCLES = Number(process.env.OUTPOST_CHAOS_CYCLES ?? 20);
const PRODUCERS = 4;

const dir = mkdtempSync(join(tmpdir(), 'outpost-kill-'));
let agent: AgentProcess | undefined;
after(async () => {
  await agent?.kill9();
  rmSync(dir, { recursive: true, force: true });
});
const configFile = join(dir, 'agent.toml');
writeFileSync(
  configFile,
  `[agent]
name = "chaos"
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
[[streams]]
name = "load.flag"
unit = "1"
type = "boolean"
period_s = 1
source = { kind = "ingest" }
`,
);

describe('agent under kill -9', () => {
  it(`loses and duplicates no acknowledged record over ${CYCLES} kills`, { timeout: 600_000 }, async () => {
    const acked = new Map<number, number | boolean>(); // seq → value sent
    let next = 1;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const running = startAgent({ configFile });
      agent = running;
      await running.ready;
      const api = createLocalApiClient({ socketPath: join(dir, 'state', 'agent.sock'), timeoutMs: 10_000 });
      // Kill after a different number of acknowledged batches each cycle, while every producer has one in flight.
      const killAfter = 10 + ((cycle * 37) % 60);
      let batches = 0;
      let dead = false;
      const producer = async (p: number) => {
        while (!dead) {
          const size = 1 + ((next + p) % 24);
          const values = Array.from({ length: size }, () => {
            const n = next++;
            return n % 5 === 0 ? n % 2 === 0 : n;
          });
          try {
            const r = await api.post<IngestResponse>('/v1/telemetry', {
              records: values.map((v) => ({ stream: typeof v === 'boolean' ? 'load.flag' : 'load.value', value: v })),
            });
            assert.equal(r.seqs.length, size);
            r.seqs.forEach((s, i) => {
              assert.ok(!acked.has(s), `seq ${s} acknowledged twice`);
              acked.set(s, values[i]!);
            });
            if (++batches === killAfter) {
              dead = true;
              await running.kill9();
            }
          } catch (e) {
            // Only a dead agent may fail a push; anything else is a bug.
            if (!dead) throw e;
          }
        }
      };
      await Promise.all(Array.from({ length: PRODUCERS }, (_, p) => producer(p)));
      assert.equal(running.child.signalCode, 'SIGKILL');
    }
    assert.ok(acked.size > CYCLES * 10);

    const { auditEntries } = checkQueuedRecords(join(dir, 'state'), acked);
    assert.ok(auditEntries >= CYCLES, 'every start was audited');
  });
});
