// The gateway's Prometheus families, registered once per daemon in its own registry (no global default).
// Names follow Prometheus conventions: outpost_gateway_*, base units (ms for airtime, dBm, dB), _total counters.

import type { Counter, Gauge, Histogram, MetricsRegistry } from '../protocol/metrics.ts';

/** RSSI histogram buckets (dBm): sensitivity floor at SF12 is near −137, a neighbour is above −60. */
export const RSSI_BUCKETS_DBM = [-130, -120, -110, -100, -90, -80, -70, -60, -50] as const;
/** SNR histogram buckets (dB): SF7 decodes down to −7.5, SF12 to −20. */
export const SNR_BUCKETS_DB = [-20, -15, -10, -7.5, -5, 0, 5, 10, 15] as const;

export interface GatewayMetrics {
  readonly registry: MetricsRegistry;
  readonly radioUp: Gauge;
  readonly radioFramesReceived: Counter;
  readonly radioFramesDropped: Counter;
  readonly radioFramesSent: Counter;
  readonly radioSendFailures: Counter;
  readonly radioAirtimeMs: Counter;
  readonly radioBudgetUsed: Gauge;
  readonly radioRssi: Histogram;
  readonly radioSnr: Histogram;
  readonly uplinkStoredFrames: Gauge;
  readonly uplinkStoredBytes: Gauge;
  readonly uplinkOldestAgeSeconds: Gauge;
  readonly uplinkForwarded: Counter;
  readonly uplinkDropped: Counter;
  readonly downlinkReceived: Counter;
  readonly downlinkQueued: Gauge;
  readonly downlinkTransmissions: Counter;
  readonly downlinkOutcomes: Counter;
  readonly backhaulUp: Gauge;
  readonly backhaulConnects: Counter;
  readonly devicesServed: Gauge;
}

export function createGatewayMetrics(registry: MetricsRegistry): GatewayMetrics {
  return {
    registry,
    radioUp: registry.gauge('outpost_gateway_radio_up', '1 when the radio is ready, else 0', ['radio']),
    radioFramesReceived: registry.counter('outpost_gateway_radio_frames_received_total', 'Frames read from the radio', [
      'radio',
    ]),
    radioFramesDropped: registry.counter(
      'outpost_gateway_radio_frames_dropped_total',
      'Frames heard but not stored, by reason (malformed, unknown_device, revoked, duplicate, rate_limited, …)',
      ['radio', 'reason'],
    ),
    radioFramesSent: registry.counter('outpost_gateway_radio_frames_sent_total', 'Frames transmitted', ['radio']),
    radioSendFailures: registry.counter(
      'outpost_gateway_radio_send_failures_total',
      'Transmissions the driver reported as failed, by code',
      ['radio', 'code'],
    ),
    radioAirtimeMs: registry.counter(
      'outpost_gateway_radio_airtime_ms_total',
      'Time on air of the frames transmitted (airtime model), ms',
      ['radio'],
    ),
    radioBudgetUsed: registry.gauge(
      'outpost_gateway_radio_airtime_budget_used_ratio',
      'Fraction of the regulatory airtime budget used in the current window (0 where none applies)',
      ['radio'],
    ),
    radioRssi: registry.histogram('outpost_gateway_radio_rssi_dbm', 'RSSI of received frames, dBm', RSSI_BUCKETS_DBM, [
      'radio',
    ]),
    radioSnr: registry.histogram('outpost_gateway_radio_snr_db', 'SNR of received frames, dB', SNR_BUCKETS_DB, [
      'radio',
    ]),
    uplinkStoredFrames: registry.gauge('outpost_gateway_uplink_stored_frames', 'Frames stored, not yet acknowledged'),
    uplinkStoredBytes: registry.gauge('outpost_gateway_uplink_stored_bytes', 'Bytes of stored frame records'),
    uplinkOldestAgeSeconds: registry.gauge(
      'outpost_gateway_uplink_oldest_age_seconds',
      'Age of the oldest stored frame (0 when empty)',
    ),
    uplinkForwarded: registry.counter(
      'outpost_gateway_uplink_forwarded_total',
      'Stored frames acknowledged by the control plane',
    ),
    uplinkDropped: registry.counter(
      'outpost_gateway_uplink_dropped_total',
      'Stored frames dropped by a cap before they could be forwarded, by reason (max_bytes, max_age, …)',
      ['reason'],
    ),
    downlinkReceived: registry.counter(
      'outpost_gateway_downlink_received_total',
      'Downlink messages received from the control plane',
    ),
    downlinkQueued: registry.gauge('outpost_gateway_downlink_queued', 'Downlink messages held, by state', ['state']),
    downlinkTransmissions: registry.counter(
      'outpost_gateway_downlink_transmissions_total',
      'Downlink messages transmitted (each attempt)',
      ['radio'],
    ),
    downlinkOutcomes: registry.counter(
      'outpost_gateway_downlink_outcomes_total',
      'Downlink messages ended, by outcome (delivered, superseded, expired, failed reason …)',
      ['outcome'],
    ),
    backhaulUp: registry.gauge('outpost_gateway_backhaul_up', '1 while the control-plane session is established'),
    backhaulConnects: registry.counter('outpost_gateway_backhaul_sessions_total', 'Control-plane sessions established'),
    devicesServed: registry.gauge('outpost_gateway_devices', 'Devices in the served list, by standing', ['standing']),
  };
}
