// Child process of the durability tests: appends at full speed and prints one line per acknowledged
// append, so the parent knows exactly what was promised before it SIGKILLs this process.
//   producer.ts run  DB MODE        MODE = single | batch | grouped; prints `ack SEQ N` lines forever
//   producer.ts fill DB [BALLAST]   appends until the disk is full, then checks reads; prints JSON lines

import { rmSync } from 'node:fs';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import { createAuditLog } from '../../store/audit.ts';
import { openDatabase } from '../../store/database.ts';
import { isStoreError } from '../../store/errors.ts';
import { createOutbox, type OutboxInput } from '../../store/outbox.ts';
import { createSequence } from '../../store/sequence.ts';
import { ALL_MIGRATIONS, KEY } from './fixtures.ts';
import { AUDIT_KEY, SIGNER_SEED } from './producer-keys.ts';

const [command, path, mode] = process.argv.slice(2);
const db = openDatabase(path!, { migrations: ALL_MIGRATIONS });
const outbox = createOutbox(db, { key: KEY, maxItems: 10_000_000, maxBytes: 1 << 30 });
const nonces = createSequence(db, 'nonce', { blockSize: 16 });
const signer = { keyId: 'producer', sign: (ctx: string, msg: Uint8Array) => signEd25519(SIGNER_SEED, ctx, msg) };
const audit = createAuditLog(db, { macKey: AUDIT_KEY, signer, checkpointEvery: 25 });

const out = (line: string) => process.stdout.write(`${line}\n`);

function item(n: number, padding = 0): OutboxInput {
  return {
    stream: 'telemetry',
    build: (seq) => new TextEncoder().encode(JSON.stringify({ n, seq, pad: 'p'.repeat(padding) })),
  };
}

/** One acknowledged unit: an outbox item and its audit entry in one transaction. */
function appendOne(padding = 0): { seq: number; n: number } {
  const n = nonces.next();
  return db.write(() => {
    const [a] = outbox.append([item(n, padding)]);
    audit.append({
      kind: 'telemetry.append',
      actor: 'producer',
      subject: 'telemetry',
      decision: 'allow',
      reason: 'OK',
      details: { n, seq: a!.seq },
    });
    return { seq: a!.seq, n };
  });
}

async function run(): Promise<void> {
  if (mode === 'single') {
    for (;;) {
      const a = appendOne();
      out(`ack ${a.seq} ${a.n}`);
      if (a.seq % 64 === 0) await new Promise((r) => setImmediate(r)); // let stdout drain
    }
  }
  if (mode === 'batch') {
    for (;;) {
      const ns = Array.from({ length: 8 }, () => nonces.next());
      const appended = outbox.append(ns.map((n) => item(n)));
      audit.append({
        kind: 'telemetry.batch',
        actor: 'producer',
        subject: 'telemetry',
        decision: 'allow',
        reason: 'OK',
      });
      out(appended.map((a, i) => `ack ${a.seq} ${ns[i]}`).join('\n'));
      await new Promise((r) => setImmediate(r));
    }
  }
  // grouped: eight concurrent writers share group-committed transactions.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (;;) {
        const n = nonces.next();
        const [a] = await outbox.appendGrouped([item(n)]);
        out(`ack ${a!.seq} ${n}`);
      }
    }),
  );
}

function fill(): void {
  const ballast = process.argv[4];
  let acked = 0;
  let error: { code: string; message: string } | undefined;
  for (;;) {
    try {
      const a = appendOne(900);
      out(`ack ${a.seq} ${a.n}`);
      acked++;
    } catch (e) {
      error = { code: isStoreError(e) ? e.code : String(e), message: (e as Error).message };
      break;
    }
  }
  out(JSON.stringify({ event: 'full', acked, error }));
  // Reads must still work on a full disk.
  const stats = outbox.stats();
  const leased = outbox.lease(1_000_000, 1 << 30, 60_000).items.length;
  const verified = audit.verify({ publicKey: ed25519KeyPair(SIGNER_SEED).publicKey });
  out(
    JSON.stringify({
      event: 'reads',
      items: stats.items,
      leased,
      auditOk: verified.ok,
      auditEntries: verified.entries,
    }),
  );
  if (ballast) {
    // Free space (the operator's fix) and show that writing resumes without a restart.
    rmSync(ballast);
    outbox.close();
    const after = appendOne(10);
    out(`ack ${after.seq} ${after.n}`);
    out(JSON.stringify({ event: 'resumed', seq: after.seq, auditOk: audit.verify().ok }));
  }
  db.close();
}

if (command === 'run') await run();
else if (command === 'fill') fill();
else throw new Error(`unknown command ${command}`);
