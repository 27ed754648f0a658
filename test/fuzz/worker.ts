// A fuzz worker thread: runs shards of registered decoders in count mode. Before each case it stashes the
// input in shared memory and bumps a shared counter, so the main thread can name the input of a case that
// never returns (a hang) and stop this thread.

import { parentPort, workerData } from 'node:worker_threads';
import { checkExpectations, type FuzzDecoder, runTarget } from './engine.ts';
import { type ShardRequest, STASH_BYTES, STASH_HEADER_BYTES, type WorkerMessage } from './shard-protocol.ts';

const shared = workerData as { buffer: SharedArrayBuffer; registry: string };
const { DECODERS } = (await import(shared.registry)) as { DECODERS: readonly FuzzDecoder[] };
const counters = new Int32Array(shared.buffer, 0, 4);
const stash = new Uint8Array(shared.buffer, STASH_HEADER_BYTES, STASH_BYTES);
const encoder = new TextEncoder();

function keep(input: unknown): void {
  Atomics.add(counters, 0, 1);
  if (input instanceof Uint8Array) {
    const n = Math.min(input.length, STASH_BYTES);
    stash.set(input.subarray(0, n));
    counters[1] = n;
    counters[2] = 0;
    return;
  }
  const text = typeof input === 'string' ? input : JSON.stringify(input);
  const { written } = encoder.encodeInto(text ?? '', stash);
  counters[1] = written;
  counters[2] = 1;
}

parentPort!.on('message', async (req: ShardRequest) => {
  try {
    const decoder = DECODERS.find((d) => d.name === req.decoder);
    if (!decoder) throw new Error(`no decoder named ${req.decoder}`);
    const target = decoder.setup();
    try {
      const result = await runTarget(target, {
        cases: req.cases,
        seed: req.seed,
        budgetMs: req.budgetMs,
        mode: 'count',
        beforeCase: keep,
        progressEvery: 5000,
        onProgress: () => parentPort!.postMessage({ type: 'progress' } satisfies WorkerMessage),
      });
      parentPort!.postMessage({
        type: 'done',
        result,
        checks: checkExpectations(target, result),
      } satisfies WorkerMessage);
    } finally {
      target.dispose?.();
    }
  } catch (e) {
    parentPort!.postMessage({
      type: 'failed',
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    } satisfies WorkerMessage);
  }
});
