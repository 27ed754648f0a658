// The audit chain: every security decision as an entry whose HMAC-SHA256 covers the previous entry's
// MAC and the entry's canonical bytes, so any edit, deletion, insertion or reordering is found by
// `verify()`; signed checkpoints let a control plane anchor the head. Format: docs/store.md §Audit chain.

import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { concatBytes, fromBase64Url, toBase64Url, utf8 } from '../protocol/bytes.ts';
import { canonicalBytes, canonicalize, type JsonValue, parseJson } from '../protocol/canonical-json.ts';
import { isOutpostError } from '../protocol/errors.ts';
import { verifyEd25519 } from '../protocol/signing.ts';
import type { MigrationSet, StoreDatabase } from './database.ts';
import { StoreError } from './errors.ts';

export const AUDIT_MIGRATIONS: MigrationSet = {
  component: 'audit',
  migrations: [
    {
      version: 1,
      name: 'audit entries and checkpoints',
      up: `
        CREATE TABLE audit_entries (
          seq INTEGER PRIMARY KEY,     -- 1, 2, 3 … without gaps
          ts_ms INTEGER NOT NULL,      -- wall clock when appended (informational: may be unsynchronised)
          kind TEXT NOT NULL,
          actor TEXT NOT NULL,
          subject TEXT NOT NULL,
          decision TEXT NOT NULL,
          reason TEXT NOT NULL,
          details TEXT NOT NULL,       -- canonical JSON (RFC 8785) of an object
          mac BLOB NOT NULL            -- HMAC-SHA256(key, label || prev mac || canonical entry)
        ) STRICT;
        CREATE TABLE audit_checkpoints (
          head_seq INTEGER PRIMARY KEY,
          body TEXT NOT NULL,          -- canonical JSON of the signed body
          signature BLOB NOT NULL
        ) STRICT;`,
    },
  ],
};

/** Domain label of entry MACs (the MAC input is this, 0x00, the previous MAC, the canonical entry). */
export const AUDIT_MAC_LABEL = 'outpost/audit-entry/v1';
/** Signing context of checkpoints (protocol/signing.ts signingInput). */
export const AUDIT_CHECKPOINT_CONTEXT = 'outpost/audit-checkpoint/v1';
export const AUDIT_MAC_BYTES = 32;
/** The "previous MAC" of entry 1. */
export const AUDIT_GENESIS_MAC = new Uint8Array(AUDIT_MAC_BYTES);
export const MAX_AUDIT_DETAILS_BYTES = 16 * 1024;

export interface AuditEntryInput {
  /** What was decided about, e.g. `tool.call`, `token.verify`, `enroll`. */
  readonly kind: string;
  /** Who asked (a did:key, an operator id, `local`). */
  readonly actor: string;
  /** What it was about (a tool name, a device id). */
  readonly subject: string;
  /** e.g. `allow`, `deny`. */
  readonly decision: string;
  /** Stable reason code, e.g. `OK`, `TOKEN_EXPIRED`, `QUORUM_MISSING`. */
  readonly reason: string;
  /** A JSON object (never secrets); at most 16 KiB canonical. */
  readonly details?: { readonly [key: string]: JsonValue };
}

export interface AuditEntry {
  readonly seq: number;
  readonly ts: number;
  readonly kind: string;
  readonly actor: string;
  readonly subject: string;
  readonly decision: string;
  readonly reason: string;
  readonly details: { readonly [key: string]: JsonValue };
  readonly mac: Uint8Array;
}

/** The signed body of a checkpoint; `head_mac` is base64url. */
export interface AuditCheckpointBody {
  readonly v: 1;
  readonly head_seq: number;
  readonly head_mac: string;
  readonly count: number;
  readonly ts: number;
  readonly key_id: string;
}

export interface AuditCheckpoint {
  readonly body: AuditCheckpointBody;
  readonly signature: Uint8Array;
}

/** Signs checkpoints: typically `(ctx, msg) => signEd25519(seed, ctx, msg)` with the identity key. */
export interface AuditSigner {
  /** Names the key (e.g. the did:key) so a verifier knows which public key to use. */
  readonly keyId: string;
  sign(context: string, message: Uint8Array): Uint8Array;
}

export type AuditProblem =
  | 'mac_mismatch'
  | 'missing'
  | 'malformed'
  | 'truncated'
  | 'checkpoint_mismatch'
  | 'checkpoint_signature';

export type AuditVerification =
  | { readonly ok: true; readonly entries: number; readonly checkpoints: number; readonly headSeq: number }
  | {
      readonly ok: false;
      /** The first seq whose entry is wrong, missing, or (for a checkpoint problem) the checkpoint's head. */
      readonly firstBadSeq: number;
      readonly problem: AuditProblem;
      readonly message: string;
      /** Entries that verified before the problem. */
      readonly entries: number;
    };

export interface AuditLogOptions {
  /** HMAC key from the caller (≥ 32 bytes; the agent derives it from its identity with HKDF). */
  macKey: Uint8Array;
  /** Signs checkpoints; without it `checkpoint()` throws and none are made automatically. */
  signer?: AuditSigner;
  /** Make a checkpoint in the same transaction as every N-th entry (needs `signer`). */
  checkpointEvery?: number;
}

export interface AuditLog {
  /** Appends one entry, durable before it returns (inside a caller's `db.write` it joins that transaction). */
  append(entry: AuditEntryInput): AuditEntry;
  appendMany(entries: readonly AuditEntryInput[]): AuditEntry[];
  /** Signs and stores a checkpoint of the current head; undefined when the chain is empty. */
  checkpoint(): AuditCheckpoint | undefined;
  /** Head seq (0 when empty) and its MAC. */
  head(): { seq: number; mac: Uint8Array };
  /** Checks every entry and checkpoint; with `publicKey`, checkpoint signatures too. Reports the first problem. */
  verify(options?: { publicKey?: Uint8Array }): AuditVerification;
  /** Entries and checkpoints as JSON lines (each checkpoint right after its head entry). */
  exportJsonLines(): Generator<string>;
}

const EXPORT_PAGE = 1000;
const FIELD = /^[\x20-\x7e]{1,256}$/;

function checkField(value: unknown, name: string): string {
  if (typeof value !== 'string' || !FIELD.test(value)) {
    throw new StoreError('STORE_BAD_ARGUMENT', `audit ${name} must be 1–256 printable ASCII characters`);
  }
  return value;
}

/** Canonical bytes an entry's MAC covers (everything but the MAC). */
export function auditEntryBytes(e: Omit<AuditEntry, 'mac'>): Uint8Array {
  return canonicalBytes({
    v: 1,
    seq: e.seq,
    ts: e.ts,
    kind: e.kind,
    actor: e.actor,
    subject: e.subject,
    decision: e.decision,
    reason: e.reason,
    details: e.details,
  });
}

/** HMAC-SHA256(key, label || 0x00 || prevMac || auditEntryBytes(entry)). */
export function auditEntryMac(
  key: KeyObject | Uint8Array,
  prevMac: Uint8Array,
  entry: Omit<AuditEntry, 'mac'>,
): Uint8Array {
  const h = createHmac('sha256', key);
  h.update(concatBytes(utf8(AUDIT_MAC_LABEL), new Uint8Array([0]), prevMac));
  h.update(auditEntryBytes(entry));
  return new Uint8Array(h.digest());
}

/** True iff `checkpoint` carries a valid Ed25519 signature by `publicKey` over its canonical body. */
export function verifyAuditCheckpoint(checkpoint: AuditCheckpoint, publicKey: Uint8Array): boolean {
  let message: Uint8Array;
  try {
    message = canonicalBytes(checkpoint.body);
  } catch {
    return false; // a body JSON cannot carry is not a body anyone signed
  }
  return verifyEd25519(publicKey, AUDIT_CHECKPOINT_CONTEXT, message, checkpoint.signature);
}

function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Verifies a chain given in seq order and the checkpoints over it. Pure: used by `AuditLog.verify`
 * and by anyone holding an export and the MAC key.
 */
export function verifyAuditChain(
  entries: Iterable<AuditEntry>,
  checkpoints: readonly AuditCheckpoint[],
  options: { macKey: Uint8Array | KeyObject; publicKey?: Uint8Array },
): AuditVerification {
  const key = options.macKey instanceof Uint8Array ? createSecretKey(options.macKey) : options.macKey;
  const macAt = new Map<number, Uint8Array>();
  const wanted = new Set(checkpoints.map((c) => c.body.head_seq));
  let prev: Uint8Array = AUDIT_GENESIS_MAC;
  let expected = 1;
  for (const e of entries) {
    const fail = (problem: AuditProblem, firstBadSeq: number, message: string): AuditVerification => ({
      ok: false,
      firstBadSeq,
      problem,
      message,
      entries: expected - 1,
    });
    if (e.seq !== expected) {
      return e.seq > expected
        ? fail('missing', expected, `entry ${expected} is missing (next present is ${e.seq})`)
        : fail('malformed', e.seq, `entry ${e.seq} is out of order`);
    }
    let mac: Uint8Array;
    try {
      mac = auditEntryMac(key, prev, e);
    } catch (cause) {
      return fail('malformed', e.seq, `entry ${e.seq} cannot be canonicalised: ${(cause as Error).message}`);
    }
    if (!macEqual(mac, e.mac))
      return fail('mac_mismatch', e.seq, `entry ${e.seq} does not match its MAC (edited, replaced or moved)`);
    if (wanted.has(e.seq)) macAt.set(e.seq, mac);
    prev = mac;
    expected++;
  }
  const head = expected - 1;
  for (const c of [...checkpoints].sort((a, b) => a.body.head_seq - b.body.head_seq)) {
    const seq = c.body.head_seq;
    const fail = (problem: AuditProblem, message: string, firstBadSeq = seq): AuditVerification => ({
      ok: false,
      firstBadSeq,
      problem,
      message,
      entries: head,
    });
    if (options.publicKey && !verifyAuditCheckpoint(c, options.publicKey)) {
      return fail('checkpoint_signature', `checkpoint at ${seq} has no valid signature`);
    }
    if (seq > head) {
      return fail('truncated', `checkpoint vouches for ${seq} entries but the chain ends at ${head}`, head + 1);
    }
    const mac = macAt.get(seq);
    let signed: Uint8Array | undefined;
    try {
      signed = fromBase64Url(c.body.head_mac, 'checkpoint head_mac');
    } catch {
      signed = undefined;
    }
    if (!mac || !signed || !macEqual(mac, signed) || c.body.count !== seq) {
      return fail('checkpoint_mismatch', `checkpoint at ${seq} does not match the chain (history rewritten)`);
    }
  }
  return { ok: true, entries: head, checkpoints: checkpoints.length, headSeq: head };
}

interface EntryRow {
  seq: number;
  ts_ms: number;
  kind: string;
  actor: string;
  subject: string;
  decision: string;
  reason: string;
  details: string;
  mac: Uint8Array;
}

function fromRow(r: EntryRow): AuditEntry {
  let details: { [key: string]: JsonValue };
  try {
    details = JSON.parse(r.details) as { [key: string]: JsonValue };
  } catch {
    details = { unparsable: r.details }; // the MAC check then fails at this seq, which is the report we want
  }
  return {
    seq: r.seq,
    ts: r.ts_ms,
    kind: r.kind,
    actor: r.actor,
    subject: r.subject,
    decision: r.decision,
    reason: r.reason,
    details,
    mac: new Uint8Array(r.mac),
  };
}

function fromCheckpointRow(r: { body: string; signature: Uint8Array }): AuditCheckpoint {
  return { body: JSON.parse(r.body) as AuditCheckpointBody, signature: new Uint8Array(r.signature) };
}

/** The audit log in `db`, which must include AUDIT_MIGRATIONS. */
export function createAuditLog(db: StoreDatabase, options: AuditLogOptions): AuditLog {
  if (!(options.macKey instanceof Uint8Array) || options.macKey.length < 32) {
    throw new StoreError('STORE_KEY_INVALID', 'audit MAC key must be at least 32 bytes');
  }
  const every = options.checkpointEvery;
  if (every !== undefined && (!Number.isSafeInteger(every) || every < 1 || !options.signer)) {
    throw new StoreError('STORE_BAD_ARGUMENT', 'checkpointEvery needs a positive integer and a signer');
  }
  const key = createSecretKey(options.macKey);
  const sql = db.sqlite;
  const q = {
    head: sql.prepare('SELECT seq, mac FROM audit_entries ORDER BY seq DESC LIMIT 1'),
    insert: sql.prepare(
      `INSERT INTO audit_entries (seq, ts_ms, kind, actor, subject, decision, reason, details, mac)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertCheckpoint: sql.prepare(
      'INSERT OR REPLACE INTO audit_checkpoints (head_seq, body, signature) VALUES (?, ?, ?)',
    ),
    all: sql.prepare('SELECT * FROM audit_entries ORDER BY seq'),
    page: sql.prepare('SELECT * FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?'),
    checkpoints: sql.prepare('SELECT body, signature FROM audit_checkpoints ORDER BY head_seq'),
  };

  const headInTx = (): { seq: number; mac: Uint8Array } => {
    const r = q.head.get() as { seq: number; mac: Uint8Array } | undefined;
    return r ? { seq: r.seq, mac: new Uint8Array(r.mac) } : { seq: 0, mac: AUDIT_GENESIS_MAC };
  };

  const checkpointInTx = (): AuditCheckpoint | undefined => {
    if (!options.signer) throw new StoreError('STORE_BAD_ARGUMENT', 'audit checkpoints need a signer');
    const head = headInTx();
    if (head.seq === 0) return undefined;
    const body: AuditCheckpointBody = {
      v: 1,
      head_seq: head.seq,
      head_mac: toBase64Url(head.mac),
      count: head.seq,
      ts: Math.floor(db.clock.nowMs()),
      key_id: options.signer.keyId,
    };
    const signature = options.signer.sign(AUDIT_CHECKPOINT_CONTEXT, canonicalBytes(body));
    q.insertCheckpoint.run(head.seq, canonicalize(body), signature);
    return { body, signature };
  };

  const appendInTx = (input: AuditEntryInput, prev: { seq: number; mac: Uint8Array }): AuditEntry => {
    const details = input.details ?? {};
    if (details === null || typeof details !== 'object' || Array.isArray(details)) {
      throw new StoreError('STORE_BAD_ARGUMENT', 'audit details must be a JSON object');
    }
    const detailsText = canonicalize(details);
    if (detailsText.length > MAX_AUDIT_DETAILS_BYTES) {
      throw new StoreError('STORE_BAD_ARGUMENT', `audit details exceed ${MAX_AUDIT_DETAILS_BYTES} bytes`);
    }
    const unsigned = {
      seq: prev.seq + 1,
      ts: Math.floor(db.clock.nowMs()),
      kind: checkField(input.kind, 'kind'),
      actor: checkField(input.actor, 'actor'),
      subject: checkField(input.subject, 'subject'),
      decision: checkField(input.decision, 'decision'),
      reason: checkField(input.reason, 'reason'),
      details: JSON.parse(detailsText) as { [key: string]: JsonValue },
    };
    const mac = auditEntryMac(key, prev.mac, unsigned);
    q.insert.run(
      unsigned.seq,
      unsigned.ts,
      unsigned.kind,
      unsigned.actor,
      unsigned.subject,
      unsigned.decision,
      unsigned.reason,
      detailsText,
      mac,
    );
    if (every !== undefined && unsigned.seq % every === 0) checkpointInTx();
    return { ...unsigned, mac };
  };

  const appendMany = (entries: readonly AuditEntryInput[]): AuditEntry[] =>
    db.write(() => {
      let prev = headInTx();
      return entries.map((e) => {
        const entry = appendInTx(e, prev);
        prev = entry;
        return entry;
      });
    });

  const loadCheckpoints = () =>
    (q.checkpoints.all() as { body: string; signature: Uint8Array }[]).map(fromCheckpointRow);

  return {
    append: (entry) => appendMany([entry])[0]!,
    appendMany,
    checkpoint: () => db.write(checkpointInTx),
    head: () => db.read(headInTx),
    verify: (verifyOptions = {}) =>
      db.read(() => {
        let checkpoints: AuditCheckpoint[];
        try {
          checkpoints = loadCheckpoints();
        } catch {
          return {
            ok: false,
            firstBadSeq: 0,
            problem: 'malformed',
            message: 'a stored checkpoint is not JSON',
            entries: 0,
          };
        }
        const rows = (function* () {
          for (const r of q.all.iterate() as IterableIterator<EntryRow>) yield fromRow(r);
        })();
        return verifyAuditChain(rows, checkpoints, { macKey: key, publicKey: verifyOptions.publicKey });
      }),
    exportJsonLines: function* () {
      const checkpoints = new Map(db.read(loadCheckpoints).map((c) => [c.body.head_seq, c]));
      // Read in pages, so the consumer may use the database between lines.
      for (let after = 0; ; ) {
        const page = db.read(() => q.page.all(after, EXPORT_PAGE) as EntryRow[]);
        if (page.length === 0) return;
        for (const r of page) {
          const e = fromRow(r);
          yield canonicalize({ type: 'audit-entry', ...e, mac: toBase64Url(e.mac) } as unknown as JsonValue);
          const c = checkpoints.get(e.seq);
          if (c) {
            yield canonicalize({
              type: 'audit-checkpoint',
              body: c.body,
              signature: toBase64Url(c.signature),
            } as unknown as JsonValue);
          }
          after = e.seq;
        }
      }
    },
  };
}

// Export lines read back from a file: outside bytes, so every field is checked and failures are typed.
const Field = z.string().regex(FIELD);
const EntryLine = z.strictObject({
  type: z.literal('audit-entry'),
  seq: z.int().positive(),
  ts: z.int(),
  kind: Field,
  actor: Field,
  subject: Field,
  decision: Field,
  reason: Field,
  details: z.record(z.string(), z.json()),
  mac: z.string().max(64),
});
const CheckpointLine = z.strictObject({
  type: z.literal('audit-checkpoint'),
  body: z.strictObject({
    v: z.literal(1),
    head_seq: z.int().positive(),
    head_mac: z.string().max(64),
    count: z.int().nonnegative(),
    ts: z.int(),
    key_id: z.string().max(512),
  }),
  signature: z.string().max(128),
});
const ExportLine = z.discriminatedUnion('type', [EntryLine, CheckpointLine]);
/** Longest export line accepted (details are capped at 16 KiB canonical). */
export const MAX_AUDIT_EXPORT_LINE_BYTES = 64 * 1024;

/**
 * Parses JSON lines written by `exportJsonLines` (blank lines ignored) for `verifyAuditChain`.
 * Throws StoreError STORE_BAD_EXPORT naming the line for anything else.
 */
export function parseAuditExport(lines: Iterable<string>): { entries: AuditEntry[]; checkpoints: AuditCheckpoint[] } {
  const entries: AuditEntry[] = [];
  const checkpoints: AuditCheckpoint[] = [];
  let lineNo = 0;
  for (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    const bad = (why: string, cause?: unknown) =>
      new StoreError('STORE_BAD_EXPORT', `audit export line ${lineNo}: ${why}`, { cause, details: { line: lineNo } });
    let value: JsonValue;
    try {
      value = parseJson(line, MAX_AUDIT_EXPORT_LINE_BYTES);
    } catch (e) {
      throw bad(isOutpostError(e) ? e.message : 'not JSON', e);
    }
    const parsed = ExportLine.safeParse(value);
    if (!parsed.success) throw bad(`not an audit line (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    try {
      if (parsed.data.type === 'audit-entry') {
        const { type: _type, mac, details, ...rest } = parsed.data;
        entries.push({ ...rest, details: details as { [key: string]: JsonValue }, mac: fromBase64Url(mac, 'mac') });
      } else {
        checkpoints.push({ body: parsed.data.body, signature: fromBase64Url(parsed.data.signature, 'signature') });
      }
    } catch (e) {
      throw bad(isOutpostError(e) ? e.message : 'bad encoding', e);
    }
  }
  return { entries, checkpoints };
}
