// Reads an agent's outbox from its state directory, as its uplink would (key derived from the identity), and
// checks that acknowledged records are there exactly once, signed by the device, with the values sent.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AGENT_MIGRATIONS } from '../../agent/agent-store.ts';
import { auditMacKey, loadIdentity } from '../../agent/identity.ts';
import { deriveOutboxKey } from '../../agent/outbox-key.ts';
import { fromUtf8 } from '../../protocol/bytes.ts';
import { decodeTelemetryUnit, verifyTelemetryUnit } from '../../protocol/telemetry.ts';
import { AUDIT_MIGRATIONS, createAuditLog } from '../../store/audit.ts';
import { openDatabase } from '../../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS } from '../../store/outbox.ts';
import { SEQUENCE_MIGRATIONS } from '../../store/sequence.ts';

/**
 * Asserts every (seq → value) in `acked` is queued exactly once in a verified unit, no seq is queued twice,
 * and the audit chain verifies. Returns the number of queued records and audit entries.
 */
export function checkQueuedRecords(
  stateDir: string,
  acked: ReadonlyMap<number, unknown>,
): { records: number; auditEntries: number } {
  const identity = loadIdentity({ keyFile: join(stateDir, 'identity.key'), env: {}, create: false });
  const db = openDatabase(join(stateDir, 'agent.db'), {
    migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS, AUDIT_MIGRATIONS, AGENT_MIGRATIONS],
  });
  try {
    const outbox = createOutbox(db, { key: deriveOutboxKey(identity.seed) });
    const lease = outbox.lease(1_000_000, 1 << 30, 60_000);
    const seen = new Map<number, unknown>();
    for (const item of lease.items) {
      const unit = decodeTelemetryUnit(fromUtf8(item.payload));
      verifyTelemetryUnit(unit, identity.did);
      for (const r of unit.records) {
        assert.ok(!seen.has(r.seq), `seq ${r.seq} is queued twice`);
        seen.set(r.seq, r.value);
      }
    }
    for (const [seq, sent] of acked) {
      assert.ok(seen.has(seq), `acknowledged seq ${seq} is missing`);
      assert.equal(seen.get(seq), sent, `seq ${seq} holds another value`);
    }
    const v = createAuditLog(db, { macKey: auditMacKey(identity) }).verify({ publicKey: identity.publicKey });
    assert.ok(v.ok, JSON.stringify(v));
    return { records: seen.size, auditEntries: v.entries };
  } finally {
    db.close();
  }
}
