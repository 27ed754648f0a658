// The control plane's store on one SQLite file (store/database.ts: WAL, synchronous=FULL, migrations), with the
// keyed audit chain of store/audit.ts. Each ControlPlaneStore method is one transaction; a commit is on stable
// storage when its promise resolves, which is what makes acknowledgements safe to send.

import { canonicalize, type JsonValue } from '../../protocol/canonical-json.ts';
import type { KeyRecord } from '../../protocol/jwks.ts';
import type { ReplayWindowState } from '../../protocol/lora.ts';
import type { CapabilityManifest } from '../../protocol/manifest.ts';
import type { QuorumPolicy } from '../../protocol/quorum.ts';
import type { AuditLog } from '../../store/audit.ts';
import type { MigrationSet, StoreDatabase } from '../../store/database.ts';
import { ControlPlaneError } from '../errors.ts';
import type {
  AnchoredCheckpoint,
  AnchorOutcome,
  ApprovalCallKey,
  ApprovalRecord,
  ApprovalRequestRecord,
  ApprovalStatus,
  ControlPlaneStore,
  DeviceRecord,
  EnrollOutcome,
  EnrollTokenRecord,
  ManifestVersion,
  OperatorKeyRecord,
  RevocationRecord,
  SigningKeyRecord,
  TelemetryIngestResult,
  TelemetryRow,
  TenantRecord,
} from '../ports.ts';

export const CONTROLPLANE_MIGRATIONS: MigrationSet = {
  component: 'controlplane',
  migrations: [
    {
      version: 1,
      name: 'tenants, credentials, devices, telemetry, approvals, revocations, keys, anchors',
      up: `
        CREATE TABLE cp_tenants (
          tid TEXT PRIMARY KEY,
          did TEXT NOT NULL UNIQUE,
          name TEXT NOT NULL UNIQUE,
          created_ms INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE cp_operator_keys (
          key_id TEXT PRIMARY KEY,
          tid TEXT NOT NULL REFERENCES cp_tenants (tid),
          secret_hash BLOB NOT NULL,     -- SHA-256 of the secret half; the secret is never stored
          label TEXT NOT NULL,
          root INTEGER NOT NULL,
          created_ms INTEGER NOT NULL,
          revoked_ms INTEGER
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE cp_enroll_tokens (
          token_hash BLOB PRIMARY KEY,   -- labelled SHA-256 of the token text
          token_id TEXT NOT NULL,
          tid TEXT NOT NULL REFERENCES cp_tenants (tid),
          role TEXT NOT NULL,
          labels TEXT NOT NULL,
          hold_manifest INTEGER NOT NULL,
          created_ms INTEGER NOT NULL,
          expires_ms INTEGER NOT NULL,
          created_by TEXT NOT NULL,
          used_ms INTEGER,
          used_by TEXT
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX cp_enroll_tokens_tid ON cp_enroll_tokens (tid, created_ms);
        CREATE TABLE cp_devices (
          num INTEGER PRIMARY KEY,       -- short key of the device's telemetry rows
          device TEXT NOT NULL UNIQUE,
          tid TEXT NOT NULL REFERENCES cp_tenants (tid),
          name TEXT NOT NULL,
          role TEXT NOT NULL,
          labels TEXT NOT NULL,
          x25519 TEXT,
          status TEXT NOT NULL,
          enrolled_ms INTEGER NOT NULL,
          enroll_token_id TEXT NOT NULL,
          revoked_ms INTEGER,
          revoke_reason TEXT,
          accepted_hash TEXT,
          accepted_manifest TEXT,
          accepted_since_ms INTEGER,
          pending_hash TEXT,
          pending_manifest TEXT,
          pending_since_ms INTEGER,
          last_seen_ms INTEGER
        ) STRICT;
        CREATE UNIQUE INDEX cp_devices_active_name ON cp_devices (tid, name) WHERE status = 'active';
        CREATE INDEX cp_devices_tid ON cp_devices (tid);
        CREATE TABLE cp_telemetry (
          dev INTEGER NOT NULL,          -- cp_devices.num
          seq INTEGER NOT NULL,
          stream TEXT NOT NULL,
          ts_ms INTEGER NOT NULL,
          value TEXT NOT NULL,           -- canonical JSON of the value
          quality TEXT,
          misfit INTEGER NOT NULL,
          received_ms INTEGER NOT NULL,
          PRIMARY KEY (dev, seq)         -- exactly once per (device, seq)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE cp_policies (
          tid TEXT PRIMARY KEY,
          policy TEXT NOT NULL,
          version INTEGER NOT NULL,
          updated_ms INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE cp_approval_requests (
          request_id TEXT PRIMARY KEY,
          tid TEXT NOT NULL,
          device TEXT NOT NULL,
          device_name TEXT NOT NULL,
          tool TEXT NOT NULL,
          safety_class TEXT NOT NULL,
          args TEXT NOT NULL,
          args_hash TEXT NOT NULL,
          nonce TEXT NOT NULL,
          exp_ms INTEGER NOT NULL,
          requester TEXT NOT NULL,
          created_ms INTEGER NOT NULL,
          k INTEGER NOT NULL,
          status TEXT NOT NULL,
          quorum TEXT,
          used_ms INTEGER
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX cp_approval_call ON cp_approval_requests (tid, device, tool, args_hash, requester, status);
        CREATE INDEX cp_approval_tid ON cp_approval_requests (tid, created_ms);
        CREATE TABLE cp_approvals (
          request_id TEXT NOT NULL,
          approver TEXT NOT NULL,
          sig TEXT NOT NULL,
          at_ms INTEGER NOT NULL,
          PRIMARY KEY (request_id, approver)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE cp_revocations (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          tid TEXT NOT NULL,
          kind TEXT NOT NULL,
          subject TEXT NOT NULL,
          until_ms INTEGER,
          at_ms INTEGER NOT NULL,
          reason TEXT NOT NULL
        ) STRICT;
        CREATE INDEX cp_revocations_tid ON cp_revocations (tid, seq);
        CREATE TABLE cp_signing_keys (
          kid TEXT PRIMARY KEY,
          public_key BLOB NOT NULL,
          state TEXT NOT NULL,
          activated_ms INTEGER NOT NULL,
          overlap_since_ms INTEGER,
          retired_ms INTEGER
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE cp_anchors (
          device TEXT NOT NULL,
          head_seq INTEGER NOT NULL,
          tid TEXT NOT NULL,
          head_mac TEXT NOT NULL,
          body TEXT NOT NULL,
          signature TEXT NOT NULL,
          received_ms INTEGER NOT NULL,
          PRIMARY KEY (device, head_seq)
        ) STRICT, WITHOUT ROWID;`,
    },
    {
      version: 2,
      name: 'LoRa relay state per device: uplink replay window, next downlink seq',
      up: `
        CREATE TABLE cp_lora_state (
          device TEXT PRIMARY KEY,
          window TEXT,                   -- {highest, bitmapHex} of the uplink replay window
          next_down_seq INTEGER NOT NULL -- never handed out twice: LoRa nonces derive from it
        ) STRICT, WITHOUT ROWID;`,
    },
    {
      version: 3,
      name: 'approval denials: who refused, with their signature (quorum.md §4.1)',
      up: `
        ALTER TABLE cp_approval_requests ADD COLUMN denial TEXT; -- {approver, sig, atMs} once denied`,
    },
    {
      version: 4,
      name: 'enroll tokens usable over LoRa: their LoRa id, the nonce the vault derives them from, the registered manifest',
      up: `
        ALTER TABLE cp_enroll_tokens ADD COLUMN lora_id TEXT;     -- hex LoRa token id (lora-frames.md §4.10.1)
        ALTER TABLE cp_enroll_tokens ADD COLUMN lora_nonce BLOB;  -- token = vault MAC of this: never stored itself
        ALTER TABLE cp_enroll_tokens ADD COLUMN manifest TEXT;    -- the device's manifest, registered with the token
        CREATE UNIQUE INDEX cp_enroll_tokens_lora ON cp_enroll_tokens (lora_id) WHERE lora_id IS NOT NULL;`,
    },
  ],
};

interface DeviceRow {
  num: number;
  device: string;
  tid: string;
  name: string;
  role: string;
  labels: string;
  x25519: string | null;
  status: string;
  enrolled_ms: number;
  enroll_token_id: string;
  revoked_ms: number | null;
  revoke_reason: string | null;
  accepted_hash: string | null;
  accepted_manifest: string | null;
  accepted_since_ms: number | null;
  pending_hash: string | null;
  pending_manifest: string | null;
  pending_since_ms: number | null;
  last_seen_ms: number | null;
}

interface ApprovalRow {
  request_id: string;
  tid: string;
  device: string;
  device_name: string;
  tool: string;
  safety_class: string;
  args: string;
  args_hash: string;
  nonce: string;
  exp_ms: number;
  requester: string;
  created_ms: number;
  k: number;
  status: string;
  quorum: string | null;
  used_ms: number | null;
  denial: string | null;
}

/** Rows this store writes are trusted: they were validated before they were written. */
function parse<T>(text: string): T {
  return JSON.parse(text) as T;
}

export interface SqliteStoreOptions {
  readonly db: StoreDatabase;
  readonly audit: AuditLog;
}

/** The ControlPlaneStore over an open database holding CONTROLPLANE_MIGRATIONS and AUDIT_MIGRATIONS. */
export function createSqliteControlPlaneStore(options: SqliteStoreOptions): ControlPlaneStore {
  const { db, audit } = options;
  const sql = db.sqlite;
  // Decoded manifests by hash: telemetry checks read a device's manifest for every batch.
  const manifests = new Map<string, CapabilityManifest>();
  const manifestOf = (hash: string, text: string): CapabilityManifest => {
    let m = manifests.get(hash);
    if (!m) {
      m = parse<CapabilityManifest>(text);
      if (manifests.size > 1024) manifests.delete(manifests.keys().next().value as string);
      manifests.set(hash, m);
    }
    return m;
  };
  const q = {
    loraGet: sql.prepare('SELECT window, next_down_seq FROM cp_lora_state WHERE device = ?'),
    loraWindowSet: sql.prepare(
      'INSERT INTO cp_lora_state (device, window, next_down_seq) VALUES (?, ?, 1) ON CONFLICT (device) DO UPDATE SET window = excluded.window',
    ),
    loraTakeSeqs: sql.prepare(
      'INSERT INTO cp_lora_state (device, window, next_down_seq) VALUES (?, NULL, 1 + ?) ON CONFLICT (device) DO UPDATE SET next_down_seq = next_down_seq + ? RETURNING next_down_seq',
    ),
    tenantInsert: sql.prepare('INSERT INTO cp_tenants (tid, did, name, created_ms) VALUES (?, ?, ?, ?)'),
    tenantGet: sql.prepare('SELECT * FROM cp_tenants WHERE tid = ?'),
    tenantAll: sql.prepare('SELECT * FROM cp_tenants ORDER BY created_ms'),
    keyInsert: sql.prepare(
      'INSERT INTO cp_operator_keys (key_id, tid, secret_hash, label, root, created_ms, revoked_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    keyGet: sql.prepare('SELECT * FROM cp_operator_keys WHERE key_id = ?'),
    tokenInsert: sql.prepare(
      `INSERT INTO cp_enroll_tokens (token_hash, token_id, tid, role, labels, hold_manifest, created_ms, expires_ms, created_by,
         lora_id, lora_nonce, manifest)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    tokenGet: sql.prepare('SELECT * FROM cp_enroll_tokens WHERE token_hash = ?'),
    tokenByLoraId: sql.prepare('SELECT * FROM cp_enroll_tokens WHERE lora_id = ?'),
    tokenList: sql.prepare('SELECT * FROM cp_enroll_tokens WHERE tid = ? ORDER BY created_ms DESC LIMIT 500'),
    tokenUse: sql.prepare(
      'UPDATE cp_enroll_tokens SET used_ms = ?, used_by = ? WHERE token_hash = ? AND used_ms IS NULL AND expires_ms > ?',
    ),
    deviceGet: sql.prepare('SELECT * FROM cp_devices WHERE device = ?'),
    deviceByName: sql.prepare("SELECT * FROM cp_devices WHERE tid = ? AND name = ? AND status = 'active'"),
    deviceList: sql.prepare('SELECT * FROM cp_devices WHERE tid = ? ORDER BY name'),
    deviceInsert: sql.prepare(
      `INSERT INTO cp_devices (device, tid, name, role, labels, x25519, status, enrolled_ms, enroll_token_id,
         accepted_hash, accepted_manifest, accepted_since_ms, pending_hash, pending_manifest, pending_since_ms)
       VALUES (@device, @tid, @name, @role, @labels, @x25519, 'active', @enrolled_ms, @enroll_token_id,
         @accepted_hash, @accepted_manifest, @accepted_since_ms, @pending_hash, @pending_manifest, @pending_since_ms)`,
    ),
    deviceReenroll: sql.prepare(
      `UPDATE cp_devices SET name = @name, role = @role, labels = @labels, x25519 = @x25519, enrolled_ms = @enrolled_ms,
         enroll_token_id = @enroll_token_id, accepted_hash = @accepted_hash, accepted_manifest = @accepted_manifest,
         accepted_since_ms = @accepted_since_ms, pending_hash = @pending_hash, pending_manifest = @pending_manifest,
         pending_since_ms = @pending_since_ms
       WHERE device = @device`,
    ),
    devicePending: sql.prepare(
      'UPDATE cp_devices SET pending_hash = ?, pending_manifest = ?, pending_since_ms = ? WHERE device = ?',
    ),
    deviceAccept: sql.prepare(
      `UPDATE cp_devices SET accepted_hash = ?, accepted_manifest = ?, accepted_since_ms = ?, name = ?,
         pending_hash = NULL, pending_manifest = NULL, pending_since_ms = NULL WHERE device = ?`,
    ),
    deviceTouch: sql.prepare('UPDATE cp_devices SET last_seen_ms = ? WHERE device = ?'),
    deviceRevoke: sql.prepare(
      "UPDATE cp_devices SET status = 'revoked', revoked_ms = ?, revoke_reason = ? WHERE device = ? AND status = 'active'",
    ),
    deviceNum: sql.prepare('SELECT num FROM cp_devices WHERE device = ?').pluck(),
    telemetryInsert: sql.prepare(
      `INSERT INTO cp_telemetry (dev, seq, stream, ts_ms, value, quality, misfit, received_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dev, seq) DO NOTHING`,
    ),
    telemetryGet: sql.prepare('SELECT stream, ts_ms, value, quality FROM cp_telemetry WHERE dev = ? AND seq = ?'),
    telemetryAfter: sql.prepare('SELECT seq FROM cp_telemetry WHERE dev = ? AND seq > ? ORDER BY seq LIMIT ?').pluck(),
    telemetryCountTenant: sql
      .prepare('SELECT count(*) FROM cp_telemetry t JOIN cp_devices d ON d.num = t.dev WHERE d.tid = ?')
      .pluck(),
    telemetryCountDevice: sql.prepare('SELECT count(*) FROM cp_telemetry WHERE dev = ?').pluck(),
    policyGet: sql.prepare('SELECT policy, version FROM cp_policies WHERE tid = ?'),
    policySet: sql.prepare(
      `INSERT INTO cp_policies (tid, policy, version, updated_ms) VALUES (?, ?, 1, ?)
       ON CONFLICT (tid) DO UPDATE SET policy = excluded.policy, version = version + 1, updated_ms = excluded.updated_ms
       RETURNING version`,
    ),
    approvalInsert: sql.prepare(
      `INSERT INTO cp_approval_requests (request_id, tid, device, device_name, tool, safety_class, args, args_hash, nonce,
         exp_ms, requester, created_ms, k, status)
       VALUES (@request_id, @tid, @device, @device_name, @tool, @safety_class, @args, @args_hash, @nonce,
         @exp_ms, @requester, @created_ms, @k, @status)`,
    ),
    approvalGet: sql.prepare('SELECT * FROM cp_approval_requests WHERE request_id = ?'),
    approvalList: sql.prepare('SELECT * FROM cp_approval_requests WHERE tid = ? ORDER BY created_ms DESC LIMIT ?'),
    approvalListStatus: sql.prepare(
      'SELECT * FROM cp_approval_requests WHERE tid = ? AND status = ? ORDER BY created_ms DESC LIMIT ?',
    ),
    approvalFind: sql.prepare(
      `SELECT * FROM cp_approval_requests WHERE tid = ? AND device = ? AND tool = ? AND args_hash = ? AND requester = ?
         AND status = ? AND exp_ms > ? ORDER BY created_ms DESC LIMIT 1`,
    ),
    approvalAdd: sql.prepare(
      'INSERT INTO cp_approvals (request_id, approver, sig, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    ),
    approvalsOf: sql.prepare(
      'SELECT approver, sig, at_ms FROM cp_approvals WHERE request_id = ? ORDER BY at_ms, approver',
    ),
    approvalApproved: sql.prepare(
      "UPDATE cp_approval_requests SET status = 'approved', quorum = ? WHERE request_id = ? AND status = 'pending'",
    ),
    approvalDeny: sql.prepare(
      "UPDATE cp_approval_requests SET status = 'denied', denial = ? WHERE request_id = ? AND status = 'pending'",
    ),
    approvalUse: sql.prepare(
      "UPDATE cp_approval_requests SET status = 'used', used_ms = ? WHERE request_id = ? AND status = 'approved'",
    ),
    revocationInsert: sql
      .prepare(
        'INSERT INTO cp_revocations (tid, kind, subject, until_ms, at_ms, reason) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq',
      )
      .pluck(),
    revocationList: sql.prepare('SELECT * FROM cp_revocations WHERE tid = ? AND seq > ? ORDER BY seq LIMIT ?'),
    revocationTokens: sql.prepare("SELECT * FROM cp_revocations WHERE kind = 'token' AND until_ms > ?"),
    keyList: sql.prepare('SELECT * FROM cp_signing_keys ORDER BY activated_ms'),
    keyPut: sql.prepare(
      `INSERT INTO cp_signing_keys (kid, public_key, state, activated_ms, overlap_since_ms, retired_ms)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (kid) DO UPDATE SET state = excluded.state, overlap_since_ms = excluded.overlap_since_ms,
         retired_ms = excluded.retired_ms`,
    ),
    keyDelete: sql.prepare('DELETE FROM cp_signing_keys WHERE kid = ?'),
    anchorGet: sql.prepare('SELECT head_mac FROM cp_anchors WHERE device = ? AND head_seq = ?').pluck(),
    anchorTop: sql.prepare('SELECT max(head_seq) FROM cp_anchors WHERE device = ?').pluck(),
    anchorInsert: sql.prepare(
      'INSERT INTO cp_anchors (device, head_seq, tid, head_mac, body, signature, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    anchorList: sql.prepare('SELECT * FROM cp_anchors WHERE device = ? ORDER BY head_seq DESC LIMIT ?'),
  };

  const toDevice = (r: DeviceRow): DeviceRecord => ({
    device: r.device,
    tid: r.tid,
    name: r.name,
    role: r.role as DeviceRecord['role'],
    labels: parse(r.labels),
    ...(r.x25519 ? { x25519PublicKey: r.x25519 } : {}),
    status: r.status as DeviceRecord['status'],
    enrolledMs: r.enrolled_ms,
    enrollTokenId: r.enroll_token_id,
    ...(r.revoked_ms !== null ? { revokedMs: r.revoked_ms, revokeReason: r.revoke_reason ?? '' } : {}),
    ...(r.accepted_hash && r.accepted_manifest
      ? {
          accepted: {
            hash: r.accepted_hash,
            manifest: manifestOf(r.accepted_hash, r.accepted_manifest),
            sinceMs: r.accepted_since_ms ?? r.enrolled_ms,
          },
        }
      : {}),
    ...(r.pending_hash && r.pending_manifest
      ? {
          pending: {
            hash: r.pending_hash,
            manifest: manifestOf(r.pending_hash, r.pending_manifest),
            sinceMs: r.pending_since_ms ?? r.enrolled_ms,
          },
        }
      : {}),
    ...(r.last_seen_ms !== null ? { lastSeenMs: r.last_seen_ms } : {}),
  });

  const toApproval = (r: ApprovalRow): ApprovalRequestRecord => ({
    requestId: r.request_id,
    tid: r.tid,
    device: r.device,
    deviceName: r.device_name,
    tool: r.tool,
    safetyClass: r.safety_class,
    args: parse(r.args),
    argsHash: r.args_hash,
    nonce: r.nonce,
    expMs: r.exp_ms,
    requester: r.requester,
    createdMs: r.created_ms,
    k: r.k,
    status: r.status as ApprovalStatus,
    approvals: (q.approvalsOf.all(r.request_id) as { approver: string; sig: string; at_ms: number }[]).map(
      (a): ApprovalRecord => ({ approver: a.approver, sig: a.sig, atMs: a.at_ms }),
    ),
    ...(r.quorum ? { quorum: r.quorum } : {}),
    ...(r.used_ms !== null ? { usedMs: r.used_ms } : {}),
    ...(r.denial ? { denial: parse<ApprovalRecord>(r.denial) } : {}),
  });

  const toToken = (r: Record<string, unknown>): EnrollTokenRecord => ({
    tokenId: r.token_id as string,
    tokenHash: new Uint8Array(r.token_hash as Uint8Array),
    tid: r.tid as string,
    role: r.role as EnrollTokenRecord['role'],
    labels: parse(r.labels as string),
    holdManifest: r.hold_manifest === 1,
    createdMs: r.created_ms as number,
    expiresMs: r.expires_ms as number,
    createdBy: r.created_by as string,
    ...(r.used_ms !== null ? { usedMs: r.used_ms as number, usedBy: (r.used_by as string) ?? '' } : {}),
    ...(r.lora_id
      ? {
          lora: {
            id: r.lora_id as string,
            nonce: new Uint8Array(r.lora_nonce as Uint8Array),
            manifest: parse<CapabilityManifest>(r.manifest as string),
          },
        }
      : {}),
  });

  const toRevocation = (r: Record<string, unknown>): RevocationRecord => ({
    seq: r.seq as number,
    tid: r.tid as string,
    kind: r.kind as RevocationRecord['kind'],
    subject: r.subject as string,
    ...(r.until_ms !== null ? { untilMs: r.until_ms as number } : {}),
    atMs: r.at_ms as number,
    reason: r.reason as string,
  });

  const deviceParams = (d: DeviceRecord) => ({
    device: d.device,
    tid: d.tid,
    name: d.name,
    role: d.role,
    labels: JSON.stringify(d.labels),
    x25519: d.x25519PublicKey ?? null,
    enrolled_ms: d.enrolledMs,
    enroll_token_id: d.enrollTokenId,
    accepted_hash: d.accepted?.hash ?? null,
    accepted_manifest: d.accepted ? canonicalize(d.accepted.manifest) : null,
    accepted_since_ms: d.accepted?.sinceMs ?? null,
    pending_hash: d.pending?.hash ?? null,
    pending_manifest: d.pending ? canonicalize(d.pending.manifest) : null,
    pending_since_ms: d.pending?.sinceMs ?? null,
  });

  const getDevice = (device: string) => {
    const r = q.deviceGet.get(device) as DeviceRow | undefined;
    return r ? toDevice(r) : undefined;
  };

  return {
    async createTenant(t: TenantRecord) {
      db.write(() => q.tenantInsert.run(t.tid, t.did, t.name, t.createdMs));
    },
    async getTenant(tid) {
      const r = db.read(() => q.tenantGet.get(tid)) as Record<string, unknown> | undefined;
      return r
        ? { tid: r.tid as string, did: r.did as string, name: r.name as string, createdMs: r.created_ms as number }
        : undefined;
    },
    async listTenants() {
      return (db.read(() => q.tenantAll.all()) as Record<string, unknown>[]).map((r) => ({
        tid: r.tid as string,
        did: r.did as string,
        name: r.name as string,
        createdMs: r.created_ms as number,
      }));
    },

    async addOperatorKey(k: OperatorKeyRecord) {
      db.write(() =>
        q.keyInsert.run(k.keyId, k.tid, k.secretHash, k.label, k.root ? 1 : 0, k.createdMs, k.revokedMs ?? null),
      );
    },
    async getOperatorKey(keyId) {
      const r = db.read(() => q.keyGet.get(keyId)) as Record<string, unknown> | undefined;
      if (!r) return undefined;
      return {
        keyId: r.key_id as string,
        tid: r.tid as string,
        secretHash: new Uint8Array(r.secret_hash as Uint8Array),
        label: r.label as string,
        root: r.root === 1,
        createdMs: r.created_ms as number,
        ...(r.revoked_ms !== null ? { revokedMs: r.revoked_ms as number } : {}),
      };
    },

    async putEnrollToken(t) {
      db.write(() =>
        q.tokenInsert.run(
          t.tokenHash,
          t.tokenId,
          t.tid,
          t.role,
          JSON.stringify(t.labels),
          t.holdManifest ? 1 : 0,
          t.createdMs,
          t.expiresMs,
          t.createdBy,
          t.lora?.id ?? null,
          t.lora?.nonce ?? null,
          t.lora ? canonicalize(t.lora.manifest) : null,
        ),
      );
    },
    async getEnrollToken(tokenHash) {
      const r = db.read(() => q.tokenGet.get(tokenHash)) as Record<string, unknown> | undefined;
      return r ? toToken(r) : undefined;
    },
    async getEnrollTokenByLoraId(loraId) {
      const r = db.read(() => q.tokenByLoraId.get(loraId)) as Record<string, unknown> | undefined;
      return r ? toToken(r) : undefined;
    },
    async listEnrollTokens(tid) {
      return (db.read(() => q.tokenList.all(tid)) as Record<string, unknown>[]).map(toToken);
    },
    async completeEnrollment({ tokenHash, nowMs, device }): Promise<EnrollOutcome> {
      return db.write((): EnrollOutcome => {
        const token = q.tokenGet.get(tokenHash) as Record<string, unknown> | undefined;
        if (!token) return { ok: false, reason: 'ENROLL_TOKEN_UNKNOWN' };
        if (token.used_ms !== null) return { ok: false, reason: 'ENROLL_TOKEN_USED' };
        if ((token.expires_ms as number) <= nowMs) return { ok: false, reason: 'ENROLL_TOKEN_EXPIRED' };
        const existing = q.deviceGet.get(device.device) as DeviceRow | undefined;
        if (existing && existing.status !== 'active') return { ok: false, reason: 'DEVICE_REVOKED' };
        if (existing && existing.tid !== device.tid) return { ok: false, reason: 'DEVICE_OTHER_TENANT' };
        const named = q.deviceByName.get(device.tid, device.name) as DeviceRow | undefined;
        if (named && named.device !== device.device) return { ok: false, reason: 'DEVICE_NAME_TAKEN' };
        q.tokenUse.run(nowMs, device.device, tokenHash, nowMs);
        if (existing) q.deviceReenroll.run(deviceParams(device));
        else q.deviceInsert.run(deviceParams(device));
        return { ok: true, device: toDevice(q.deviceGet.get(device.device) as DeviceRow), reenrolled: !!existing };
      });
    },

    async getDevice(device) {
      return db.read(() => getDevice(device));
    },
    async listDevices(tid) {
      return (db.read(() => q.deviceList.all(tid)) as DeviceRow[]).map(toDevice);
    },
    async findDeviceByName(tid, name) {
      const r = db.read(() => q.deviceByName.get(tid, name)) as DeviceRow | undefined;
      return r ? toDevice(r) : undefined;
    },
    async setPendingManifest(device, pending: ManifestVersion | undefined) {
      db.write(() =>
        q.devicePending.run(
          pending?.hash ?? null,
          pending ? canonicalize(pending.manifest) : null,
          pending?.sinceMs ?? null,
          device,
        ),
      );
    },
    async acceptManifest(device, version) {
      return db.write(() => {
        q.deviceAccept.run(
          version.hash,
          canonicalize(version.manifest),
          version.sinceMs,
          version.manifest.device.name,
          device,
        );
        return getDevice(device)!;
      });
    },
    async loraWindow(device) {
      const r = db.read(() => q.loraGet.get(device)) as { window: string | null } | undefined;
      return r?.window ? parse<ReplayWindowState>(r.window) : undefined;
    },
    async saveLoraWindow(device, state) {
      db.write(() =>
        q.loraWindowSet.run(device, JSON.stringify({ highest: state.highest, bitmapHex: state.bitmapHex })),
      );
    },
    async takeLoraDownlinkSeqs(device, count) {
      if (!Number.isInteger(count) || count < 1 || count > 4096) {
        throw new ControlPlaneError('INTERNAL', 'downlink seqs are taken 1..4096 at a time');
      }
      const next = db.write(
        () => (q.loraTakeSeqs.get(device, count, count) as { next_down_seq: number }).next_down_seq,
      );
      const first = next - count;
      if (next - 1 > 0xffff_ffff) throw new ControlPlaneError('INTERNAL', 'LoRa downlink seqs exhausted: re-enroll');
      return first;
    },
    async touchDevice(device, lastSeenMs) {
      db.write(() => q.deviceTouch.run(lastSeenMs, device));
    },
    async revokeDevice(device, atMs, reason) {
      return db.write(() => {
        const row = q.deviceGet.get(device) as DeviceRow | undefined;
        if (!row || q.deviceRevoke.run(atMs, reason, device).changes === 0) return undefined;
        const seq = q.revocationInsert.get(row.tid, 'device', device, null, atMs, reason) as number;
        return { seq, tid: row.tid, kind: 'device' as const, subject: device, atMs, reason };
      });
    },

    async ingestTelemetry(batch): Promise<TelemetryIngestResult> {
      return db.write(() => {
        let stored = 0;
        let duplicates = 0;
        const conflicts: { device: string; seq: number }[] = [];
        const nums = new Map<string, number>();
        for (const unit of batch.units) {
          let num = nums.get(unit.device);
          if (num === undefined) {
            num = q.deviceNum.get(unit.device) as number | undefined;
            if (num === undefined) continue; // checked by the caller; a device that vanished stores nothing
            nums.set(unit.device, num);
          }
          for (const r of unit.records) {
            const value = JSON.stringify(r.value);
            const quality = r.quality ? r.quality.join(',') : null;
            if (
              q.telemetryInsert.run(num, r.seq, r.stream, r.ts, value, quality, r.misfit ? 1 : 0, batch.receivedMs)
                .changes === 1
            ) {
              stored++;
              continue;
            }
            const prior = q.telemetryGet.get(num, r.seq) as
              | { stream: string; ts_ms: number; value: string; quality: string | null }
              | undefined;
            if (
              prior &&
              prior.stream === r.stream &&
              prior.ts_ms === r.ts &&
              prior.value === value &&
              prior.quality === quality
            ) {
              duplicates++;
            } else {
              conflicts.push({ device: unit.device, seq: r.seq });
            }
          }
        }
        return { stored, duplicates, conflicts };
      });
    },
    async telemetryResumePoint(device, from) {
      return db.read(() => {
        const num = q.deviceNum.get(device) as number | undefined;
        if (num === undefined) return from;
        let at = from ?? -1;
        for (;;) {
          const page = q.telemetryAfter.all(num, at, 10_000) as number[];
          let advanced = 0;
          for (const seq of page) {
            if (seq !== at + 1) break;
            at = seq;
            advanced++;
          }
          if (advanced < 10_000) break;
        }
        return at < 0 ? from : at;
      });
    },
    async listTelemetry(query) {
      const where: string[] = ['d.tid = ?'];
      const params: (string | number)[] = [query.tid];
      if (query.device) {
        where.push('d.device = ?');
        params.push(query.device);
      }
      if (query.stream) {
        where.push('t.stream = ?');
        params.push(query.stream);
      }
      if (query.afterSeq !== undefined) {
        where.push('t.seq > ?');
        params.push(query.afterSeq);
      }
      const rows = db.read(() =>
        sql
          .prepare(
            `SELECT d.device, t.seq, t.stream, t.ts_ms, t.value, t.quality, t.misfit, t.received_ms
             FROM cp_telemetry t JOIN cp_devices d ON d.num = t.dev WHERE ${where.join(' AND ')}
             ORDER BY d.device ${query.newest ? 'DESC' : ''}, t.seq ${query.newest ? 'DESC' : ''} LIMIT ?`,
          )
          .all(...params, query.limit),
      ) as {
        device: string;
        seq: number;
        stream: string;
        ts_ms: number;
        value: string;
        quality: string | null;
        misfit: number;
        received_ms: number;
      }[];
      if (query.newest) rows.reverse();
      return rows.map(
        (r): TelemetryRow => ({
          device: r.device,
          seq: r.seq,
          stream: r.stream,
          ts: r.ts_ms,
          value: parse(r.value),
          ...(r.quality ? { quality: r.quality.split(',') } : {}),
          misfit: r.misfit === 1,
          receivedMs: r.received_ms,
        }),
      );
    },
    async countTelemetry(tid, device, stream) {
      return db.read(() => {
        if (stream !== undefined) {
          const where =
            device === undefined ? 'd.tid = ? AND t.stream = ?' : 'd.tid = ? AND d.device = ? AND t.stream = ?';
          const params = device === undefined ? [tid, stream] : [tid, device, stream];
          return sql
            .prepare(`SELECT count(*) FROM cp_telemetry t JOIN cp_devices d ON d.num = t.dev WHERE ${where}`)
            .pluck()
            .get(...params) as number;
        }
        if (device === undefined) return q.telemetryCountTenant.get(tid) as number;
        const num = q.deviceNum.get(device) as number | undefined;
        return num === undefined ? 0 : (q.telemetryCountDevice.get(num) as number);
      });
    },

    async getPolicy(tid) {
      const r = db.read(() => q.policyGet.get(tid)) as { policy: string; version: number } | undefined;
      return r ? { policy: parse<QuorumPolicy>(r.policy), version: r.version } : undefined;
    },
    async setPolicy(tid, policy, atMs) {
      return db.write(() => (q.policySet.get(tid, canonicalize(policy), atMs) as { version: number }).version);
    },

    async putApprovalRequest(r) {
      db.write(() =>
        q.approvalInsert.run({
          request_id: r.requestId,
          tid: r.tid,
          device: r.device,
          device_name: r.deviceName,
          tool: r.tool,
          safety_class: r.safetyClass,
          args: canonicalize(r.args),
          args_hash: r.argsHash,
          nonce: r.nonce,
          exp_ms: r.expMs,
          requester: r.requester,
          created_ms: r.createdMs,
          k: r.k,
          status: r.status,
        }),
      );
    },
    async getApprovalRequest(id) {
      return db.read(() => {
        const r = q.approvalGet.get(id) as ApprovalRow | undefined;
        return r ? toApproval(r) : undefined;
      });
    },
    async listApprovalRequests(tid, status, limit = 100) {
      return db.read(() =>
        ((status ? q.approvalListStatus.all(tid, status, limit) : q.approvalList.all(tid, limit)) as ApprovalRow[]).map(
          toApproval,
        ),
      );
    },
    async findPendingRequest(key: ApprovalCallKey, nowMs) {
      return db.read(() => {
        const r = q.approvalFind.get(key.tid, key.device, key.tool, key.argsHash, key.requester, 'pending', nowMs) as
          | ApprovalRow
          | undefined;
        return r ? toApproval(r) : undefined;
      });
    },
    async addApproval(id, approval) {
      return db.write(() => {
        const r = q.approvalGet.get(id) as ApprovalRow | undefined;
        if (!r) return undefined;
        q.approvalAdd.run(id, approval.approver, approval.sig, approval.atMs);
        return toApproval(r);
      });
    },
    async markApproved(id, quorum) {
      db.write(() => q.approvalApproved.run(quorum, id));
    },
    async markDenied(id, denial) {
      return db.write(() => q.approvalDeny.run(canonicalize(denial), id).changes === 1);
    },
    async consumeApproval(key, nowMs) {
      return db.write(() => {
        const r = q.approvalFind.get(key.tid, key.device, key.tool, key.argsHash, key.requester, 'approved', nowMs) as
          | ApprovalRow
          | undefined;
        if (!r || q.approvalUse.run(nowMs, r.request_id).changes !== 1) return undefined;
        return toApproval(q.approvalGet.get(r.request_id) as ApprovalRow);
      });
    },

    async addRevocation(r) {
      return db.write(() => {
        const seq = q.revocationInsert.get(r.tid, r.kind, r.subject, r.untilMs ?? null, r.atMs, r.reason) as number;
        return { ...r, seq };
      });
    },
    async listRevocations(tid, afterSeq, limit) {
      return (db.read(() => q.revocationList.all(tid, afterSeq, limit)) as Record<string, unknown>[]).map(toRevocation);
    },
    async activeTokenRevocations(nowMs) {
      return (db.read(() => q.revocationTokens.all(nowMs)) as Record<string, unknown>[]).map(toRevocation);
    },

    async listSigningKeys(): Promise<SigningKeyRecord[]> {
      return (db.read(() => q.keyList.all()) as Record<string, unknown>[]).map((r) => {
        const base = { kid: r.kid as string, activatedAtMs: r.activated_ms as number };
        const record: KeyRecord =
          r.state === 'active'
            ? { ...base, state: 'active' }
            : r.state === 'overlap'
              ? { ...base, state: 'overlap', overlapSinceMs: r.overlap_since_ms as number }
              : {
                  ...base,
                  state: 'retired',
                  overlapSinceMs: r.overlap_since_ms as number,
                  retiredAtMs: r.retired_ms as number,
                };
        return { record, publicKey: new Uint8Array(r.public_key as Uint8Array) };
      });
    },
    async putSigningKey({ record, publicKey }) {
      db.write(() =>
        q.keyPut.run(
          record.kid,
          publicKey,
          record.state,
          record.activatedAtMs,
          record.state === 'active' ? null : record.overlapSinceMs,
          record.state === 'retired' ? record.retiredAtMs : null,
        ),
      );
    },
    async deleteSigningKey(kid) {
      db.write(() => q.keyDelete.run(kid));
    },

    async anchorCheckpoint(a: AnchoredCheckpoint): Promise<AnchorOutcome> {
      return db.write((): AnchorOutcome => {
        const same = q.anchorGet.get(a.device, a.headSeq) as string | undefined;
        const top = (q.anchorTop.get(a.device) as number | null) ?? 0;
        if (same !== undefined) {
          return same === a.headMac
            ? { ok: true, duplicate: true }
            : { ok: false, reason: 'CONFLICT', anchoredHeadSeq: top };
        }
        if (a.headSeq < top) return { ok: false, reason: 'REGRESSION', anchoredHeadSeq: top };
        q.anchorInsert.run(a.device, a.headSeq, a.tid, a.headMac, canonicalize(a.body), a.signature, a.receivedMs);
        return { ok: true, duplicate: false };
      });
    },
    async listAnchors(device, limit) {
      return (db.read(() => q.anchorList.all(device, limit)) as Record<string, unknown>[]).map((r) => ({
        device: r.device as string,
        tid: r.tid as string,
        headSeq: r.head_seq as number,
        headMac: r.head_mac as string,
        body: parse<{ [key: string]: JsonValue }>(r.body as string),
        signature: r.signature as string,
        receivedMs: r.received_ms as number,
      }));
    },

    async audit(entries) {
      audit.appendMany(entries);
    },
    async exportAudit() {
      const verification = audit.verify();
      const lines = [...audit.exportJsonLines()];
      return { lines, verified: verification.ok, headSeq: audit.head().seq };
    },
  };
}
