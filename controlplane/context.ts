// The dependencies every piece of control-plane logic receives: the ports, the clock, logs, metrics, settings
// and the issuer built over them. Built once by createControlPlane; never a module-level singleton.

import type { JsonValue } from '../protocol/canonical-json.ts';
import type { Clock } from '../protocol/clock.ts';
import type { Logger } from '../protocol/log.ts';
import type { AuthLimiter } from './auth-limiter.ts';
import type { ControlPlaneEvents } from './events.ts';
import type { LoraEndpoint } from './lora-endpoint.ts';
import type { ControlPlaneMetrics } from './metrics.ts';
import type { AuditInput, ControlPlaneStore, KeyVault, Scheduler, SessionRegistry } from './ports.ts';
import type { ControlPlaneSettings } from './settings.ts';
import type { TokenIssuer } from './token-issuer.ts';

export interface ControlPlaneContext {
  readonly store: ControlPlaneStore;
  readonly vault: KeyVault;
  readonly issuer: TokenIssuer;
  readonly sessions: SessionRegistry;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: ControlPlaneMetrics;
  readonly settings: ControlPlaneSettings;
  readonly limiter: AuthLimiter;
  /** Devices reached through gateways over LoRa. */
  readonly lora: LoraEndpoint;
  /** Random bytes (the OS CSPRNG; tests may pass a seeded source). */
  readonly random: (n: number) => Uint8Array;
  /** What changed, for live views (the dashboard's event stream). */
  readonly events: ControlPlaneEvents;
}

/** Printable-ASCII audit field of at most 256 characters (store/audit.ts refuses anything else). */
export function auditField(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?').slice(0, 256);
  return clean.length > 0 ? clean : '-';
}

/**
 * Appends one audit entry; a failure to audit is logged at `crit` and rethrown, so a decision that cannot be
 * recorded is not carried out silently.
 */
export async function audit(ctx: ControlPlaneContext, entry: AuditInput): Promise<void> {
  const clean: AuditInput = {
    kind: auditField(entry.kind),
    actor: auditField(entry.actor),
    subject: auditField(entry.subject),
    decision: auditField(entry.decision),
    reason: auditField(entry.reason),
    ...(entry.details ? { details: entry.details as { [key: string]: JsonValue } } : {}),
  };
  try {
    await ctx.store.audit([clean]);
  } catch (e) {
    ctx.log.crit('audit.append_failed', { kind: clean.kind, err: e as Error });
    throw e;
  }
}
