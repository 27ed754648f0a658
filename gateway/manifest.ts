// The gateway's CapabilityManifest: who it is and which radios it relays on (manifest.md §4.4, role `gateway`).
// A gateway runs no tools; its health is in its status, its metrics and the radios declared here.

import type { RadioKind, RadioParams } from '../firmware-bridge/radio.ts';
import { type CapabilityManifest, decodeManifest, MANIFEST_VERSION, REGION_BANDS_HZ } from '../protocol/manifest.ts';

export interface ManifestRadio {
  readonly kind: RadioKind;
  /** RNode: the configured modulation. Meshtastic: the region only (the node keeps its own preset). */
  readonly params?: RadioParams;
  readonly region?: string;
}

const RNODE_BANDWIDTHS = new Set([62_500, 125_000, 250_000, 500_000]);

/**
 * Builds and validates the manifest. Radios the manifest schema cannot describe (region ANY, used with
 * emulators; modulations outside its ranges) are left out rather than misdescribed. Throws MANIFEST_INVALID.
 */
export function gatewayManifest(input: {
  readonly did: string;
  readonly name: string;
  readonly agentVersion: string;
  readonly radios: readonly ManifestRadio[];
}): CapabilityManifest {
  const radios: unknown[] = [];
  for (const r of input.radios) {
    const region = r.params?.region ?? r.region;
    if (region === undefined || !Object.hasOwn(REGION_BANDS_HZ, region)) continue;
    if (r.kind === 'meshtastic') {
      radios.push({ kind: 'meshtastic', role: 'gateway', region });
      continue;
    }
    const p = r.params;
    if (
      !p ||
      !RNODE_BANDWIDTHS.has(p.bandwidthHz) ||
      p.spreadingFactor < 7 ||
      p.txPowerDbm > 22 ||
      p.freqHz > 1_020_000_000
    ) {
      continue;
    }
    radios.push({
      kind: 'rnode',
      role: 'gateway',
      region,
      frequencyHz: p.freqHz,
      bandwidthHz: p.bandwidthHz,
      spreadingFactor: p.spreadingFactor,
      codingRate: p.codingRate,
      txPowerDbm: p.txPowerDbm,
    });
  }
  return decodeManifest({
    manifestVersion: MANIFEST_VERSION,
    device: { id: input.did, name: input.name, model: 'outpost-gateway', agentVersion: input.agentVersion },
    tools: [],
    ...(radios.length > 0 ? { radios: radios.slice(0, 4) } : {}),
  });
}
