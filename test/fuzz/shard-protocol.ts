// Messages and shared-memory layout between test/fuzz/run.ts and its worker threads (test/fuzz/worker.ts).

import type { FuzzRunResult } from './engine.ts';

export interface ShardRequest {
  readonly type: 'run';
  readonly decoder: string;
  readonly cases: number;
  readonly seed: number;
  readonly budgetMs: number;
}

export type WorkerMessage =
  | { readonly type: 'progress' }
  | { readonly type: 'done'; readonly result: FuzzRunResult; readonly checks: string[] }
  | { readonly type: 'failed'; readonly error: string };

/** Shared layout: Int32 [0] cases started, [1] stashed input length, [2] 1 = stash is text; then the input bytes. */
export const STASH_HEADER_BYTES = 16;
export const STASH_BYTES = 64 * 1024;
