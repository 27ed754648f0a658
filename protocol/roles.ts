// Roles carried in runtime tokens and the safety classes each may invoke (docs/protocol/tokens.md §7).
// The matrix is data so the gate, the control plane and the docs read one source.

import { SafetyClass } from './manifest.ts';

export type { SafetyClass };

/** The three tool safety classes of the CapabilityManifest, least to most consequential. */
export const SAFETY_CLASSES: readonly SafetyClass[] = Object.freeze([...SafetyClass.options]);

/** Human roles first, then machine identities. */
export const ROLES = ['viewer', 'operator', 'actuator', 'approver', 'admin', 'device', 'gateway'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Safety classes each role may invoke. `physical_actuation` additionally needs a valid quorum token
 * (quorum.md) whoever calls. Machine identities call no tools: devices and gateways authenticate
 * sessions and publish telemetry; approvers sign approvals with their own keys; admins manage policy.
 */
export const ROLE_SAFETY_CLASSES: Readonly<Record<Role, readonly SafetyClass[]>> = Object.freeze({
  viewer: Object.freeze(['read_only'] as const),
  operator: Object.freeze(['read_only', 'reversible'] as const),
  actuator: Object.freeze(['read_only', 'reversible', 'physical_actuation'] as const),
  approver: Object.freeze(['read_only'] as const),
  admin: Object.freeze(['read_only'] as const),
  device: Object.freeze([] as const),
  gateway: Object.freeze([] as const),
});

/** True when `role` may invoke tools of `safetyClass` (before scopes, rate limits and quorum). */
export function roleAllows(role: Role, safetyClass: SafetyClass): boolean {
  return (ROLE_SAFETY_CLASSES[role] as readonly string[] | undefined)?.includes(safetyClass) ?? false;
}

/** True when a call of this class needs a quorum token, whatever the caller's role. */
export function requiresQuorum(safetyClass: SafetyClass): boolean {
  return safetyClass === 'physical_actuation';
}

/** Machine roles: the token's subject must be the device id it carries (tokens.md §5.1). */
export function isMachineRole(role: Role): role is 'device' | 'gateway' {
  return role === 'device' || role === 'gateway';
}
