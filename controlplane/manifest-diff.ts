// What changed between the accepted manifest and an announced one, for the operator who must accept it: tools
// added, removed, and re-classed — a class made less strict for an existing name is flagged (manifest.md §10).

import type { CapabilityManifest, SafetyClass } from '../protocol/manifest.ts';

const RANK: Readonly<Record<SafetyClass, number>> = { read_only: 0, reversible: 1, physical_actuation: 2 };

export interface ManifestDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly reclassed: readonly { readonly tool: string; readonly from: SafetyClass; readonly to: SafetyClass }[];
  /** Tools whose class became less strict: suspicious, since a compromised device would do exactly this. */
  readonly downgrades: readonly string[];
  readonly renamed: boolean;
  /** A JSON-safe summary for logs and audit. */
  readonly summary: {
    readonly added: string[];
    readonly removed: string[];
    readonly reclassed: string[];
    readonly downgrades: string[];
    readonly renamed: boolean;
  };
}

/** Compares tool sets by name. `before` may be absent (nothing accepted yet). Pure. */
export function diffManifests(before: CapabilityManifest | undefined, after: CapabilityManifest): ManifestDiff {
  const old = new Map((before?.tools ?? []).map((t) => [t.name, t.safety_class]));
  const now = new Map(after.tools.map((t) => [t.name, t.safety_class]));
  const added = [...now.keys()].filter((n) => !old.has(n)).sort();
  const removed = [...old.keys()].filter((n) => !now.has(n)).sort();
  const reclassed = [...now.entries()]
    .filter(([n, c]) => old.has(n) && old.get(n) !== c)
    .map(([tool, to]) => ({ tool, from: old.get(tool)!, to }))
    .sort((a, b) => (a.tool < b.tool ? -1 : 1));
  const downgrades = reclassed.filter((r) => RANK[r.to] < RANK[r.from]).map((r) => r.tool);
  const renamed = before !== undefined && before.device.name !== after.device.name;
  return {
    added,
    removed,
    reclassed,
    downgrades,
    renamed,
    summary: {
      added: added.slice(0, 64),
      removed: removed.slice(0, 64),
      reclassed: reclassed.slice(0, 64).map((r) => `${r.tool}:${r.from}->${r.to}`),
      downgrades: downgrades.slice(0, 64),
      renamed,
    },
  };
}
