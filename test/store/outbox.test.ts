import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { FakeClock } from '../../protocol/clock.ts';
import { createMemoryLogger } from '../../protocol/log.ts';
import { openDatabase, type StoreDatabase } from '../../store/database.ts';
import { isStoreError } from '../../store/errors.ts';
import { createOutbox, type DropCount, type OutboxOptions } from '../../store/outbox.ts';
import { ALL_MIGRATIONS, KEY, openAll, tempDir, throwsStore } from './fixtures.ts';

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

function setup(t: TestContext, options: Partial<OutboxOptions> = {}, clock = new FakeClock()) {
  const path = join(tempDir(t), 'outbox.db');
  const db = openAll(t, path, clock);
  const outbox = createOutbox(db, { key: KEY, ...options });
  return { db, outbox, clock, path };
}

describe('outbox append', () => {
  it('assigns seqs 1, 2, 3 … per stream, hands build its seq, and survives reopen', (t) => {
    const { db, outbox, path, clock } = setup(t);
    const seen: number[] = [];
    const out = outbox.append([
      { stream: 'telemetry', payload: text('t1') },
      { stream: 'results', payload: text('r1') },
      {
        stream: 'telemetry',
        build: (seq) => {
          seen.push(seq);
          return text(`t${seq}`);
        },
      },
    ]);
    assert.deepEqual(out, [
      { stream: 'telemetry', seq: 1, bytes: 2 },
      { stream: 'results', seq: 1, bytes: 2 },
      { stream: 'telemetry', seq: 2, bytes: 2 },
    ]);
    assert.deepEqual(seen, [2]);
    db.close();
    const db2 = openAll(t, path, clock);
    const again = createOutbox(db2, { key: KEY });
    const lease = again.lease(10, 1 << 20, 1000);
    assert.deepEqual(
      lease.items.map((i) => [i.stream, i.seq, str(i.payload)]),
      [
        ['telemetry', 1, 't1'],
        ['results', 1, 'r1'],
        ['telemetry', 2, 't2'],
      ],
    );
    assert.deepEqual(again.append([{ stream: 'telemetry', payload: text('t3') }]), [
      { stream: 'telemetry', seq: 3, bytes: 2 },
    ]);
  });

  it('never reuses a seq, even after every item was acked and the file reopened', (t) => {
    const { db, outbox, path } = setup(t);
    outbox.append([1, 2, 3].map(() => ({ stream: 's', payload: bytes(4) })));
    assert.equal(outbox.ack([{ stream: 's', from: 1, to: 3 }]).items, 3);
    db.close();
    const db2 = openAll(t, path);
    assert.equal(createOutbox(db2, { key: KEY }).append([{ stream: 's', payload: bytes(4) }])[0]!.seq, 4);
  });

  it('rejects bad input with typed errors and stores nothing of a failed call', (t) => {
    const { outbox } = setup(t, { maxItemBytes: 100 });
    throwsStore(() => outbox.append([{ stream: '', payload: bytes(1) }]), 'STORE_BAD_ARGUMENT');
    throwsStore(() => outbox.append([{ stream: 'a b', payload: bytes(1) }]), 'STORE_BAD_ARGUMENT');
    throwsStore(() => outbox.append([{ stream: 's', payload: 'text' as unknown as Uint8Array }]), 'STORE_BAD_ARGUMENT');
    throwsStore(() => outbox.append([{ stream: 's', payload: bytes(101) }]), 'STORE_ITEM_TOO_LARGE');
    throwsStore(
      () =>
        outbox.append([
          { stream: 's', payload: bytes(1) },
          { stream: 's', build: () => bytes(101) },
        ]),
      'STORE_ITEM_TOO_LARGE',
    );
    assert.throws(
      () =>
        outbox.append([
          { stream: 's', payload: bytes(1) },
          {
            stream: 's',
            build: () => {
              throw new Error('signer failed');
            },
          },
        ]),
      /signer failed/,
    );
    assert.equal(outbox.stats().items, 0);
    assert.equal(outbox.append([{ stream: 's', payload: bytes(1) }])[0]!.seq, 1, 'failed calls consumed no seq');
  });

  it('refuses a bad key and a key that does not match the queue', (t) => {
    const { db } = setup(t);
    throwsStore(() => createOutbox(db, { key: bytes(16) }), 'STORE_KEY_INVALID');
    const e = throwsStore(() => createOutbox(db, { key: bytes(32, 9) }), 'STORE_KEY_MISMATCH');
    assert.ok(e.message.includes(db.path));
    createOutbox(db, { key: bytes(32, 9), queue: 'other' }); // another queue may use another key
  });
});

describe('outbox lease and ack', () => {
  it('leases in priority order, then append order', (t) => {
    const { outbox } = setup(t, { streams: { urgent: { priority: 0 }, bulk: { priority: 6 } } });
    outbox.append([
      { stream: 'bulk', payload: text('b1') },
      { stream: 'normal', payload: text('n1') },
      { stream: 'urgent', payload: text('u1') },
      { stream: 'bulk', payload: text('b2') },
      { stream: 'urgent', payload: text('u2') },
      { stream: 'normal', payload: text('n2') },
    ]);
    const lease = outbox.lease(100, 1 << 20, 1000);
    assert.deepEqual(
      lease.items.map((i) => str(i.payload)),
      ['u1', 'u2', 'n1', 'n2', 'b1', 'b2'],
    );
    assert.deepEqual(
      lease.items.map((i) => i.priority),
      [0, 0, 4, 4, 6, 6],
    );
  });

  it('respects maxItems and maxBytes, always leasing at least one item', (t) => {
    const { outbox } = setup(t);
    outbox.append([
      { stream: 's', payload: bytes(300) },
      { stream: 's', payload: bytes(100) },
      { stream: 's', payload: bytes(100) },
      { stream: 's', payload: bytes(100) },
    ]);
    assert.deepEqual(
      outbox.lease(10, 200, 1000).items.map((i) => i.seq),
      [1],
      'an item larger than maxBytes goes alone',
    );
    assert.deepEqual(
      outbox.lease(10, 200, 1000).items.map((i) => i.seq),
      [2, 3],
    );
    assert.deepEqual(
      outbox.lease(1, 1000, 1000).items.map((i) => i.seq),
      [4],
    );
    assert.equal(outbox.lease(10, 1000, 1000).items.length, 0, 'everything is leased');
    assert.equal(outbox.stats().leasedItems, 4);
  });

  it('returns items of an expired lease, measured in store time', (t) => {
    const { outbox, clock } = setup(t);
    outbox.append([
      { stream: 's', payload: bytes(1) },
      { stream: 's', payload: bytes(1) },
    ]);
    const first = outbox.lease(1, 100, 5000);
    assert.deepEqual(
      first.items.map((i) => i.seq),
      [1],
    );
    clock.jumpWallMs(3_600_000); // the wall clock jumping does not expire a lease
    clock.advance(1000);
    assert.deepEqual(
      outbox.lease(10, 100, 5000).items.map((i) => i.seq),
      [2],
    );
    clock.advance(3999);
    assert.equal(outbox.lease(10, 100, 5000).items.length, 0);
    clock.advance(1);
    assert.deepEqual(
      outbox.lease(10, 100, 5000).items.map((i) => i.seq),
      [1],
    );
  });

  it('acks by seq ranges, leased or not, and keeps totals exact', (t) => {
    const { outbox } = setup(t);
    outbox.append(Array.from({ length: 10 }, () => ({ stream: 'a', payload: bytes(10) })));
    outbox.append(Array.from({ length: 3 }, () => ({ stream: 'b', payload: bytes(5) })));
    outbox.lease(4, 1 << 20, 1000);
    const acked = outbox.ack([
      { stream: 'a', from: 2, to: 4 },
      { stream: 'a', from: 7, to: 20 },
      { stream: 'b', from: 2, to: 2 },
      { stream: 'zzz', from: 1, to: 100 },
    ]);
    assert.deepEqual(acked, { items: 3 + 4 + 1, bytes: 70 + 5 });
    const stats = outbox.stats();
    assert.equal(stats.items, 5);
    assert.equal(stats.bytes, 30 + 10);
    assert.deepEqual(stats.streams.a, { items: 3, bytes: 30, nextSeq: 11 });
    assert.equal(stats.leasedItems, 1, 'seq 1 of a is still leased; acked ones left their lease');
    assert.deepEqual(
      outbox.lease(100, 1 << 20, 1000).items.map((i) => `${i.stream}${i.seq}`),
      ['a5', 'a6', 'b1', 'b3'],
    );
    assert.deepEqual(outbox.ack([{ stream: 'a', from: 1, to: 1 }]), { items: 1, bytes: 10 });
  });

  it('validates ack ranges', (t) => {
    const { outbox } = setup(t);
    throwsStore(() => outbox.ack([{ stream: 'a', from: 5, to: 4 }]), 'STORE_BAD_ARGUMENT');
    throwsStore(() => outbox.ack([{ stream: 'a', from: -1, to: 4 }]), 'STORE_BAD_ARGUMENT');
    throwsStore(() => outbox.ack([{ stream: 'a', from: 1.5, to: 4 }]), 'STORE_BAD_ARGUMENT');
    throwsStore(
      () => outbox.ack(Array.from({ length: 4097 }, () => ({ stream: 'a', from: 1, to: 1 }))),
      'STORE_BAD_ARGUMENT',
    );
    throwsStore(() => outbox.lease(0, 1, 1), 'STORE_BAD_ARGUMENT');
  });

  it('nack and release return leased items at once', (t) => {
    const { outbox } = setup(t);
    outbox.append(Array.from({ length: 4 }, () => ({ stream: 's', payload: bytes(1) })));
    const lease = outbox.lease(4, 100, 60_000);
    assert.equal(outbox.nack([{ stream: 's', from: 2, to: 3 }]), 2);
    assert.deepEqual(
      outbox.lease(10, 100, 60_000).items.map((i) => i.seq),
      [2, 3],
    );
    assert.equal(outbox.release(lease.id), 2, 'seqs 1 and 4 were still held by the first lease');
    assert.equal(outbox.release(lease.id), 0);
    assert.deepEqual(
      outbox.lease(10, 100, 60_000).items.map((i) => i.seq),
      [1, 4],
    );
  });
});

describe('outbox caps and drops', () => {
  it('drops lowest priority, oldest first, to hold maxBytes, counting by reason and stream', (t) => {
    const drops: DropCount[] = [];
    const { outbox, db, path } = setup(t, {
      maxBytes: 1000,
      streams: { alarm: { priority: 0 }, debug: { priority: 7 } },
      onDrop: (d) => drops.push(d),
    });
    outbox.append([
      { stream: 'debug', payload: bytes(200) }, // debug 1
      { stream: 'metrics', payload: bytes(200) }, // metrics 1
      { stream: 'alarm', payload: bytes(200) }, // alarm 1
      { stream: 'debug', payload: bytes(200) }, // debug 2
      { stream: 'metrics', payload: bytes(200) }, // metrics 2
    ]);
    assert.equal(outbox.stats().bytes, 1000);
    outbox.append([{ stream: 'metrics', payload: bytes(300) }]); // needs 300: both debug items go
    assert.deepEqual(
      outbox.lease(100, 1 << 20, 1).items.map((i) => `${i.stream}${i.seq}`),
      ['alarm1', 'metrics1', 'metrics2', 'metrics3'],
    );
    assert.deepEqual(drops, [{ stream: 'debug', reason: 'max_bytes', items: 2, bytes: 400 }]);
    outbox.append([{ stream: 'alarm', payload: bytes(150) }]); // then the oldest of the next priority
    const stats = outbox.stats();
    assert.ok(stats.bytes <= 1000);
    assert.deepEqual(stats.dropsByReason, { ttl: 0, max_age: 0, max_bytes: 3, max_items: 0, undecryptable: 0 });
    db.close();
    const reopened = createOutbox(openAll(t, path), { key: KEY });
    assert.deepEqual(reopened.stats().drops, [
      { stream: 'debug', reason: 'max_bytes', items: 2, bytes: 400 },
      { stream: 'metrics', reason: 'max_bytes', items: 1, bytes: 200 },
    ]);
  });

  it('drops a new item itself when it is the lowest priority of a full queue', (t) => {
    const { outbox } = setup(t, { maxItems: 2, streams: { hi: { priority: 1 }, lo: { priority: 5 } } });
    outbox.append([
      { stream: 'hi', payload: bytes(1) },
      { stream: 'hi', payload: bytes(1) },
    ]);
    const out = outbox.append([{ stream: 'lo', payload: bytes(1) }]);
    assert.deepEqual(out, [{ stream: 'lo', seq: 1, bytes: 1 }]);
    const stats = outbox.stats();
    assert.equal(stats.items, 2);
    assert.deepEqual(stats.drops, [{ stream: 'lo', reason: 'max_items', items: 1, bytes: 1 }]);
  });

  it('holds the caps after every append (random workload)', (t) => {
    const { outbox } = setup(t, { maxBytes: 5000, maxItems: 40 });
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 60; round++) {
      const batch = Array.from({ length: 1 + rand(5) }, () => ({
        stream: `p${rand(8)}`,
        payload: bytes(1 + rand(400)),
      }));
      outbox.append(batch);
      const s = outbox.stats();
      assert.ok(s.bytes <= 5000 && s.items <= 40, `round ${round}: ${s.items} items, ${s.bytes} bytes`);
      if (rand(3) === 0) {
        const lease = outbox.lease(5, 1 << 20, 10);
        outbox.ack(lease.items.map((i) => ({ stream: i.stream, from: i.seq, to: i.seq })));
      }
    }
  });

  it('expires items by per-stream TTL in store time, unaffected by wall-clock jumps', (t) => {
    const { outbox, clock } = setup(t, { streams: { fresh: { ttlMs: 10_000 } } });
    outbox.append([
      { stream: 'fresh', payload: bytes(3) },
      { stream: 'keep', payload: bytes(3) },
    ]);
    clock.jumpWallMs(365 * 24 * 3600 * 1000); // NTP sets the clock a year ahead
    clock.advance(9_999);
    assert.equal(outbox.sweep(), 0);
    assert.equal(outbox.stats().items, 2);
    clock.jumpWallMs(-2 * 365 * 24 * 3600 * 1000);
    clock.advance(1);
    assert.deepEqual(
      outbox.lease(10, 100, 1).items.map((i) => i.stream),
      ['keep'],
    );
    assert.deepEqual(outbox.stats().drops, [{ stream: 'fresh', reason: 'ttl', items: 1, bytes: 3 }]);
  });

  it('keeps TTL across a restart and drops by the global age cap', (t) => {
    const clock = new FakeClock(Date.UTC(2026, 3, 1), 0);
    const { db, outbox, path } = setup(t, { maxAgeMs: 60_000, streams: { s: { ttlMs: 30_000 } } }, clock);
    outbox.append([
      { stream: 's', payload: bytes(1) },
      { stream: 'other', payload: bytes(1) },
    ]);
    clock.advance(20_000);
    db.close();
    // Restart after an unknown downtime with the wall clock back in 1970: no downtime is assumed.
    const boot = new FakeClock(0, 0);
    const db2 = openAll(t, path, boot);
    const again = createOutbox(db2, { key: KEY, maxAgeMs: 60_000, streams: { s: { ttlMs: 30_000 } } });
    boot.advance(9_999);
    assert.equal(again.sweep(), 0);
    boot.advance(1);
    assert.equal(again.sweep(), 1, 's reached its 30 s TTL');
    assert.equal(again.stats().oldestAgeMs, 30_000);
    boot.advance(30_000);
    assert.equal(again.sweep(), 1, 'other reached the 60 s age cap');
    assert.deepEqual(
      again.stats().drops.map((d) => `${d.stream}:${d.reason}`),
      ['other:max_age', 's:ttl'],
    );
  });
});

describe('outbox encryption at rest', () => {
  it('stores no plaintext in the database or its WAL', (t) => {
    const { db, outbox, path } = setup(t);
    const marker = 'PLAINTEXT-MARKER-7f3a';
    outbox.append(
      Array.from({ length: 50 }, (_, i) => ({ stream: 's', payload: text(`${marker}-${i}-${'z'.repeat(50)}`) })),
    );
    const scan = () => {
      for (const suffix of ['', '-wal']) {
        let content: Buffer;
        try {
          content = readFileSync(path + suffix);
        } catch {
          continue;
        }
        assert.equal(content.includes(marker), false, `plaintext found in ${suffix || 'main file'}`);
        assert.equal(content.includes('z'.repeat(50)), false);
      }
    };
    scan();
    db.checkpoint();
    scan();
    const row = db.sqlite.prepare('SELECT bytes, length(sealed) AS sealed FROM outbox_items LIMIT 1').get() as {
      bytes: number;
      sealed: number;
    };
    assert.equal(row.sealed, row.bytes + 4 + 16, 'nonce tail + ciphertext + tag');
    assert.equal(str(outbox.lease(1, 1000, 1).items[0]!.payload).startsWith(marker), true);
  });

  for (const [name, tamper] of [
    [
      'swapped between rows',
      'UPDATE outbox_items SET sealed = (SELECT sealed FROM outbox_items WHERE seq = 3) WHERE seq = 2',
    ],
    ['moved to another seq', 'UPDATE outbox_items SET seq = 9 WHERE seq = 2'],
    ['moved to another stream', "UPDATE outbox_items SET stream = 'other' WHERE seq = 2"],
    ['bit-flipped', 'UPDATE outbox_items SET sealed = zeroblob(length(sealed)) WHERE seq = 2'],
  ] as const) {
    it(`drops a row whose ciphertext was ${name}, counted as undecryptable`, (t) => {
      const { db, outbox } = setup(t);
      const { logger, lines } = createMemoryLogger();
      const outbox2 = createOutbox({ ...db, log: logger } as StoreDatabase, { key: KEY });
      outbox.append([1, 2, 3].map((i) => ({ stream: 's', payload: text(`p${i}`) })));
      db.sqlite.exec("INSERT OR IGNORE INTO outbox_streams VALUES ('outbox', 'other', 1, 0, 0)");
      db.sqlite.exec(tamper);
      const got = outbox2.lease(10, 1000, 1).items.map((i) => str(i.payload));
      assert.deepEqual(got, ['p1', 'p3']);
      assert.equal(outbox2.stats().dropsByReason.undecryptable, 1);
      assert.ok(lines.some((l) => l.includes('outbox.undecryptable')));
    });
  }
});

describe('outbox group commit', () => {
  it('coalesces the appends of one event-loop turn into one transaction', async (t) => {
    const { db } = setup(t);
    let transactions = 0;
    const counting: StoreDatabase = {
      ...db,
      time: db.time,
      write: (fn) => {
        if (!db.sqlite.inTransaction) transactions++;
        return db.write(fn);
      },
    };
    const outbox = createOutbox(counting, { key: KEY });
    transactions = 0;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => outbox.appendGrouped([{ stream: `s${i % 3}`, payload: bytes(8) }])),
    );
    assert.equal(transactions, 1);
    const seqs = results.flat().map((r) => `${r.stream}:${r.seq}`);
    assert.equal(new Set(seqs).size, 50);
    assert.equal(outbox.stats().items, 50);
  });

  it('fails only the call whose build throws, and splits batches at maxBatchItems', async (t) => {
    const { outbox } = setup(t, { maxBatchItems: 4 });
    const calls = [
      outbox.appendGrouped([{ stream: 's', payload: bytes(1) }]),
      outbox.appendGrouped([
        {
          stream: 's',
          build: () => {
            throw new Error('bad build');
          },
        },
      ]),
      outbox.appendGrouped(Array.from({ length: 6 }, () => ({ stream: 's', payload: bytes(1) }))),
      outbox.appendGrouped([{ stream: '', payload: bytes(1) }]),
    ];
    const settled = await Promise.allSettled(calls);
    assert.equal(settled[0]!.status, 'fulfilled');
    assert.equal(settled[1]!.status, 'rejected');
    assert.match(String((settled[1] as PromiseRejectedResult).reason), /bad build/);
    assert.equal(settled[2]!.status, 'fulfilled');
    assert.ok(isStoreError((settled[3] as PromiseRejectedResult).reason, 'STORE_BAD_ARGUMENT'));
    assert.deepEqual(
      (settled[2] as PromiseFulfilledResult<{ seq: number }[]>).value.map((r) => r.seq),
      [2, 3, 4, 5, 6, 7],
    );
    assert.equal(outbox.stats().items, 7);
  });

  it('close() commits pending grouped appends', async (t) => {
    const { outbox } = setup(t);
    const p = outbox.appendGrouped([{ stream: 's', payload: bytes(1) }]);
    outbox.close();
    assert.deepEqual(await p, [{ stream: 's', seq: 1, bytes: 1 }]);
  });
});

describe('outbox read-only', () => {
  it('reads stats through a read-only handle and refuses to append', (t) => {
    const { db, outbox, path, clock } = setup(t);
    outbox.append([{ stream: 's', payload: bytes(5) }]);
    db.close();
    const ro = openDatabase(path, { migrations: ALL_MIGRATIONS, readonly: true, clock });
    t.after(() => ro.close());
    const view = createOutbox(ro, { key: KEY });
    assert.equal(view.stats().items, 1);
    throwsStore(() => view.append([{ stream: 's', payload: bytes(1) }]), 'STORE_READONLY');
  });
});

describe('outbox queues', () => {
  it('keeps queues in one file apart: seqs, caps, stats', (t) => {
    const { db } = setup(t);
    const up = createOutbox(db, { key: KEY, queue: 'uplink', maxItems: 2 });
    const down = createOutbox(db, { key: KEY, queue: 'downlink' });
    up.append([1, 2, 3].map(() => ({ stream: 's', payload: bytes(1) })));
    down.append([{ stream: 's', payload: bytes(1) }]);
    assert.equal(up.stats().items, 2);
    assert.equal(down.stats().items, 1);
    assert.deepEqual(
      down.lease(10, 100, 1).items.map((i) => i.seq),
      [1],
    );
    assert.equal(up.ack([{ stream: 's', from: 1, to: 3 }]).items, 2);
    assert.equal(down.stats().items, 1);
  });
});
