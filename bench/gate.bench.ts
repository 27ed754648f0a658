// Safety gate with a 2-of-3 quorum: latency of one decision (p50/p99/max), against the floor of the work it
// must do — two bare Ed25519 verifications — measured in the same run. Until the agent's gate is on main
// this measures the quorum verification it calls (protocol/quorum.ts) on the normative vector.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fromBase64Url, fromHex } from '../protocol/bytes.ts';
import { canonicalBytes } from '../protocol/canonical-json.ts';
import { FakeClock } from '../protocol/clock.ts';
import { QUORUM_APPROVAL_CONTEXT, type QuorumPolicy, type QuorumToken, verifyQuorum } from '../protocol/quorum.ts';
import { verifyEd25519 } from '../protocol/signing.ts';
import { type BenchContext, runBench, summarizeLatencies } from './harness.ts';

interface Vectors {
  policy: QuorumPolicy;
  verifyAtMs: number;
  vectors: {
    tool: string;
    args: unknown;
    requiredK: number;
    tokenHex: string;
    request: QuorumToken['request'];
    approvals: QuorumToken['approvals'];
  }[];
}

const V = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../docs/protocol/vectors/quorum/quorum-tokens.json'), 'utf8'),
) as Vectors;

/** Times `fn` `n` times; returns per-call ms. */
function timeEach(n: number, fn: () => void): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    fn();
    out[i] = Number(process.hrtime.bigint() - t) / 1e6;
  }
  return out;
}

async function run(ctx: BenchContext): Promise<void> {
  const c = V.vectors.find((x) => x.requiredK === 2)!;
  const token = fromHex(c.tokenHex);
  const clock = new FakeClock(V.verifyAtMs);
  const calls = ctx.size(5_000, 200);
  const message = canonicalBytes(c.request);
  const keys = new Map(V.policy.approvers.map((a) => [a.id, fromBase64Url(a.publicKey)]));

  const floor = await ctx.repeat('2 × Ed25519 verify', () =>
    summarizeLatencies(
      timeEach(calls, () => {
        for (const a of c.approvals) {
          if (!verifyEd25519(keys.get(a.approver)!, QUORUM_APPROVAL_CONTEXT, message, fromBase64Url(a.sig))) {
            throw new Error('vector signature does not verify');
          }
        }
      }),
    ),
  );
  const quorum = await ctx.repeat('verifyQuorum 2-of-3', () =>
    summarizeLatencies(
      timeEach(calls, () => {
        verifyQuorum(token, {
          policy: V.policy,
          tid: c.request.tid,
          device: c.request.device,
          tool: c.tool,
          args: c.args,
          clock,
        });
      }),
    ),
  );
  const ms = { unit: 'ms', better: 'lower' as const };
  ctx.figure({
    id: 'floor.p50',
    label: 'baseline: 2 bare Ed25519 verifications, p50',
    ...ms,
    samples: floor.map((s) => s.p50),
  });
  ctx.figure({
    id: 'floor.p99',
    label: 'baseline: 2 bare Ed25519 verifications, p99',
    ...ms,
    samples: floor.map((s) => s.p99),
  });
  ctx.figure({
    id: 'quorum.p50',
    label: 'quorum verification, 2-of-3 (decode, policy, args hash, 2 signatures), p50',
    ...ms,
    baseline: 'floor.p50',
    samples: quorum.map((s) => s.p50),
  });
  ctx.figure({
    id: 'quorum.p99',
    label: 'quorum verification, 2-of-3, p99',
    ...ms,
    baseline: 'floor.p99',
    samples: quorum.map((s) => s.p99),
  });
  ctx.figure({ id: 'quorum.max', label: 'quorum verification, 2-of-3, max', ...ms, samples: quorum.map((s) => s.max) });
  ctx.note(
    `${calls.toLocaleString('en-US')} sequential decisions per run on the normative quorum vector (docs/protocol/vectors/quorum).`,
  );
}

await runBench({ name: 'gate', title: 'Safety gate: decision with a 2-of-3 quorum', run });
