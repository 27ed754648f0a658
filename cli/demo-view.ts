// The demo's live view: one snapshot of what the control plane, the gateway and the agents report, as text. Pure.

export interface DemoSnapshot {
  readonly atMs: number;
  readonly backhaulUp: boolean;
  readonly devices: readonly {
    readonly device: string;
    readonly name: string;
    readonly role: string;
    readonly status: string;
    readonly online: boolean;
    readonly lora: { readonly reachable: boolean; readonly heardVia: { readonly radio: string } | null } | null;
    readonly tools: readonly unknown[];
  }[];
  readonly telemetry: readonly {
    readonly device: string;
    readonly total: number;
    readonly last: { readonly stream: string; readonly value: unknown; readonly ts: number } | null;
  }[];
  readonly queues: readonly {
    readonly agent: string;
    readonly uplink: string;
    readonly link: string;
    readonly depth: number | null;
  }[];
  readonly gateway: {
    readonly link: { readonly summary: string; readonly backhaul: string };
    readonly uplink: { readonly frames: number };
    readonly downlink: { readonly items: number };
    readonly radios: readonly {
      readonly name: string;
      readonly state: string;
      readonly airtime: { readonly budgetUsed: number };
      readonly frames: { readonly received: number; readonly sent: number };
    }[];
  } | null;
  /** The last audit lines of the control plane's chain. */
  readonly audit: readonly string[];
  /** Children still running. */
  readonly pids: readonly number[];
}

const pad = (s: string, n: number) => (s.length >= n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 90 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

/** The view as lines of at most ~110 columns. */
export function renderSnapshot(s: DemoSnapshot): string {
  const out: string[] = [];
  out.push(
    `OUTPOST DEMO   ${new Date(s.atMs).toISOString().slice(11, 19)} UTC   backhaul ${s.backhaulUp ? 'UP' : 'PULLED (press b)'}`,
  );
  out.push('');
  out.push(
    `${pad('DEVICE', 16)}${pad('ROLE', 9)}${pad('LINK', 22)}${pad('QUEUE', 8)}${pad('STORED', 8)}LAST TELEMETRY`,
  );
  for (const d of s.devices) {
    const q = s.queues.find((x) => x.agent === d.name);
    const t = s.telemetry.find((x) => x.device === d.name);
    const link =
      d.status !== 'active'
        ? d.status
        : d.online
          ? 'online (WSS)'
          : d.lora
            ? `via LoRa${d.lora.heardVia ? ` (${d.lora.heardVia.radio})` : ''}`
            : 'offline';
    const last = t?.last ? `${t.last.stream} = ${JSON.stringify(t.last.value)}  ${ago(t.last.ts, s.atMs)}` : '—';
    out.push(
      `${pad(d.name, 16)}${pad(d.role, 9)}${pad(link, 22)}${pad(q?.depth === null || q === undefined ? '—' : String(q.depth), 8)}${pad(t ? String(t.total) : '—', 8)}${last}`,
    );
  }
  out.push('');
  if (s.gateway) {
    const g = s.gateway;
    out.push(
      `GATEWAY  ${g.link.summary} (backhaul ${g.link.backhaul})   stored for upstream ${g.uplink.frames} frames   downlink queued ${g.downlink.items}`,
    );
    for (const r of g.radios) {
      const pct = r.airtime.budgetUsed * 100;
      const bar = '#'.repeat(Math.min(20, Math.round(pct / 5))).padEnd(20, '.');
      out.push(
        `  ${pad(r.name, 8)}${pad(r.state, 8)}airtime [${bar}] ${pct.toFixed(1)} % of budget   rx ${r.frames.received}  tx ${r.frames.sent}`,
      );
    }
  } else {
    out.push('GATEWAY  (not answering yet)');
  }
  out.push('');
  out.push('RECENT AUDIT');
  for (const l of s.audit) out.push(`  ${l.slice(0, 108)}`);
  return out.join('\n');
}
