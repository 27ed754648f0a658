import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fromBase64Url } from '../../protocol/bytes.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import {
  AUDIT_CHECKPOINT_CONTEXT,
  type AuditEntryInput,
  createAuditLog,
  parseAuditExport,
  verifyAuditChain,
  verifyAuditCheckpoint,
} from '../../store/audit.ts';
import { openAll, tempDir, throwsStore } from './fixtures.ts';

const MAC_KEY = new Uint8Array(32).fill(3);
const identity = ed25519KeyPair(new Uint8Array(32).fill(5));
const signer = { keyId: 'did:key:test', sign: (ctx: string, msg: Uint8Array) => signEd25519(identity.seed, ctx, msg) };

function decision(i: number): AuditEntryInput {
  return {
    kind: 'tool.call',
    actor: `did:key:operator${i % 3}`,
    subject: 'relay.set',
    decision: i % 2 === 0 ? 'allow' : 'deny',
    reason: i % 2 === 0 ? 'OK' : 'QUORUM_MISSING',
    details: { args_sha256: `h${i}`, n: i },
  };
}

function setup(t: TestContext, entries = 10, checkpointEvery?: number) {
  const db = openAll(t, join(tempDir(t), 'audit.db'), new FakeClock());
  const audit = createAuditLog(db, { macKey: MAC_KEY, signer, checkpointEvery });
  for (let i = 1; i <= entries; i++) audit.append(decision(i));
  return { db, audit };
}

describe('audit chain', () => {
  it('appends entries 1, 2, 3 … and verifies', (t) => {
    const { audit } = setup(t, 10);
    assert.deepEqual(audit.verify(), { ok: true, entries: 10, checkpoints: 0, headSeq: 10 });
    const e = audit.append(decision(11));
    assert.equal(e.seq, 11);
    assert.equal(e.mac.length, 32);
    assert.equal(audit.head().seq, 11);
  });

  it('verifies an empty chain', (t) => {
    const { audit } = setup(t, 0);
    assert.deepEqual(audit.verify(), { ok: true, entries: 0, checkpoints: 0, headSeq: 0 });
    assert.equal(audit.checkpoint(), undefined);
  });

  const tampers: [string, string, number, string][] = [
    ['an edited decision', "UPDATE audit_entries SET decision = 'allow' WHERE seq = 5", 5, 'mac_mismatch'],
    [
      'an edited details object',
      `UPDATE audit_entries SET details = '{"args_sha256":"evil","n":6}' WHERE seq = 6`,
      6,
      'mac_mismatch',
    ],
    ['an edited timestamp', 'UPDATE audit_entries SET ts_ms = ts_ms + 1 WHERE seq = 9', 9, 'mac_mismatch'],
    ['a deleted entry', 'DELETE FROM audit_entries WHERE seq = 4', 4, 'missing'],
    ['a deleted first entry', 'DELETE FROM audit_entries WHERE seq = 1', 1, 'missing'],
    [
      'an inserted entry (later ones renumbered)',
      `UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 3;
       UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1003;
       INSERT INTO audit_entries SELECT 3, ts_ms, kind, actor, subject, 'allow', reason, details, mac FROM audit_entries WHERE seq = 2`,
      3,
      'mac_mismatch',
    ],
    [
      'an entry appended with a forged MAC',
      'INSERT INTO audit_entries SELECT 11, ts_ms, kind, actor, subject, decision, reason, details, randomblob(32) FROM audit_entries WHERE seq = 10',
      11,
      'mac_mismatch',
    ],
    [
      'two entries swapped (reordered)',
      `UPDATE audit_entries SET seq = -7 WHERE seq = 7;
       UPDATE audit_entries SET seq = 7 WHERE seq = 8;
       UPDATE audit_entries SET seq = 8 WHERE seq = -7`,
      7,
      'mac_mismatch',
    ],
    [
      'an entry replaced by a copy of another with its MAC',
      `UPDATE audit_entries SET (kind, actor, subject, decision, reason, details, mac) =
         (SELECT kind, actor, subject, decision, reason, details, mac FROM audit_entries WHERE seq = 2) WHERE seq = 8`,
      8,
      'mac_mismatch',
    ],
  ];
  for (const [name, sql, badSeq, problem] of tampers) {
    it(`finds ${name} at seq ${badSeq}`, (t) => {
      const { db, audit } = setup(t, 10);
      db.sqlite.exec(sql);
      const v = audit.verify();
      assert.equal(v.ok, false, name);
      if (v.ok) return;
      assert.equal(v.firstBadSeq, badSeq);
      assert.equal(v.problem, problem);
      assert.equal(v.entries, badSeq - 1);
    });
  }

  it('rejects a MAC key of the wrong size and bad fields', (t) => {
    const { db, audit } = setup(t, 0);
    throwsStore(() => createAuditLog(db, { macKey: new Uint8Array(16) }), 'STORE_KEY_INVALID');
    throwsStore(() => createAuditLog(db, { macKey: MAC_KEY, checkpointEvery: 5 }), 'STORE_BAD_ARGUMENT');
    throwsStore(() => audit.append({ ...decision(1), kind: '' }), 'STORE_BAD_ARGUMENT');
    throwsStore(() => audit.append({ ...decision(1), actor: 'line\nbreak' }), 'STORE_BAD_ARGUMENT');
    throwsStore(() => audit.append({ ...decision(1), details: { big: 'x'.repeat(20_000) } }), 'STORE_BAD_ARGUMENT');
    assert.equal(audit.head().seq, 0);
  });

  it('a different MAC key fails verification at the first entry', (t) => {
    const { db } = setup(t, 3);
    const other = createAuditLog(db, { macKey: new Uint8Array(32).fill(4) });
    const v = other.verify();
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.firstBadSeq, 1);
  });

  it("joins the caller's transaction: a rollback removes the entry with the caller's write", (t) => {
    const { db, audit } = setup(t, 2);
    assert.throws(() =>
      db.write(() => {
        audit.append(decision(3));
        throw new Error('caller failed');
      }),
    );
    assert.equal(audit.head().seq, 2);
    assert.equal(audit.append(decision(3)).seq, 3);
    assert.equal(audit.verify().ok, true);
  });
});

describe('audit checkpoints', () => {
  it('are made every N entries, signed over {head seq, head mac, count, ts}', (t) => {
    const { db, audit } = setup(t, 10, 4);
    const rows = db.sqlite.prepare('SELECT head_seq FROM audit_checkpoints ORDER BY head_seq').pluck().all();
    assert.deepEqual(rows, [4, 8]);
    const cp = audit.checkpoint()!;
    assert.deepEqual(Object.keys(cp.body).sort(), ['count', 'head_mac', 'head_seq', 'key_id', 'ts', 'v']);
    assert.equal(cp.body.head_seq, 10);
    assert.equal(cp.body.count, 10);
    assert.deepEqual(fromBase64Url(cp.body.head_mac), audit.head().mac);
    assert.equal(verifyAuditCheckpoint(cp, identity.publicKey), true);
    assert.equal(verifyAuditCheckpoint(cp, ed25519KeyPair(new Uint8Array(32).fill(6)).publicKey), false);
    assert.equal(verifyAuditCheckpoint({ ...cp, body: { ...cp.body, head_seq: 9 } }, identity.publicKey), false);
    assert.deepEqual(audit.verify({ publicKey: identity.publicKey }), {
      ok: true,
      entries: 10,
      checkpoints: 3,
      headSeq: 10,
    });
    assert.equal(AUDIT_CHECKPOINT_CONTEXT, 'outpost/audit-checkpoint/v1');
  });

  it('expose truncation of the chain tail, which the chain alone cannot see', (t) => {
    const { db, audit } = setup(t, 10, 5);
    db.sqlite.exec('DELETE FROM audit_entries WHERE seq > 7');
    const v = audit.verify();
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.problem, 'truncated');
    assert.equal(v.firstBadSeq, 8);
  });

  it('expose a rewritten history even when every MAC was recomputed with the key', (t) => {
    const { db, audit } = setup(t, 6, 3);
    // Someone holding the MAC key (but not the signing key) rebuilds the chain from entry 2 on.
    db.sqlite.exec('DELETE FROM audit_entries WHERE seq >= 2');
    const forger = createAuditLog(db, { macKey: MAC_KEY });
    for (let i = 2; i <= 6; i++) forger.append({ ...decision(i), decision: 'allow' });
    const v = audit.verify();
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.problem, 'checkpoint_mismatch');
    assert.equal(v.firstBadSeq, 3);
  });

  it('detect a forged checkpoint signature when given the public key', (t) => {
    const { db, audit } = setup(t, 4, 2);
    db.sqlite.exec('UPDATE audit_checkpoints SET signature = randomblob(64) WHERE head_seq = 4');
    assert.equal(audit.verify().ok, true, 'without the public key only the chain is checked');
    const v = audit.verify({ publicKey: identity.publicKey });
    assert.equal(!v.ok && v.problem, 'checkpoint_signature');
    assert.equal(!v.ok && v.firstBadSeq, 4);
  });
});

describe('audit export', () => {
  it('exports JSON lines that verify on their own, checkpoints after their head', (t) => {
    const { audit } = setup(t, 7, 3);
    const lines = [...audit.exportJsonLines()];
    const parsed = lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      parsed.map((p) => (p.type === 'audit-entry' ? `e${p.seq}` : `c${p.body.head_seq}`)),
      ['e1', 'e2', 'e3', 'c3', 'e4', 'e5', 'e6', 'c6', 'e7'],
    );
    const { entries, checkpoints } = parseAuditExport(lines);
    assert.deepEqual(verifyAuditChain(entries, checkpoints, { macKey: MAC_KEY, publicKey: identity.publicKey }), {
      ok: true,
      entries: 7,
      checkpoints: 2,
      headSeq: 7,
    });
    const edited = entries.map((e) => (e.seq === 2 ? { ...e, reason: 'OK_REALLY' } : e));
    const v = verifyAuditChain(edited, checkpoints, { macKey: MAC_KEY });
    assert.equal(!v.ok && v.firstBadSeq, 2);
  });

  it('pages through a long chain while the database stays usable between lines', (t) => {
    const { audit } = setup(t, 0);
    audit.appendMany(Array.from({ length: 2500 }, (_, i) => decision(i)));
    let n = 0;
    for (const _line of audit.exportJsonLines()) {
      n++;
      if (n % 1000 === 0) audit.head(); // a query between lines must not collide with the export
    }
    assert.equal(n, 2500);
  });
});

describe('audit export parsing', () => {
  it('refuses lines that are not audit lines, naming the line', () => {
    const e = (lines: string[]) => {
      try {
        parseAuditExport(lines);
      } catch (err) {
        return err as { code: string; message: string };
      }
      return undefined;
    };
    assert.equal(e(['', '{"type":"audit-entry"}'])?.code, 'STORE_BAD_EXPORT');
    assert.match(e(['', '{"type":"audit-entry"}'])!.message, /line 2/);
    assert.equal(e(['not json'])?.code, 'STORE_BAD_EXPORT');
    assert.equal(e(['{"type":"audit-checkpoint","body":{},"signature":"x"}'])?.code, 'STORE_BAD_EXPORT');
    assert.deepEqual(parseAuditExport(['', '  ']), { entries: [], checkpoints: [] });
  });
});
