// The device agent daemon: createAgent wires identity, trust, store, manifest, gate, executor, telemetry,
// local API, MCP and metrics from what it is given (nothing happens at import time), and computes its
// status from facts. Without an uplink it is off-grid and fully useful; an Uplink plugs into the pump.

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Clock } from '../protocol/clock.ts';
import { isOutpostError } from '../protocol/errors.ts';
import type { Logger } from '../protocol/log.ts';
import { projectManifest } from '../protocol/mcp-projection.ts';
import type { MetricsRegistry } from '../protocol/metrics.ts';
import { createTokenVerifier, type TokenVerifier } from '../protocol/token-verifier.ts';
import { AUDIT_MIGRATIONS, type AuditLog, createAuditLog } from '../store/audit.ts';
import { openDatabase, type StoreDatabase } from '../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS, type Outbox, type StreamPolicy } from '../store/outbox.ts';
import { createSequence, SEQUENCE_MIGRATIONS } from '../store/sequence.ts';
import { type Actions, createActions, queueStatsView } from './actions.ts';
import { type AgentMetrics, createAgentMetrics } from './agent-metrics.ts';
import { AGENT_MIGRATIONS, type AgentStore, createAgentStore } from './agent-store.ts';
import type { StatusView } from './api-types.ts';
import { builtinTools } from './builtin-tools.ts';
import type { AgentConfig } from './config.ts';
import { readEnrollment, trustFiles } from './enrollment.ts';
import { enrollmentTrust, loraEnrollmentTrust } from './enrollment-trust.ts';
import { AgentError } from './errors.ts';
import { createExecutor, type Executor } from './executor.ts';
import { auditMacKey, auditSigner, type Identity, identityView, loadIdentity } from './identity.ts';
import { createLocalApiServer, type LocalApiServer } from './local-api/server.ts';
import { readLoraSession } from './lora-session.ts';
import { type BuiltAgentManifest, buildAgentManifest } from './manifest-builder.ts';
import { createMcpHttpServer, type McpHttpServer } from './mcp-http.ts';
import type { McpBackend } from './mcp-server.ts';
import { createMetricsHttpServer, type MetricsHttpServer } from './metrics-http.ts';
import { deriveOutboxKey } from './outbox-key.ts';
import type { AgentPaths } from './paths.ts';
import { createRecentTelemetry } from './recent-telemetry.ts';
import { createSamplers, type Samplers } from './samplers.ts';
import { createSpaceGuard } from './space-guard.ts';
import { type AgentPhase, type AgentStatus, computeStatus } from './status.ts';
import { createSystemInfo, type SystemInfoSource } from './system-info.ts';
import { createTelemetryIngest } from './telemetry-ingest.ts';
import { createToolCalls, HISTORY_WINDOW_MS } from './tool-calls.ts';
import { loadTrustBundle, readJwksFile, type TrustBundle } from './trust-bundle.ts';
import type { Uplink } from './uplink.ts';
import { startUplinkPump, type UplinkPump } from './uplink-pump.ts';
import { isWallClockTrusted } from './wall-clock.ts';
import { createWallFloorClock, WALL_FLOOR_FILE } from './wall-floor.ts';

export interface AgentDeps {
  readonly config: AgentConfig;
  /** The config file's text, to locate manifest problems in it. */
  readonly configText: string;
  readonly paths: AgentPaths;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly version: string;
  /** Where board facts come from (tests pass their own). */
  readonly systemInfo?: SystemInfoSource;
  /** The upstream link; none = off-grid. */
  readonly uplink?: Uplink;
  /** better-sqlite3 native binding (the single binary loads it itself). */
  readonly nativeBinding?: string | object;
}

export interface Agent {
  /** Opens everything and starts serving. Throws AgentError/StoreError with a clear code when it cannot. */
  start(): Promise<void>;
  /** Stops serving, lets running calls settle, closes the store. Safe to call twice. */
  stop(): Promise<void>;
  status(): StatusView;
  /** The actions behind the local API (for in-process callers such as tests and the MCP endpoint). */
  actions(): Actions;
}

const MANIFEST_HASH_KEY = 'manifest_hash';
const MANIFEST_TOOLS_KEY = 'manifest_tools';
/** How often spent values and old runs are pruned. */
const PRUNE_INTERVAL_MS = 3_600_000;

/** The state directory must exist and be private to the agent's user (and group): it holds the key. */
function ensureStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new AgentError(
      'STATE_DIR_UNUSABLE',
      `cannot create the state directory ${dir} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}); ` +
        'run as the agent user, or choose another with OUTPOST_STATE_DIR or [paths] state_dir',
      { cause, details: { path: dir } },
    );
  }
  const st = statSync(dir);
  if (!st.isDirectory()) {
    throw new AgentError('STATE_DIR_UNUSABLE', `${dir} is not a directory`, { details: { path: dir } });
  }
  if ((st.mode & 0o002) !== 0) {
    throw new AgentError('STATE_DIR_UNUSABLE', `${dir} is world-writable; run: chmod o-w ${dir}`, {
      details: { path: dir, mode: (st.mode & 0o777).toString(8) },
    });
  }
}

/** Outbox policy per stream: the manifest's priority 7 (most important) is the outbox's 0 (most urgent). */
function streamPolicies(manifest: BuiltAgentManifest): Record<string, StreamPolicy> {
  const out: Record<string, StreamPolicy> = {};
  for (const s of manifest.streams.values()) out[s.spec.name] = { priority: 7 - s.spec.priority, ttlMs: s.spec.ttlMs };
  return out;
}

export function createAgent(deps: AgentDeps): Agent {
  const { config, paths, clock, log } = deps;
  let phase: AgentPhase = 'starting';
  let started: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  const startedAtMs = clock.nowMs();
  const startedMono = clock.monotonicMs();

  // Filled in by start(); each close in stop() is guarded by whether it was opened.
  let identity: Identity | undefined;
  let trust: TrustBundle | undefined;
  let db: StoreDatabase | undefined;
  let outbox: Outbox | undefined;
  let audit: AuditLog | undefined;
  let manifest: BuiltAgentManifest | undefined;
  let manifestChanged = false;
  let executor: Executor | undefined;
  let samplers: Samplers | undefined;
  let localApi: LocalApiServer | undefined;
  let mcpHttp: McpHttpServer | undefined;
  let metricsHttp: MetricsHttpServer | undefined;
  let pump: UplinkPump | undefined;
  let metrics: AgentMetrics | undefined;
  let actions: Actions | undefined;
  let pruneTimer: NodeJS.Timeout | undefined;
  const endpoints: { socket: string; mcp_http?: string; metrics?: string } = { socket: paths.socketPath };
  let droppedAtStart = 0;
  let writeFault: 'none' | 'disk_full' | 'storage' = 'none';
  let lastStatus: AgentStatus | undefined;

  function statusFacts(): AgentStatus {
    const stats = outbox?.stats();
    const dropped = stats ? Object.values(stats.dropsByReason).reduce((a, b) => a + b, 0) : 0;
    return computeStatus({
      phase,
      trustConfigured: trust !== undefined,
      uplink: deps.uplink ? deps.uplink.state() : 'none',
      clockTrusted: isWallClockTrusted(clock),
      queue: {
        bytes: stats?.bytes ?? 0,
        maxBytes: config.queue.max_bytes,
        droppedSinceStart: dropped - droppedAtStart,
      },
      samplers: samplers?.states() ?? [],
      diskFull: writeFault === 'disk_full',
      storageFailing: writeFault === 'storage',
    });
  }

  /** Logs when the computed status changes (state or the set of problems). */
  function noteStatus(): AgentStatus {
    const s = statusFacts();
    const key = (x: AgentStatus | undefined) =>
      x ? `${x.state}/${x.link}/${x.problems.map((p) => p.code).join(',')}` : '';
    if (key(s) !== key(lastStatus)) {
      const fields = { state: s.state, link: s.link, problems: s.problems.map((p) => p.code).join(',') || 'none' };
      if (s.state === 'ok' || s.state === 'starting' || s.state === 'stopping') log.info('agent.status', fields);
      else log.warning('agent.status', fields);
    }
    lastStatus = s;
    return s;
  }

  function statusView(): StatusView {
    const stats = outbox?.stats();
    return {
      version: deps.version,
      name: config.agent.name,
      did: identity?.did ?? '',
      status: noteStatus(),
      started_at_ms: startedAtMs,
      uptime_s: Math.round((clock.monotonicMs() - startedMono) / 1000),
      manifest_hash: manifest?.hash ?? '',
      manifest_changed_at_start: manifestChanged,
      tools: manifest?.tools.size ?? 0,
      streams: manifest?.streams.size ?? 0,
      trust: trust
        ? { configured: true, tenant_id: trust.tenantId, approvers: trust.policy.approvers.length }
        : { configured: false },
      queue: stats
        ? queueStatsView(stats, { maxBytes: config.queue.max_bytes, maxRecords: config.queue.max_records })
        : {
            depth: 0,
            bytes: 0,
            max_bytes: config.queue.max_bytes,
            max_records: config.queue.max_records,
            oldest_age_s: null,
            dropped: {},
            by_stream: {},
          },
      endpoints: { ...endpoints },
      ...(deps.uplink?.detail ? { uplink: deps.uplink.detail() } : {}),
      samplers: (samplers?.states() ?? []).map((s) => ({
        stream: s.stream,
        kind: s.kind,
        samples: s.samples,
        errors: s.errors,
        ...(s.lastError ? { last_error: s.lastError } : {}),
      })),
    };
  }

  /** Records a change of the capability set: log, audit entry and status flag. */
  function recordManifest(m: BuiltAgentManifest, store: AgentStore, log2: AuditLog, did: string): void {
    const previous = store.getMeta(MANIFEST_HASH_KEY);
    if (previous === m.hash) return;
    const before = new Set<string>(previous ? (JSON.parse(store.getMeta(MANIFEST_TOOLS_KEY) ?? '[]') as string[]) : []);
    const now = [...m.tools.keys()];
    const added = now.filter((t) => !before.has(t));
    const removed = [...before].filter((t) => !m.tools.has(t));
    manifestChanged = previous !== undefined;
    db!.write(() => {
      log2.append({
        kind: 'manifest.change',
        actor: 'agent',
        subject: did,
        decision: 'record',
        reason: previous ? 'CHANGED' : 'FIRST',
        details: { previous: previous ?? null, hash: m.hash, added, removed },
      });
      store.setMeta(MANIFEST_HASH_KEY, m.hash);
      store.setMeta(MANIFEST_TOOLS_KEY, JSON.stringify(now));
    });
    const fields = {
      hash: m.hash,
      previous: previous ?? 'none',
      added: added.join(',') || 'none',
      removed: removed.join(',') || 'none',
    };
    if (previous) log.notice('manifest.changed', fields);
    else log.info('manifest.first', fields);
  }

  async function doStart(): Promise<void> {
    ensureStateDir(paths.stateDir);
    identity = loadIdentity({ keyFile: paths.identityKeyFile, env: deps.env, create: true });
    if (identity.created) log.notice('identity.created', { did: identity.did, file: paths.identityKeyFile });
    const expiryClock = createWallFloorClock({ clock, file: join(paths.stateDir, WALL_FLOOR_FILE) });
    let verifier: TokenVerifier | undefined;
    if (config.trust && paths.trust) {
      const files = paths.trust;
      trust = loadTrustBundle(files, config.trust);
      verifier = createTokenVerifier({
        // Re-read from disk on an unknown kid: replacing jwks.json takes effect without a restart.
        fetchJwks: async () => readJwksFile(files.jwksFile),
        initialJwks: trust.jwks,
        clock: expiryClock,
        issuer: trust.issuer,
        audience: trust.audience,
        minRefetchIntervalMs: 5_000,
      });
    } else {
      // An enrolled device trusts its control plane: keys and policy that the upstream link keeps current.
      const enrolled = readEnrollment(paths.stateDir);
      const files = trustFiles(paths.stateDir);
      if (enrolled && existsSync(files.jwksFile)) {
        trust = enrollmentTrust(paths.stateDir, enrolled);
        verifier = createTokenVerifier({
          fetchJwks: async () => readJwksFile(files.jwksFile),
          initialJwks: trust.jwks,
          clock: expiryClock,
          issuer: trust.issuer,
          audience: trust.audience,
          minRefetchIntervalMs: 5_000,
        });
      } else if (!enrolled) {
        // Enrolled over LoRa only: keys, issuer and policy arrive as CONTROL messages, possibly after this start.
        const lora = readLoraSession(paths.stateDir);
        if (lora) ({ trust, verifier } = loraEnrollmentTrust(paths.stateDir, lora.tid, expiryClock));
      }
    }
    db = openDatabase(paths.databaseFile, {
      migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS, AUDIT_MIGRATIONS, AGENT_MIGRATIONS],
      clock,
      log: log.child({ part: 'store' }),
      ...(deps.nativeBinding ? { nativeBinding: deps.nativeBinding } : {}),
    });
    const store = createAgentStore(db);
    const closed = store.closeDanglingRuns();
    if (closed > 0) log.warning('tool.runs_interrupted', { runs: closed });
    store.prune(HISTORY_WINDOW_MS);
    audit = createAuditLog(db, { macKey: auditMacKey(identity), signer: auditSigner(identity), checkpointEvery: 256 });

    const recent = createRecentTelemetry(config.telemetry.recent_per_stream);
    const systemInfo = deps.systemInfo ?? createSystemInfo({ diskPath: paths.stateDir });
    manifest = buildAgentManifest({
      config,
      configFile: paths.configFile,
      configText: deps.configText,
      deviceId: identity.did,
      agentVersion: deps.version,
      builtins: builtinTools({ systemInfo, recent }),
    });
    recordManifest(manifest, store, audit, identity.did);

    outbox = createOutbox(db, {
      key: deriveOutboxKey(identity.seed),
      streams: streamPolicies(manifest),
      defaultPolicy: { priority: 7, ttlMs: config.queue.ttl_s * 1000 },
      maxBytes: config.queue.max_bytes,
      maxItems: config.queue.max_records,
      maxAgeMs: 30 * 86_400_000,
      onDrop: (d) =>
        log.warning('queue.dropped', { stream: d.stream, reason: d.reason, items: d.items, bytes: d.bytes }),
    });
    const openStats = outbox.stats();
    droppedAtStart = Object.values(openStats.dropsByReason).reduce((a, b) => a + b, 0);
    const m = manifest;
    const ob = outbox;
    metrics = createAgentMetrics(deps.metrics, {
      outboxStats: () => ob.stats(),
      maxBytes: config.queue.max_bytes,
      version: deps.version,
      manifestHash: () => m.hash,
      clock,
    });
    const agentMetrics = metrics;
    const sequence = createSequence(db, 'telemetry');
    const storeDb = db;
    const space = createSpaceGuard({ path: paths.stateDir, reserveBytes: config.queue.reserve_free_bytes, clock });
    const ingest = createTelemetryIngest({
      outbox,
      sequence,
      identitySeed: identity.seed,
      streams: manifest.streams,
      recent,
      clock,
      onAppended: (stream, n, source) => {
        agentMetrics.telemetryAppended(stream, n, source);
        if (writeFault !== 'none') {
          writeFault = 'none';
          noteStatus();
        }
        pump?.poke();
      },
      onWriteError: (e) => {
        writeFault = e.code === 'DISK_FULL' ? 'disk_full' : 'storage';
        log.error('telemetry.write_failed', { code: e.code });
        if (writeFault === 'disk_full') {
          // Fold the WAL into the database file so small safety writes (audit, tool runs) find room again.
          try {
            storeDb.checkpoint();
          } catch (cause) {
            log.warning('store.checkpoint_failed', { code: isOutpostError(cause) ? cause.code : 'INTERNAL' });
          }
        }
        noteStatus();
      },
      hasRoom: () => space.hasRoom(),
    });
    // Programs run here unless they name a cwd: private to the agent, beside its state.
    const workDir = join(paths.stateDir, 'work');
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    executor = createExecutor({ clock, workDir });
    const toolCalls = createToolCalls({
      manifest,
      deviceId: identity.did,
      trust,
      verifier,
      agentStore: store,
      audit,
      transaction: (fn) => storeDb.write(fn),
      executor,
      clock,
      expiryClock,
      log: log.child({ part: 'tools' }),
      observer: { decided: agentMetrics.toolDecided, finished: agentMetrics.toolFinished },
    });
    const ident = identity;
    actions = createActions({
      manifest,
      identity: identityView(identity),
      toolCalls,
      ingest,
      recent,
      outbox,
      audit,
      publicKey: ident.publicKey,
      queueLimits: { maxBytes: config.queue.max_bytes, maxRecords: config.queue.max_records },
      status: statusView,
      onIngestRejected: agentMetrics.ingestRejected,
    });
    const acts = actions;

    try {
      mkdirSync(dirname(paths.socketPath), { recursive: true, mode: 0o750 });
    } catch (cause) {
      throw new AgentError(
        'STATE_DIR_UNUSABLE',
        `cannot create the socket directory ${dirname(paths.socketPath)}; choose another socket with OUTPOST_SOCKET or [paths] socket`,
        { cause, details: { path: paths.socketPath } },
      );
    }
    localApi = createLocalApiServer({
      socketPath: paths.socketPath,
      socketMode: config.local_api.socket_mode,
      maxBodyBytes: config.local_api.max_body_bytes,
      requestTimeoutMs: config.local_api.request_timeout_ms,
      handle: acts.handle,
      log: log.child({ part: 'local_api' }),
    });
    await localApi.listen();
    if (config.mcp.http_enabled) {
      const backend: McpBackend = {
        listTools: async () => projectManifest(m.manifest),
        callTool: (c) =>
          acts.callTool({
            tool: c.tool,
            args: c.args,
            source: 'mcp_http',
            ...(c.callId ? { callId: c.callId } : {}),
            ...(c.token ? { token: c.token } : {}),
            ...(c.quorum ? { quorum: c.quorum } : {}),
          }),
      };
      mcpHttp = createMcpHttpServer({
        port: config.mcp.http_port,
        backend,
        name: `outpost-${config.agent.name}`,
        version: deps.version,
        log: log.child({ part: 'mcp_http' }),
        maxBodyBytes: config.local_api.max_body_bytes,
      });
      endpoints.mcp_http = await mcpHttp.listen();
    }
    if (config.metrics.enabled) {
      metricsHttp = createMetricsHttpServer({
        port: config.metrics.port,
        registry: deps.metrics,
        refresh: agentMetrics.refresh,
        log: log.child({ part: 'metrics' }),
      });
      endpoints.metrics = await metricsHttp.listen();
    }

    samplers = createSamplers({
      streams: manifest.streams,
      ingest,
      systemInfo,
      clock,
      log: log.child({ part: 'samplers' }),
      workDir,
      onError: (stream) => {
        agentMetrics.samplerError(stream);
        noteStatus();
      },
    });
    samplers.start();
    if (deps.uplink) {
      const o = outbox;
      deps.uplink.bind?.({
        identity: { did: ident.did, seed: ident.seed },
        manifest: m.manifest,
        manifestHash: m.hash,
        callTool: (c) => acts.callTool({ ...c, source: 'upstream' }),
        auditCheckpoint: () => audit?.checkpoint(),
        agent: {
          did: ident.did,
          identitySeed: ident.seed,
          stateDir: paths.stateDir,
          manifest: m,
          db: storeDb,
          trust,
          callTool: (request) => acts.callTool(request),
          queuedRecords: () => o.stats().items,
        },
      });
      await deps.uplink.start();
      pump = startUplinkPump({ outbox, uplink: deps.uplink, log: log.child({ part: 'uplink' }) });
      deps.uplink.onStateChange(() => noteStatus());
    }
    pruneTimer = setInterval(() => {
      try {
        store.prune(HISTORY_WINDOW_MS);
      } catch (e) {
        log.warning('store.prune_failed', { err: e as Error });
      }
    }, PRUNE_INTERVAL_MS);
    pruneTimer.unref();
    audit.append({
      kind: 'agent.start',
      actor: 'agent',
      subject: identity.did,
      decision: 'record',
      reason: 'OK',
      details: { version: deps.version, manifest_hash: manifest.hash },
    });
    phase = 'running';
    log.notice('agent.started', {
      did: identity.did,
      manifest_hash: manifest.hash,
      tools: manifest.tools.size,
      streams: manifest.streams.size,
      socket: paths.socketPath,
      mcp_http: endpoints.mcp_http ?? 'off',
      metrics: endpoints.metrics ?? 'off',
      trust: trust ? trust.tenantId : 'none',
      link: deps.uplink ? deps.uplink.name : 'off_grid',
    });
    noteStatus();
  }

  async function doStop(): Promise<void> {
    phase = 'stopping';
    if (pruneTimer) clearInterval(pruneTimer);
    // Order: stop taking work, let work in flight settle, then close the store.
    await samplers?.stop();
    await Promise.allSettled([localApi?.close(), mcpHttp?.close(), metricsHttp?.close()]);
    await pump?.stop();
    await deps.uplink?.stop();
    await executor?.stop();
    try {
      outbox?.close();
      if (db?.isOpen && audit && identity) {
        audit.append({ kind: 'agent.stop', actor: 'agent', subject: identity.did, decision: 'record', reason: 'OK' });
        db.checkpoint();
      }
    } catch (e) {
      // A full disk must not keep the agent from stopping; what was committed before is safe.
      log.warning('agent.stop_write_failed', { code: isOutpostError(e) ? e.code : 'INTERNAL' });
    }
    db?.close();
    log.notice('agent.stopped', {});
  }

  return {
    start() {
      started ??= doStart().catch(async (e) => {
        // Undo what was opened, so a failed start leaves no socket or open file behind.
        stopped ??= doStop();
        await stopped.catch((stopError) => log.warning('agent.cleanup_failed', { err: stopError as Error }));
        throw e;
      });
      return started;
    },
    stop() {
      stopped ??= doStop();
      return stopped;
    },
    status: statusView,
    actions() {
      if (!actions) throw new AgentError('SHUTTING_DOWN', 'the agent is not running');
      return actions;
    },
  };
}
