// The published targets (docs/benchmarks.md "Targets"): which figure of which bench each one reads, and
// the bound. A figure worse than its bound is a known gap; a target whose figure is missing is listed too.

export interface Target {
  readonly id: string;
  /** What is promised, as people read it. */
  readonly label: string;
  readonly bench: string;
  readonly figure: string;
  /** 'median' compares the figure's median; 'ratio' its ratio to the baseline measured in the same run. */
  readonly measure: 'median' | 'ratio';
  readonly op: '>=' | '<=';
  readonly bound: number;
  /** Shown with the bound, e.g. 'records/s' or '× node -e 0'. */
  readonly unit: string;
  /** The part whose landing makes this measurable (for "not measured" rows). */
  readonly needs: string;
}

export const TARGETS: readonly Target[] = [
  {
    id: 'enqueue',
    label: 'durable signed telemetry enqueue, batched',
    bench: 'agent',
    figure: 'enqueue.batched',
    measure: 'median',
    op: '>=',
    bound: 100_000,
    unit: 'records/s',
    needs: 'agent',
  },
  {
    id: 'e2e',
    label: 'end-to-end telemetry agent → control plane store (WSS, loopback)',
    bench: 'controlplane',
    figure: 'e2e.rate',
    measure: 'median',
    op: '>=',
    bound: 50_000,
    unit: 'records/s',
    needs: 'agent, controlplane',
  },
  {
    id: 'backlog',
    label: '1,000,000-record backlog drained',
    bench: 'controlplane',
    figure: 'backlog.drain',
    measure: 'median',
    op: '<=',
    bound: 30,
    unit: 's',
    needs: 'agent, controlplane',
  },
  {
    id: 'rtt-hub-p50',
    label: 'tool-call round trip via the WSS hub, p50',
    bench: 'controlplane',
    figure: 'hub.p50',
    measure: 'median',
    op: '<=',
    bound: 1,
    unit: 'ms',
    needs: 'agent, controlplane',
  },
  {
    id: 'rtt-hub-p99',
    label: 'tool-call round trip via the WSS hub, p99',
    bench: 'controlplane',
    figure: 'hub.p99',
    measure: 'median',
    op: '<=',
    bound: 5,
    unit: 'ms',
    needs: 'agent, controlplane',
  },
  {
    id: 'rtt-mcp-p50',
    label: 'tool-call round trip via the MCP gateway, p50',
    bench: 'controlplane',
    figure: 'mcp.p50',
    measure: 'median',
    op: '<=',
    bound: 1,
    unit: 'ms',
    needs: 'agent, controlplane',
  },
  {
    id: 'rtt-mcp-p99',
    label: 'tool-call round trip via the MCP gateway, p99',
    bench: 'controlplane',
    figure: 'mcp.p99',
    measure: 'median',
    op: '<=',
    bound: 5,
    unit: 'ms',
    needs: 'agent, controlplane',
  },
  {
    id: 'gate-p50',
    label: 'safety gate decision with a 2-of-3 quorum, p50',
    bench: 'agent',
    figure: 'gate.quorum.p50',
    measure: 'median',
    op: '<=',
    bound: 1,
    unit: 'ms',
    needs: 'agent',
  },
  {
    id: 'gate-p99',
    label: 'safety gate decision with a 2-of-3 quorum, p99',
    bench: 'agent',
    figure: 'gate.quorum.p99',
    measure: 'median',
    op: '<=',
    bound: 1,
    unit: 'ms',
    needs: 'agent',
  },
  {
    id: 'idle-rss',
    label: 'agent idle RSS with 10 tools (single binary)',
    bench: 'agent-footprint',
    figure: 'bin.rss.idle',
    measure: 'median',
    op: '<=',
    bound: 45,
    unit: 'MB',
    needs: 'agent',
  },
  {
    id: 'cold-start',
    label: 'agent cold start to "connected, manifest announced" (single binary)',
    bench: 'agent-footprint',
    figure: 'bin.coldstart.connected',
    measure: 'ratio',
    op: '<=',
    bound: 3,
    unit: '× node -e 0',
    needs: 'agent, controlplane',
  },
  {
    id: 'lora-overhead',
    label: 'LoRa per-frame overhead',
    bench: 'lora-frames',
    figure: 'overhead',
    measure: 'median',
    op: '<=',
    bound: 30,
    unit: 'B',
    needs: 'protocol',
  },
  {
    id: 'lora-goodput',
    label:
      'LoRa goodput at SF8/BW125 under the EU868 1 % budget, 3 devices through the gateway to the control plane, share of capacity',
    bench: 'gateway',
    figure: 'gw.goodput.share',
    measure: 'median',
    op: '>=',
    bound: 90,
    unit: '%',
    needs: 'gateway, agent (LoRa uplink), control plane (LoRa relay)',
  },
];
