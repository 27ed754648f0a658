// The small interfaces the control plane's logic runs over: a store, a key vault, a session registry, a
// scheduler (and a Clock from protocol/). The Node + SQLite host implements them in controlplane/node/; another
// host (Workers + Durable Objects + D1) would implement the same ones. Every store call is async and atomic.

import type { JsonValue } from '../protocol/canonical-json.ts';
import type { BodyOf } from '../protocol/envelope.ts';
import type { KeyRecord } from '../protocol/jwks.ts';
import type { LoraControlKind, LoraSession, ReplayWindowState } from '../protocol/lora.ts';
import type { CapabilityManifest } from '../protocol/manifest.ts';
import type { QuorumPolicy } from '../protocol/quorum.ts';
import type { RuntimeClaims } from '../protocol/tokens.ts';

// ---------------------------------------------------------------------------------------------
// Records

export interface TenantRecord {
  /** UUIDv5 of `did` (tokens.md §2). */
  readonly tid: string;
  readonly did: string;
  /** Short human name (the did:web's last segment). */
  readonly name: string;
  readonly createdMs: number;
}

export interface OperatorKeyRecord {
  /** Public half of the key text; names the key in audit entries. */
  readonly keyId: string;
  readonly tid: string;
  /** SHA-256 of the secret half (credentials.ts); the secret itself is never stored. */
  readonly secretHash: Uint8Array;
  readonly label: string;
  /** A root key may create tenants. */
  readonly root: boolean;
  readonly createdMs: number;
  readonly revokedMs?: number;
}

export type MachineRole = 'device' | 'gateway';

export interface EnrollTokenRecord {
  /** First 16 hex digits of the token hash: names the token in listings and audit without revealing it. */
  readonly tokenId: string;
  readonly tokenHash: Uint8Array;
  readonly tid: string;
  readonly role: MachineRole;
  readonly labels: Readonly<Record<string, string>>;
  /** Hold the first manifest for an operator's acceptance instead of accepting it with the enrollment. */
  readonly holdManifest: boolean;
  readonly createdMs: number;
  readonly expiresMs: number;
  /** Operator key id or token subject that minted it. */
  readonly createdBy: string;
  readonly usedMs?: number;
  readonly usedBy?: string;
  /**
   * For enrollment over LoRa (lora-frames.md §4.10): the token's LoRa id (hex), the nonce the vault derives the token
   * from (the token text itself is never stored), and the device's manifest, registered with the token because it
   * does not fit the air.
   */
  readonly lora?: { readonly id: string; readonly nonce: Uint8Array; readonly manifest: CapabilityManifest };
}

export interface ManifestVersion {
  readonly hash: string;
  readonly manifest: CapabilityManifest;
  readonly sinceMs: number;
}

export type DeviceStatus = 'active' | 'revoked';

export interface DeviceRecord {
  /** The device's Ed25519 did:key. */
  readonly device: string;
  readonly tid: string;
  /** `manifest.device.name`: unique among the tenant's active devices; the MCP tool-name prefix. */
  readonly name: string;
  readonly role: MachineRole;
  readonly labels: Readonly<Record<string, string>>;
  /** The device's X25519 public key for LoRa session keys (base64url, 32 bytes), if it sent one. */
  readonly x25519PublicKey?: string;
  readonly status: DeviceStatus;
  readonly enrolledMs: number;
  readonly enrollTokenId: string;
  readonly revokedMs?: number;
  readonly revokeReason?: string;
  /** The manifest an operator (or the enrollment) accepted; tool calls are routed only against it. */
  readonly accepted?: ManifestVersion;
  /** A newer manifest the device announced, held until an operator accepts it. */
  readonly pending?: ManifestVersion;
  readonly lastSeenMs?: number;
}

/** One telemetry record as stored: exactly once per (device, seq). */
export interface StoredTelemetryRecord {
  readonly seq: number;
  readonly stream: string;
  readonly ts: number;
  readonly value: number | boolean | string;
  readonly quality?: readonly string[];
  /** The value does not fit the stream of the accepted manifest (kept, acknowledged, not a reading). */
  readonly misfit: boolean;
}

export interface TelemetryIngestBatch {
  readonly tid: string;
  readonly receivedMs: number;
  readonly units: readonly { readonly device: string; readonly records: readonly StoredTelemetryRecord[] }[];
}

export interface TelemetryIngestResult {
  readonly stored: number;
  readonly duplicates: number;
  /** Records whose (device, seq) was stored before with different content: logged and audited, never stored. */
  readonly conflicts: readonly { readonly device: string; readonly seq: number }[];
}

export interface TelemetryQuery {
  readonly tid: string;
  readonly device?: string;
  readonly stream?: string;
  /** Only records with seq above this. */
  readonly afterSeq?: number;
  /** The last `limit` matching records instead of the first (still returned in (device, seq) order). */
  readonly newest?: boolean;
  readonly limit: number;
}

export interface TelemetryRow extends StoredTelemetryRecord {
  readonly device: string;
  readonly receivedMs: number;
}

export type ApprovalStatus = 'pending' | 'approved' | 'used' | 'expired' | 'denied';

export interface ApprovalRecord {
  readonly approver: string;
  /** base64url Ed25519 signature over the request (quorum.md §4). */
  readonly sig: string;
  readonly atMs: number;
}

export interface ApprovalRequestRecord {
  readonly requestId: string;
  readonly tid: string;
  readonly device: string;
  readonly deviceName: string;
  readonly tool: string;
  readonly safetyClass: string;
  /** The exact arguments, so approvers see what they sign (the request carries only their hash). */
  readonly args: { readonly [key: string]: JsonValue };
  readonly argsHash: string;
  readonly nonce: string;
  readonly expMs: number;
  /** `sub` of the caller whose call asked for it; only that caller's call uses the approval. */
  readonly requester: string;
  readonly createdMs: number;
  /** Approvals needed, from the policy at creation (re-read when counting). */
  readonly k: number;
  readonly status: ApprovalStatus;
  readonly approvals: readonly ApprovalRecord[];
  /** base64url quorum token, once k approvals exist. */
  readonly quorum?: string;
  readonly usedMs?: number;
  /** The approver who refused it, with their denial signature (quorum.md §4.1). */
  readonly denial?: ApprovalRecord;
}

/** Trust material sent to a LoRa device: the policy version, digests of the key set and issuer, and when. */
export interface LoraProvisioned {
  readonly policyVersion: number;
  readonly jwks: string;
  readonly issuer: string;
  /** Wall-clock ms of the last send. */
  readonly atMs: number;
  /**
   * Rounds still to send of the CONTROL kinds that changed last (lora-endpoint.ts): a device does not acknowledge
   * CONTROL, so a change goes out again on later hearings of the device, once the previous round left the gateway.
   */
  readonly repeat?: { readonly kinds: readonly ProvisionedKind[]; readonly left: number };
}

/** The CONTROL kinds the control plane provisions (lora-frames.md §4.11; it never sends `revoke`). */
export type ProvisionedKind = Exclude<LoraControlKind, 'revoke'>;

export type RevocationKind = 'device' | 'token' | 'key';

export interface RevocationRecord {
  /** Increasing per control plane: consumers page with `after`. */
  readonly seq: number;
  readonly tid: string;
  readonly kind: RevocationKind;
  /** A device id, a token jti or a key id. */
  readonly subject: string;
  /** For tokens: refuse until then (the token's expiry); absent for devices and keys (forever). */
  readonly untilMs?: number;
  readonly atMs: number;
  readonly reason: string;
}

export interface SigningKeyRecord {
  readonly record: KeyRecord;
  /** Ed25519 (32 B) or hybrid Ed25519 ‖ ML-DSA-65 (1984 B) public key. */
  readonly publicKey: Uint8Array;
}

/** A device's signed audit checkpoint (store/audit.ts body + signature), as anchored. */
export interface AnchoredCheckpoint {
  readonly device: string;
  readonly tid: string;
  readonly headSeq: number;
  readonly headMac: string;
  readonly body: { readonly [key: string]: JsonValue };
  readonly signature: string;
  readonly receivedMs: number;
}

/** An audit entry as the control plane writes it (store/audit.ts AuditEntryInput). */
export interface AuditInput {
  readonly kind: string;
  readonly actor: string;
  readonly subject: string;
  readonly decision: string;
  readonly reason: string;
  readonly details?: { readonly [key: string]: JsonValue };
}

// ---------------------------------------------------------------------------------------------
// Store

export type EnrollRefusal =
  | 'ENROLL_TOKEN_UNKNOWN'
  | 'ENROLL_TOKEN_USED'
  | 'ENROLL_TOKEN_EXPIRED'
  | 'DEVICE_REVOKED'
  | 'DEVICE_OTHER_TENANT'
  | 'DEVICE_NAME_TAKEN';

export type EnrollOutcome =
  | { readonly ok: true; readonly device: DeviceRecord; readonly reenrolled: boolean }
  | { readonly ok: false; readonly reason: EnrollRefusal };

export type AnchorOutcome =
  | { readonly ok: true; readonly duplicate: boolean }
  /** A checkpoint for a head already anchored with another MAC, or below the highest anchored head. */
  | { readonly ok: false; readonly reason: 'CONFLICT' | 'REGRESSION'; readonly anchoredHeadSeq: number };

/**
 * Durable state. Each method is one atomic step (one transaction, one D1 batch, one Durable Object call), so the
 * logic never needs a transaction across calls. Implementations throw their own typed errors for I/O failures.
 */
export interface ControlPlaneStore {
  createTenant(tenant: TenantRecord): Promise<void>;
  getTenant(tid: string): Promise<TenantRecord | undefined>;
  listTenants(): Promise<TenantRecord[]>;

  addOperatorKey(key: OperatorKeyRecord): Promise<void>;
  getOperatorKey(keyId: string): Promise<OperatorKeyRecord | undefined>;

  putEnrollToken(token: EnrollTokenRecord): Promise<void>;
  getEnrollToken(tokenHash: Uint8Array): Promise<EnrollTokenRecord | undefined>;
  getEnrollTokenByLoraId(loraId: string): Promise<EnrollTokenRecord | undefined>;
  listEnrollTokens(tid: string): Promise<EnrollTokenRecord[]>;
  /**
   * Atomically: the token exists, is unused and unexpired at `nowMs`; the device is not revoked, not enrolled in
   * another tenant; no other active device of the tenant has its name. Then marks the token used and writes the
   * device (replacing the record of a re-enrolling device of the same tenant, keeping its history fields).
   */
  completeEnrollment(input: {
    readonly tokenHash: Uint8Array;
    readonly nowMs: number;
    readonly device: DeviceRecord;
  }): Promise<EnrollOutcome>;

  getDevice(device: string): Promise<DeviceRecord | undefined>;
  listDevices(tid: string): Promise<DeviceRecord[]>;
  /** The active device of the tenant with this name. */
  findDeviceByName(tid: string, name: string): Promise<DeviceRecord | undefined>;
  setPendingManifest(device: string, pending: ManifestVersion | undefined): Promise<void>;
  /** Makes `hash` the accepted manifest (it must be the pending one, or the current accepted one). */
  acceptManifest(device: string, version: ManifestVersion): Promise<DeviceRecord>;
  touchDevice(device: string, lastSeenMs: number): Promise<void>;
  revokeDevice(device: string, atMs: number, reason: string): Promise<RevocationRecord | undefined>;

  ingestTelemetry(batch: TelemetryIngestBatch): Promise<TelemetryIngestResult>;
  /**
   * The resume point of envelope.md §5.4: starting from `from` (the device's last acknowledged seq, or null for
   * none), the highest S such that every seq in (from, S] is stored; `from` itself when the next one is not.
   */
  telemetryResumePoint(device: string, from: number | null): Promise<number | null>;
  listTelemetry(query: TelemetryQuery): Promise<TelemetryRow[]>;
  /** Records stored for the tenant, optionally of one device and one stream. */
  countTelemetry(tid: string, device?: string, stream?: string): Promise<number>;

  getPolicy(tid: string): Promise<{ readonly policy: QuorumPolicy; readonly version: number } | undefined>;
  /** Stores the policy and returns its new version. */
  setPolicy(tid: string, policy: QuorumPolicy, atMs: number): Promise<number>;

  putApprovalRequest(request: ApprovalRequestRecord): Promise<void>;
  getApprovalRequest(requestId: string): Promise<ApprovalRequestRecord | undefined>;
  listApprovalRequests(tid: string, status?: ApprovalStatus, limit?: number): Promise<ApprovalRequestRecord[]>;
  /** The newest pending, unexpired request of this caller for this exact call. */
  findPendingRequest(key: ApprovalCallKey, nowMs: number): Promise<ApprovalRequestRecord | undefined>;
  /** Adds an approval (idempotent per approver); returns the request as stored afterwards. */
  addApproval(requestId: string, approval: ApprovalRecord): Promise<ApprovalRequestRecord | undefined>;
  /** Marks a pending request approved with its quorum token. */
  markApproved(requestId: string, quorum: string): Promise<void>;
  /** pending → denied, recording who refused; false when the request was no longer pending. */
  markDenied(requestId: string, denial: ApprovalRecord): Promise<boolean>;
  /**
   * Atomically finds the approved, unused, unexpired request of this caller for this exact call and marks it
   * used: single use.
   */
  consumeApproval(key: ApprovalCallKey, nowMs: number): Promise<ApprovalRequestRecord | undefined>;

  addRevocation(revocation: Omit<RevocationRecord, 'seq'>): Promise<RevocationRecord>;
  listRevocations(tid: string, afterSeq: number, limit: number): Promise<RevocationRecord[]>;
  /** jtis revoked with `untilMs` after `nowMs` (kept in memory by the token checks). */
  activeTokenRevocations(nowMs: number): Promise<RevocationRecord[]>;

  listSigningKeys(): Promise<SigningKeyRecord[]>;
  putSigningKey(key: SigningKeyRecord): Promise<void>;
  deleteSigningKey(kid: string): Promise<void>;

  anchorCheckpoint(anchor: AnchoredCheckpoint): Promise<AnchorOutcome>;
  listAnchors(device: string, limit: number): Promise<AnchoredCheckpoint[]>;

  /** The device's LoRa uplink replay window as last saved (lora-frames.md §10.2). */
  loraWindow(device: string): Promise<ReplayWindowState | undefined>;
  /** Saves the uplink replay window durably, before the frame that moved it is acted on. */
  saveLoraWindow(device: string, state: ReplayWindowState): Promise<void>;
  /** `count` downlink seqs for `device` never handed out before (durable before returned); returns the first. */
  takeLoraDownlinkSeqs(device: string, count: number): Promise<number>;
  /** What trust material a LoRa device was last sent (lora-endpoint.ts), so a restart does not send it all again. */
  loraProvisioned(device: string): Promise<LoraProvisioned | undefined>;
  saveLoraProvisioned(device: string, state: LoraProvisioned): Promise<void>;

  /** Appends to the keyed audit chain (store/audit.ts in the Node host), durably. */
  audit(entries: readonly AuditInput[]): Promise<void>;
  /** The audit chain as export lines (store/audit.ts format) and whether it verifies. */
  exportAudit(): Promise<{ readonly lines: readonly string[]; readonly verified: boolean; readonly headSeq: number }>;
}

export interface ApprovalCallKey {
  readonly tid: string;
  readonly device: string;
  readonly tool: string;
  readonly argsHash: string;
  readonly requester: string;
}

// ---------------------------------------------------------------------------------------------
// Keys

/** Private keys of the control plane. Secret material never leaves the vault's implementation through this API. */
export interface KeyVault {
  /** Generates and durably stores a new token signing key; returns its kid and public key (32 or 1984 bytes). */
  generateTokenKey(hybrid: boolean): Promise<{ readonly kid: string; readonly publicKey: Uint8Array }>;
  /** Signs claims as a runtime token with the key `kid` (protocol/tokens.ts signRuntimeToken). */
  signToken(kid: string, claims: RuntimeClaims): Promise<string>;
  /** Destroys the secret of a purged key. */
  destroyTokenKey(kid: string): Promise<void>;
  /** The control plane's long-term Ed25519 identity: signs audit checkpoints and exports. */
  readonly identity: {
    readonly publicKey: Uint8Array;
    sign(context: string, message: Uint8Array): Uint8Array;
  };
  /** HMAC-SHA256 under a control-plane secret, for stateless challenges. */
  mac(context: string, message: Uint8Array): Uint8Array;
  /** The control plane's X25519 key for LoRa session keys (lora-frames.md §5.2). */
  readonly lora: {
    readonly publicKey: Uint8Array;
    /** False for a peer key whose shared secret would be all zero (low order) or that is not 32 bytes. */
    isAcceptablePeer(publicKey: Uint8Array): boolean;
    /** A device's LoRa session keys (lora-frames.md §5.2), derived inside the vault. */
    session(input: {
      readonly devicePublicKey: Uint8Array;
      readonly tid: string;
      readonly deviceId: string;
    }): LoraSession;
  };
}

// ---------------------------------------------------------------------------------------------
// Sessions

export type ToolResultBody = BodyOf<'tool.result'>;

export interface ToolCallRequest {
  readonly tool: string;
  readonly args: { readonly [key: string]: JsonValue };
  readonly token: string;
  readonly quorum?: string;
  readonly deadlineMs: number;
}

/** One live device (or gateway) session, wherever it runs. */
export interface SessionHandle {
  readonly sessionId: string;
  readonly device: string;
  readonly tid: string;
  readonly role: MachineRole;
  readonly connectedAtMs: number;
  /** The manifest hash the device runs now (from hello or its last announce). */
  manifestHash(): string;
  /** Sends a control-plane envelope of `type` with `body` (the session numbers and addresses it). */
  send<
    T extends 'revoke' | 'policy.update' | 'manifest.ack' | 'lora.downlink' | 'lora.downlink.cancel' | 'lora.devices',
  >(type: T, body: BodyOf<T>): void;
  /** Sends tool.call and resolves with the device's tool.result, or rejects (DEVICE_TIMEOUT, SESSION_CLOSED …). */
  callTool(call: ToolCallRequest): Promise<ToolResultBody>;
  /** Ends the session with a wire error code (envelope.md §8) and a WebSocket close code. */
  close(code: 'SESSION_REPLACED' | 'FORBIDDEN' | 'SHUTTING_DOWN', message: string): void;
}

/** Where live sessions are found: in one process a map; across hosts a Durable Object per device. */
export interface SessionRegistry {
  /** Registers `session`; returns the session it replaced for the same device, if any. */
  register(session: SessionHandle): SessionHandle | undefined;
  /** Removes `session` if it is still the registered one for its device. */
  unregister(session: SessionHandle): void;
  get(device: string): SessionHandle | undefined;
  /** Sessions of one tenant. */
  online(tid: string): SessionHandle[];
  /** Every session (shutdown). */
  all(): SessionHandle[];
  count(): number;
}

/** Timers, injected so a host (or a test) decides how they run. */
export interface Scheduler {
  /** Runs `fn` after `ms`; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}
