// Named sequences whose numbers never repeat, even across kill -9 and power loss: a block of numbers
// is reserved durably (high-water mark raised and fsynced) before any number from it is handed out.
// LoRa AEAD nonces derive from these, so a repeat would be catastrophic; a crash only leaves a gap.

import type { MigrationSet, StoreDatabase } from './database.ts';
import { StoreError, shown } from './errors.ts';

export const SEQUENCE_MIGRATIONS: MigrationSet = {
  component: 'sequence',
  migrations: [
    {
      version: 1,
      name: 'sequences',
      up: `CREATE TABLE sequences (
             name TEXT PRIMARY KEY,
             high_water INTEGER NOT NULL  -- every number ever handed out is below this
           ) STRICT, WITHOUT ROWID;`,
    },
  ],
};

export interface SequenceOptions {
  /** Numbers reserved per durable write (default 256): the cost is one fsync per block, the gap after a crash at most this. */
  blockSize?: number;
  /** First number of a sequence that does not exist yet (default 1). */
  start?: number;
  /** Largest number ever handed out (default 2^53 − 1); beyond it STORE_SEQUENCE_EXHAUSTED. E.g. 2^32 − 1 for a 32-bit counter. */
  max?: number;
}

export interface Sequence {
  readonly name: string;
  /**
   * The next number: greater than every number handed out before by any instance, in any earlier process.
   * Throws STORE_IN_TRANSACTION inside a store transaction (a rolled-back reservation would let numbers
   * repeat), STORE_SEQUENCE_EXHAUSTED past `max`, or the StoreError of a failed reservation.
   */
  next(): number;
  /** `count` consecutive numbers `first … first + count − 1`, same guarantees as `next`. */
  take(count: number): { first: number; count: number };
  /** The persisted bound: every number handed out so far is below it. */
  highWater(): number;
}

const NAME = /^[\x21-\x7e]{1,128}$/;

function positiveInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new StoreError('STORE_BAD_ARGUMENT', `${what} must be a positive safe integer, got ${shown(value)}`);
  }
  return value;
}

/** A sequence named `name` in `db` (which must include SEQUENCE_MIGRATIONS). */
export function createSequence(db: StoreDatabase, name: string, options: SequenceOptions = {}): Sequence {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new StoreError('STORE_BAD_ARGUMENT', `sequence name must be 1–128 printable ASCII characters`);
  }
  const blockSize = positiveInt(options.blockSize ?? 256, 'blockSize');
  const start = positiveInt(options.start ?? 1, 'start');
  const max = positiveInt(options.max ?? Number.MAX_SAFE_INTEGER, 'max');
  const select = db.sqlite.prepare('SELECT high_water AS hw FROM sequences WHERE name = ?');
  const upsert = db.sqlite.prepare(
    'INSERT INTO sequences (name, high_water) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET high_water = excluded.high_water',
  );
  // Numbers in [next, limit) are reserved durably and not yet handed out by this instance.
  let next = 0;
  let limit = 0;

  const reserve = (atLeast: number): void => {
    const size = Math.max(blockSize, atLeast);
    const block = db.write(() => {
      const row = select.get(name) as { hw: number } | undefined;
      const first = Math.max(row?.hw ?? start, start);
      const left = max - first + 1; // numbers still available; written this way to stay exact near 2^53
      if (atLeast > left) {
        throw new StoreError('STORE_SEQUENCE_EXHAUSTED', `sequence ${name} is exhausted (max ${max})`, {
          details: { sequence: name, max, highWater: first },
        });
      }
      const end = first + Math.min(size, left);
      upsert.run(name, end);
      return { first, end };
    });
    // Only a committed reservation may be handed out: when COMMIT fails (a full disk), the high-water mark stays
    // where it was and the block must not exist, or its numbers would be handed out again after a restart — and
    // LoRa nonces derive from them.
    next = block.first;
    limit = block.end;
  };

  const take = (count: number): { first: number; count: number } => {
    positiveInt(count, 'count');
    if (db.sqlite.inTransaction) {
      throw new StoreError('STORE_IN_TRANSACTION', `sequence ${name}: take numbers outside any store transaction`, {
        details: { sequence: name },
      });
    }
    // A run that does not fit in the current block gets a fresh block; the rest of the old one is skipped.
    if (limit - next < count) reserve(count);
    const first = next;
    next += count;
    return { first, count };
  };

  return {
    name,
    next: () => take(1).first,
    take,
    highWater: () => db.read(() => (select.get(name) as { hw: number } | undefined)?.hw ?? start),
  };
}
