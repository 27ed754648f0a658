// A real agent for chaos runs: its config in a temp dir, the `outpost agent run` process under the supervisor,
// telemetry producers on its local API that remember exactly what the agent acknowledged, and a reader of
// what its outbox holds once it is stopped.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_MIGRATIONS } from '../../../agent/agent-store.ts';
import { loadIdentity } from '../../../agent/identity.ts';
import { createLocalApiClient, type LocalApiClient } from '../../../agent/local-api/client.ts';
import { deriveOutboxKey } from '../../../agent/outbox-key.ts';
import { decodeTelemetryUnit, verifyTelemetryUnit } from '../../../protocol/telemetry.ts';
import { AUDIT_MIGRATIONS } from '../../../store/audit.ts';
import { openDatabase } from '../../../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS } from '../../../store/outbox.ts';
import { SEQUENCE_MIGRATIONS } from '../../../store/sequence.ts';
import { CLI, childEnv } from '../../support/agent-process.ts';
import { type ProcessSpec, type SupervisedProcess, superviseProcess } from './process.ts';

export const CHAOS_STREAM = 'chaos.counter';

export interface AgentRig {
  readonly configFile: string;
  readonly stateDir: string;
  readonly socketPath: string;
  readonly process: SupervisedProcess;
  client(timeoutMs?: number): LocalApiClient;
}

export interface AgentRigOptions {
  readonly dir: string;
  /** The device's name (default chaos-agent). */
  readonly name?: string;
  /** State directory (default DIR/state), e.g. a tiny disk. */
  readonly stateDir?: string;
  /** TOML appended to the generated config (uplink, queue caps…). */
  readonly extraToml?: string;
  /** Node arguments before the CLI script (e.g. the clock-offset preload). */
  readonly nodeArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly wrap?: ProcessSpec['wrap'];
}

/** Writes an agent config with an ingest stream and private ports and paths, and supervises its daemon. */
export function agentRig(o: AgentRigOptions): AgentRig {
  const stateDir = o.stateDir ?? join(o.dir, 'state');
  const socketPath = join(o.dir, 'agent.sock');
  const configFile = join(o.dir, 'agent.toml');
  writeFileSync(
    configFile,
    [
      '[agent]',
      `name = "${o.name ?? 'chaos-agent'}"`,
      '[paths]',
      `state_dir = "${stateDir}"`,
      `socket = "${socketPath}"`,
      '[mcp]',
      'http_port = 0',
      '[metrics]',
      'port = 0',
      '[[streams]]',
      `name = "${CHAOS_STREAM}"`,
      'unit = "1"',
      'source = { kind = "ingest" }',
      o.extraToml ?? '',
    ].join('\n'),
  );
  const process = superviseProcess({
    name: 'agent',
    command: globalThis.process.execPath,
    args: [...(o.nodeArgs ?? []), CLI, 'agent', 'run', '--config', configFile],
    env: childEnv(o.env),
    ready: /agent\.started/,
    ...(o.wrap ? { wrap: o.wrap } : {}),
  });
  return {
    configFile,
    stateDir,
    socketPath,
    process,
    client: (timeoutMs = 10_000) => createLocalApiClient({ socketPath, timeoutMs }),
  };
}

export interface ProducerTally {
  /** Records offered. */
  sent: number;
  /** Values the agent acknowledged (its answer arrived), with the seq it gave each. */
  readonly acked: Map<number, number>;
  /** Requests that failed (agent killed, restarting, disk full…): their records may or may not be stored. */
  failedRequests: number;
  /** Error codes of failed requests. */
  readonly failures: Map<string, number>;
}

/**
 * `producers` concurrent loops pushing batches of 1..maxBatch records with values unique across the whole run
 * (taken from `nextValue`), until `stop()`. Never retries a failed request: every value is offered once, so a
 * value stored twice is a duplicate made by the system, not by the producer.
 */
export function startProducers(
  rig: AgentRig,
  options: {
    producers: number;
    maxBatch: number;
    tally: ProducerTally;
    nextValue: () => number;
    random: () => number;
    /** A pause after each request (default none: as fast as the agent answers). */
    pauseMs?: number;
  },
): { stop(): Promise<void> } {
  let stopped = false;
  const loops = Array.from({ length: options.producers }, async () => {
    const client = rig.client(5_000);
    while (!stopped) {
      const n = 1 + Math.floor(options.random() * options.maxBatch);
      const values = Array.from({ length: n }, options.nextValue);
      options.tally.sent += n;
      try {
        const r = await client.post<{ seqs: number[] }>('/v1/telemetry', {
          records: values.map((value) => ({ stream: CHAOS_STREAM, value })),
        });
        for (const [i, v] of values.entries()) options.tally.acked.set(v, r.seqs[i]!);
        if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
      } catch (e) {
        options.tally.failedRequests++;
        const code = (e as { code?: string }).code ?? 'ERROR';
        options.tally.failures.set(code, (options.tally.failures.get(code) ?? 0) + 1);
        // The agent is down or refusing: wait a little instead of spinning against a dead socket.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

export function newTally(): ProducerTally {
  return { sent: 0, acked: new Map(), failedRequests: 0, failures: new Map() };
}

export interface QueuedRecord {
  readonly seq: number;
  readonly value: unknown;
}

/**
 * Every record in a stopped agent's outbox, decrypted with its identity's key, its unit's signature verified,
 * decoded. `stateDir` is the path as this process reaches it (a tiny disk's host path).
 */
export function readOutbox(stateDir: string): QueuedRecord[] {
  const identity = loadIdentity({ keyFile: join(stateDir, 'identity.key'), env: {}, create: false });
  const db = openDatabase(join(stateDir, 'agent.db'), {
    migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS, AUDIT_MIGRATIONS, AGENT_MIGRATIONS],
  });
  try {
    const outbox = createOutbox(db, { key: deriveOutboxKey(identity.seed), maxItems: 100_000_000, maxBytes: 2 ** 40 });
    const out: QueuedRecord[] = [];
    for (;;) {
      const lease = outbox.lease(10_000, 256 * 1024 * 1024, 3_600_000);
      if (lease.items.length === 0) break;
      for (const item of lease.items) {
        const unit = decodeTelemetryUnit(Buffer.from(item.payload).toString('utf8'));
        verifyTelemetryUnit(unit, identity.did);
        for (const r of unit.records) {
          if (r.stream === CHAOS_STREAM) out.push({ seq: r.seq, value: r.value });
        }
      }
    }
    return out;
  } finally {
    db.close();
  }
}

/** Resolves once `tally` has `count` more acknowledged records than now (with the ms it took); rejects after `timeoutMs`. */
export async function moreAcks(tally: ProducerTally, count: number, timeoutMs: number, what: string): Promise<number> {
  const start = tally.acked.size;
  const t0 = performance.now();
  while (tally.acked.size < start + count) {
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`${what}: ${tally.acked.size - start} of ${count} more acknowledgements in ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now() - t0;
}

/**
 * Lost = acknowledged but not stored; duplicated = stored more than once (by value or by seq); moved = stored
 * under another seq than the one the agent acknowledged.
 */
export function reconcile(
  tally: ProducerTally,
  stored: readonly QueuedRecord[],
): { lost: number; duplicated: number; moved: number; distinct: number } {
  const seqsOf = new Map<unknown, Set<number>>();
  for (const r of stored) seqsOf.set(r.value, (seqsOf.get(r.value) ?? new Set()).add(r.seq));
  const byValue = new Map<unknown, number>();
  const seqs = new Set<number>();
  let duplicated = 0;
  for (const r of stored) {
    byValue.set(r.value, (byValue.get(r.value) ?? 0) + 1);
    if (seqs.has(r.seq)) duplicated++;
    seqs.add(r.seq);
  }
  for (const n of byValue.values()) if (n > 1) duplicated += n - 1;
  let lost = 0;
  let moved = 0;
  for (const [v, seq] of tally.acked) {
    if (!byValue.has(v)) lost++;
    else if (!seqsOf.get(v)!.has(seq)) moved++;
  }
  return { lost, duplicated, moved, distinct: byValue.size };
}
