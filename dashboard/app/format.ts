// Pure formatting and geometry for the page: no DOM here, so the rules are tested in Node (test/dashboard/).

/** "12s ago", "5m ago", "3h ago", "2d ago"; "never" for null. */
export function ago(ms: number | null, nowMs: number): string {
  if (ms === null) return 'never';
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

export interface Point {
  readonly t: number;
  readonly v: number;
}

export interface PlotGeometry {
  /** SVG path `d` of the series, in a width × height box (y grows downwards). */
  readonly path: string;
  readonly min: number;
  readonly max: number;
  readonly last: number | null;
}

/** Maps a time series onto a width × height box, with a flat line for a constant series. Non-finite values are skipped. */
export function plotPath(points: readonly Point[], width: number, height: number, pad = 2): PlotGeometry {
  const ok = points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v));
  if (ok.length === 0) return { path: '', min: 0, max: 0, last: null };
  let t0 = Number.POSITIVE_INFINITY;
  let t1 = Number.NEGATIVE_INFINITY;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const p of ok) {
    t0 = Math.min(t0, p.t);
    t1 = Math.max(t1, p.t);
    min = Math.min(min, p.v);
    max = Math.max(max, p.v);
  }
  const x = (t: number) => (t1 === t0 ? width / 2 : pad + ((t - t0) / (t1 - t0)) * (width - 2 * pad));
  const y = (v: number) => (max === min ? height / 2 : height - pad - ((v - min) / (max - min)) * (height - 2 * pad));
  const path = ok.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  return { path, min, max, last: ok[ok.length - 1]!.v };
}

/** Tools grouped by safety class, in the order of increasing risk. */
export function toolsByClass(
  tools: readonly { readonly name: string; readonly safetyClass: string }[],
): [string, string[]][] {
  const order = ['read_only', 'reversible', 'physical_actuation'];
  const groups = new Map<string, string[]>();
  for (const t of tools) groups.set(t.safetyClass, [...(groups.get(t.safetyClass) ?? []), t.name]);
  return [...groups.entries()].sort(
    ([a], [b]) => (order.indexOf(a) + 1 || order.length + 1) - (order.indexOf(b) + 1 || order.length + 1),
  );
}

export interface Histogram {
  readonly buckets: readonly { readonly le: number | '+Inf'; readonly count: number }[];
  readonly count: number;
  readonly sum: number;
}

/** Per-bucket counts (not cumulative) with a label per bucket, from a Prometheus-style cumulative histogram. */
export function histogramBars(h: Histogram | null): { label: string; count: number }[] {
  if (!h) return [];
  let previous = 0;
  let lower: number | null = null;
  return h.buckets.map((b) => {
    const count = Math.max(0, b.count - previous);
    previous = b.count;
    const label = b.le === '+Inf' ? `> ${lower ?? '−∞'}` : `≤ ${b.le}`;
    if (b.le !== '+Inf') lower = b.le;
    return { label, count };
  });
}

/** The mean of a histogram, or null without observations. */
export function histogramMean(h: Histogram | null): number | null {
  return h && h.count > 0 ? h.sum / h.count : null;
}

/** A telemetry value as a number when it is one (numbers, and strings that are plain decimals). */
export function numericValue(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  return null;
}
