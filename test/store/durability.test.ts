// Durability with real processes: a producer child appends at full speed and prints every acknowledged
// append; the parent SIGKILLs it at random moments and checks that every acknowledged record survived,
// none twice, that sequence numbers never repeat and that the audit chain verifies. Then disk full,
// by a file-size limit (prlimit) and by a tiny tmpfs (in a user namespace, where allowed).
// OUTPOST_DURABILITY_CYCLES (default 21) and OUTPOST_DURABILITY_SEED tune the kill loop.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { createAuditLog } from '../../store/audit.ts';
import { openDatabase } from '../../store/database.ts';
import { createOutbox } from '../../store/outbox.ts';
import { createSequence } from '../../store/sequence.ts';
import { ALL_MIGRATIONS, KEY, tempDir } from './fixtures.ts';
import { AUDIT_KEY, SIGNER_SEED } from './producer-keys.ts';

const PRODUCER = join(import.meta.dirname, 'producer.ts');
const CYCLES = Number(process.env.OUTPOST_DURABILITY_CYCLES) || 21;
const SEED = Number(process.env.OUTPOST_DURABILITY_SEED) || Date.now() % 1_000_000;

interface Ack {
  seq: number;
  n: number;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

function parseAck(line: string): Ack | undefined {
  const m = /^ack (\d+) (\d+)$/.exec(line);
  return m ? { seq: Number(m[1]), n: Number(m[2]) } : undefined;
}

/** Runs the producer until it has acknowledged `killAfter` appends, SIGKILLs it, returns every ack it printed. */
function killCycle(path: string, mode: string, killAfter: number): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PRODUCER, 'run', path, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: Ack[] = [];
    let partial = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const complete = partial.lastIndexOf('\n');
      if (complete < 0) return;
      for (const line of lines(partial.slice(0, complete))) {
        const ack = parseAck(line);
        if (!ack) return reject(new Error(`unexpected producer output ${JSON.stringify(line)}`));
        acks.push(ack);
      }
      partial = partial.slice(complete + 1); // a torn last line was never fully acknowledged
      if (!killed && acks.length >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    // 'close' waits for stdout to drain: lines printed just before the kill count as acknowledged.
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL' && killed) resolve(acks);
      else reject(new Error(`producer ended by itself (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

/** Opens the file as the agent would after a crash and checks every promise. Returns stored seq → n. */
function checkAfterCrash(path: string, acked: readonly Ack[]): Map<number, number> {
  const db = openDatabase(path, { migrations: ALL_MIGRATIONS });
  try {
    const outbox = createOutbox(db, { key: KEY, maxItems: 10_000_000, maxBytes: 1 << 30 });
    const stored = new Map<number, number>();
    for (const item of outbox.lease(10_000_000, 1 << 30, 1000).items) {
      const body = JSON.parse(new TextDecoder().decode(item.payload)) as { n: number; seq: number };
      assert.equal(body.seq, item.seq, 'payload was built with its own seq');
      assert.ok(!stored.has(item.seq), `seq ${item.seq} stored twice`);
      stored.set(item.seq, body.n);
    }
    for (const a of acked)
      assert.equal(stored.get(a.seq), a.n, `acknowledged seq ${a.seq} (n ${a.n}) is missing or changed`);
    const seqs = [...stored.keys()].sort((x, y) => x - y);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
      'committed seqs run 1..N without holes',
    );
    const ns = [...stored.values()];
    assert.equal(new Set(ns).size, ns.length, 'a sequence number was handed out twice');
    const hw = createSequence(db, 'nonce').highWater();
    assert.ok(
      ns.every((n) => n < hw),
      'the persisted high-water mark covers every number used',
    );
    const verified = createAuditLog(db, { macKey: AUDIT_KEY }).verify({
      publicKey: ed25519KeyPair(SIGNER_SEED).publicKey,
    });
    assert.ok(verified.ok, `audit chain: ${JSON.stringify(verified)}`);
    return stored;
  } finally {
    db.close();
  }
}

describe('durability with real processes', { concurrency: false }, () => {
  it(`keeps every acknowledged append across ${CYCLES} SIGKILLs (seed ${SEED})`, { timeout: 240_000 }, async (t) => {
    const path = join(tempDir(t), 'agent.db');
    let seed = SEED;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const modes = ['single', 'batch', 'grouped'];
    const everyAck: Ack[] = [];
    const usedNs = new Set<number>();
    let lastMax = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const mode = modes[cycle % modes.length]!;
      const killAfter = rand(4) === 0 ? 1 : 1 + rand(400);
      const acks = await killCycle(path, mode, killAfter);
      assert.ok(acks.length >= killAfter, `cycle ${cycle}: ${acks.length} acks`);
      for (const a of acks) {
        assert.ok(!usedNs.has(a.n), `cycle ${cycle}: sequence number ${a.n} repeated`);
        usedNs.add(a.n);
      }
      const firstN = Math.min(...acks.map((a) => a.n));
      assert.ok(firstN > lastMax, `cycle ${cycle}: numbering resumed at ${firstN}, not above ${lastMax}`);
      lastMax = Math.max(lastMax, ...acks.map((a) => a.n));
      everyAck.push(...acks);
      const stored = checkAfterCrash(path, everyAck);
      assert.ok(stored.size >= everyAck.length);
    }
    t.diagnostic(`${everyAck.length} acknowledged appends over ${CYCLES} kills, all present`);
  });
});

function canRun(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function runProducer(cmd: string, args: string[]): { out: string[]; status: number | null; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  return { out: lines(r.stdout ?? ''), status: r.status, stderr: r.stderr ?? '' };
}

function events(out: string[]): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    out
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        const e = JSON.parse(l) as Record<string, unknown>;
        return [String(e.event), e];
      }),
  );
}

describe('disk full', { concurrency: false }, () => {
  it('under a file-size limit: STORE_DISK_FULL, nothing stored is lost, reads still work', {
    timeout: 120_000,
  }, (t) => {
    if (!canRun('prlimit', ['--version'])) {
      t.skip('prlimit (util-linux) is not installed');
      return;
    }
    const path = join(tempDir(t), 'limited.db');
    // Some records from before the disk filled up.
    const db = openDatabase(path, { migrations: ALL_MIGRATIONS });
    const nonces = createSequence(db, 'nonce');
    const ns = Array.from({ length: 20 }, () => nonces.next());
    const before = createOutbox(db, { key: KEY }).append(
      ns.map((n, i) => ({ stream: 'telemetry', payload: new TextEncoder().encode(JSON.stringify({ n, seq: i + 1 })) })),
    );
    db.close();
    const limit = statSync(path).size + 768 * 1024;
    const r = runProducer('prlimit', [`--fsize=${limit}`, '--', process.execPath, PRODUCER, 'fill', path]);
    assert.equal(r.status, 0, r.stderr);
    const ev = events(r.out);
    const full = ev.full as { acked: number; error: { code: string; message: string } };
    assert.equal(full.error.code, 'STORE_DISK_FULL', full.error.message);
    assert.ok(full.error.message.includes(path));
    assert.ok(full.acked > 10, `appended ${full.acked} before the limit`);
    assert.deepEqual(ev.reads, {
      event: 'reads',
      items: 20 + full.acked,
      leased: 20 + full.acked,
      auditOk: true,
      auditEntries: full.acked,
    });
    const acked = [
      ...before.map((b, i) => ({ seq: b.seq, n: ns[i]! })),
      ...r.out.map(parseAck).filter((a) => a !== undefined),
    ];
    checkAfterCrash(path, acked);
    // Without the limit the same file takes writes again.
    const db2 = openDatabase(path, { migrations: ALL_MIGRATIONS });
    t.after(() => db2.close());
    assert.equal(
      createOutbox(db2, { key: KEY }).append([{ stream: 'telemetry', payload: new Uint8Array(1) }])[0]!.seq,
      21 + full.acked,
    );
  });

  it('on a full tmpfs: STORE_DISK_FULL, reads work, writing resumes once space is freed', { timeout: 120_000 }, (t) => {
    if (!canRun('unshare', ['-r', '-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$0"', tempDir(t)])) {
      t.skip('cannot mount a tmpfs in a user namespace here');
      return;
    }
    const mnt = join(tempDir(t), 'mnt');
    mkdirSync(mnt);
    const script =
      'mount -t tmpfs -o size=1536k tmpfs "$1" && head -c 262144 /dev/zero > "$1/ballast" && exec "$2" "$3" fill "$1/agent.db" "$1/ballast"';
    const r = runProducer('unshare', ['-r', '-m', 'sh', '-c', script, 'sh', mnt, process.execPath, PRODUCER]);
    assert.equal(r.status, 0, r.stderr);
    const ev = events(r.out);
    const full = ev.full as { acked: number; error: { code: string; message: string } };
    assert.equal(full.error.code, 'STORE_DISK_FULL', full.error.message);
    assert.ok(full.acked > 10);
    assert.deepEqual(ev.reads, {
      event: 'reads',
      items: full.acked,
      leased: full.acked,
      auditOk: true,
      auditEntries: full.acked,
    });
    assert.deepEqual(ev.resumed, { event: 'resumed', seq: full.acked + 1, auditOk: true });
    assert.equal(existsSync(join(mnt, 'agent.db')), false, 'the tmpfs lived only in the namespace');
  });
});
