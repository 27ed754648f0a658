// The agent's status, computed from facts (never pushed through transitions): the daemon gathers facts,
// this pure function says what state that is and what is wrong, and the daemon logs when it changes.

export type AgentPhase = 'starting' | 'running' | 'stopping';
export type UplinkFact = 'none' | 'disconnected' | 'connected';

export interface StatusFacts {
  readonly phase: AgentPhase;
  readonly trustConfigured: boolean;
  readonly uplink: UplinkFact;
  readonly clockTrusted: boolean;
  readonly queue: { readonly bytes: number; readonly maxBytes: number; readonly droppedSinceStart: number };
  readonly samplers: readonly { readonly stream: string; readonly consecutiveErrors: number }[];
  /** The last durable write failed for lack of space. */
  readonly diskFull: boolean;
  /** The last durable write failed for another reason. */
  readonly storageFailing: boolean;
}

export type ProblemCode =
  | 'NO_TRUST_BUNDLE'
  | 'CLOCK_UNSET'
  | 'QUEUE_NEARLY_FULL'
  | 'QUEUE_DROPPING'
  | 'SAMPLER_FAILING'
  | 'DISK_FULL'
  | 'STORAGE_FAILING';

export interface Problem {
  readonly code: ProblemCode;
  /** `info` problems do not degrade the state (an off-grid node without a trust bundle is a valid setup). */
  readonly severity: 'info' | 'warning' | 'critical';
  readonly message: string;
}

export interface AgentStatus {
  readonly state: 'starting' | 'ok' | 'degraded' | 'failing' | 'stopping';
  /** off_grid: no uplink configured; offline: configured but not connected; online: connected. */
  readonly link: 'off_grid' | 'offline' | 'online';
  readonly problems: readonly Problem[];
}

/** A sampler is failing after this many errors in a row. */
export const SAMPLER_FAILING_AFTER = 3;
/** The queue is nearly full above this fraction of its byte cap. */
export const QUEUE_NEARLY_FULL_RATIO = 0.9;

export function computeStatus(f: StatusFacts): AgentStatus {
  const problems: Problem[] = [];
  if (!f.trustConfigured) {
    problems.push({
      code: 'NO_TRUST_BUNDLE',
      severity: 'info',
      message: 'no trust bundle: only read_only tools can be called, by local callers',
    });
  }
  if (!f.clockTrusted) {
    problems.push({
      code: 'CLOCK_UNSET',
      severity: 'warning',
      message: 'the wall clock looks unset: allowed_hours tools are refused and token times are unreliable',
    });
  }
  if (f.diskFull) {
    problems.push({ code: 'DISK_FULL', severity: 'critical', message: 'the disk is full: new telemetry is refused' });
  } else if (f.storageFailing) {
    problems.push({ code: 'STORAGE_FAILING', severity: 'critical', message: 'writes to the state database fail' });
  }
  if (f.queue.maxBytes > 0 && f.queue.bytes >= f.queue.maxBytes * QUEUE_NEARLY_FULL_RATIO) {
    problems.push({
      code: 'QUEUE_NEARLY_FULL',
      severity: 'warning',
      message: `the telemetry queue holds ${f.queue.bytes} of ${f.queue.maxBytes} bytes`,
    });
  }
  if (f.queue.droppedSinceStart > 0) {
    problems.push({
      code: 'QUEUE_DROPPING',
      severity: 'warning',
      message: `${f.queue.droppedSinceStart} queued records were dropped (cap or TTL) since start`,
    });
  }
  for (const s of f.samplers) {
    if (s.consecutiveErrors >= SAMPLER_FAILING_AFTER) {
      problems.push({
        code: 'SAMPLER_FAILING',
        severity: 'warning',
        message: `sampler ${s.stream} failed ${s.consecutiveErrors} times in a row`,
      });
    }
  }
  const link = f.uplink === 'none' ? 'off_grid' : f.uplink === 'connected' ? 'online' : 'offline';
  if (f.phase !== 'running') return { state: f.phase, link, problems };
  const worst = problems.some((p) => p.severity === 'critical')
    ? 'failing'
    : problems.some((p) => p.severity === 'warning')
      ? 'degraded'
      : 'ok';
  return { state: worst, link, problems };
}
