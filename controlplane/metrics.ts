// The control plane's Prometheus metrics, registered once per instance on the registry it is given.

import type { Counter, Gauge, Histogram, MetricsRegistry } from '../protocol/metrics.ts';

export interface ControlPlaneMetrics {
  readonly httpRequests: Counter;
  readonly authFailures: Counter;
  readonly enrollments: Counter;
  readonly sessions: Gauge;
  readonly envelopesIn: Counter;
  readonly envelopesRefused: Counter;
  readonly telemetryRecords: Counter;
  readonly toolCalls: Counter;
  readonly toolCallSeconds: Histogram;
  readonly approvals: Counter;
  readonly gatewayRadioBudgetUsed: Gauge;
}

/** What the gateway-radio gauges read at scrape time: each gateway's latest lora.health. */
export type GatewayRadioSource = () => Iterable<{
  readonly name: string;
  readonly radios: readonly { readonly name: string; readonly airtime: { readonly budgetUsed: number } }[];
}>;

/** Registers the families; `sessionCount` and `gatewayRadios` are read at scrape time. */
export function createControlPlaneMetrics(
  registry: MetricsRegistry,
  sessionCount: () => number,
  gatewayRadios: GatewayRadioSource = () => [],
): ControlPlaneMetrics {
  return {
    httpRequests: registry.counter('outpost_cp_http_requests_total', 'HTTP requests by route and status', [
      'route',
      'status',
    ]),
    authFailures: registry.counter('outpost_cp_auth_failures_total', 'Refused credentials by kind', ['kind']),
    enrollments: registry.counter('outpost_cp_enrollments_total', 'Enrollment attempts by outcome', ['outcome']),
    sessions: registry.gauge('outpost_cp_sessions', 'Device and gateway sessions connected', [], (set) =>
      set({}, sessionCount()),
    ),
    envelopesIn: registry.counter('outpost_cp_envelopes_received_total', 'Envelopes accepted by type', ['type']),
    envelopesRefused: registry.counter('outpost_cp_envelopes_refused_total', 'Envelopes refused by wire code', [
      'code',
    ]),
    telemetryRecords: registry.counter('outpost_cp_telemetry_records_total', 'Telemetry records by outcome', [
      'outcome',
    ]),
    toolCalls: registry.counter('outpost_cp_tool_calls_total', 'Tool calls through the gateway by outcome', [
      'outcome',
    ]),
    toolCallSeconds: registry.histogram(
      'outpost_cp_tool_call_seconds',
      'Tool call round trip through the hub',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    ),
    approvals: registry.counter('outpost_cp_approvals_total', 'Approval events by kind', ['event']),
    gatewayRadioBudgetUsed: registry.gauge(
      'outpost_cp_gateway_radio_airtime_budget_used',
      'Fraction of the regional duty-cycle budget a gateway radio used, as its latest lora.health reported',
      ['gateway', 'radio'],
      (set) => {
        for (const g of gatewayRadios()) {
          for (const r of g.radios) set({ gateway: g.name, radio: r.name }, r.airtime.budgetUsed);
        }
      },
    ),
  };
}
