// Soak verdicts and pictures: memory growth after warm-up per process (the run fails above 5 %), and
// ASCII plots of a series over time that read in a terminal and in docs/benchmarks.md.

export interface SoakSample {
  /** Minutes since the soak started. */
  readonly minute: number;
  readonly rssMb: number;
  readonly heapMb: number;
  /** What V8 holds committed for its heap (live objects and free space it keeps: young generation, fragments). */
  readonly heapCommittedMb?: number;
  /** Memory outside the V8 heap that V8 knows of (Buffers, ArrayBuffers). */
  readonly externalMb?: number;
  readonly handles: number;
  /** Queue depth the process reports (outbox items, uplink queue), when it has one. */
  readonly queueDepth?: number;
}

export interface Growth {
  /** Mean over the first window after warm-up. */
  readonly startMb: number;
  /** Mean over the last window. */
  readonly endMb: number;
  /** (end − start) / start, in %. */
  readonly percent: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Growth of `pick` from the first `windowMin` minutes after warm-up to the last `windowMin` minutes.
 * Undefined when the run is too short to have both windows apart.
 */
export function growthAfterWarmup(
  samples: readonly SoakSample[],
  pick: (s: SoakSample) => number,
  warmupMin: number,
  windowMin: number,
): Growth | undefined {
  const after = samples.filter((s) => s.minute >= warmupMin);
  if (after.length < 2) return undefined;
  const endMinute = after[after.length - 1]!.minute;
  const first = after.filter((s) => s.minute < warmupMin + windowMin);
  const last = after.filter((s) => s.minute > endMinute - windowMin);
  if (first.length === 0 || last.length === 0 || endMinute - windowMin < warmupMin + windowMin / 2) return undefined;
  const startMb = mean(first.map(pick));
  const endMb = mean(last.map(pick));
  return { startMb, endMb, percent: ((endMb - startMb) / startMb) * 100 };
}

/** An ASCII plot of one or more named series against minutes: `height` rows, up to `width` columns. */
export function asciiPlot(
  series: Readonly<Record<string, readonly { minute: number; value: number }[]>>,
  options: { height?: number; width?: number; unit: string },
): string {
  const height = options.height ?? 12;
  const width = options.width ?? 72;
  const names = Object.keys(series);
  const all = names.flatMap((n) => series[n]!);
  if (all.length === 0) return '(no samples)\n';
  const marks = '*+o#x@%&';
  const minV = Math.min(...all.map((p) => p.value));
  const maxV = Math.max(...all.map((p) => p.value));
  const lo = minV === maxV ? minV - 1 : minV - (maxV - minV) * 0.05;
  const hi = minV === maxV ? maxV + 1 : maxV + (maxV - minV) * 0.05;
  const maxMin = Math.max(...all.map((p) => p.minute), 1);
  const grid = Array.from({ length: height }, () => new Array<string>(width).fill(' '));
  names.forEach((n, k) => {
    for (const p of series[n]!) {
      const x = Math.min(width - 1, Math.round((p.minute / maxMin) * (width - 1)));
      const y = Math.min(height - 1, Math.max(0, Math.round(((p.value - lo) / (hi - lo)) * (height - 1))));
      grid[height - 1 - y]![x] = marks[k % marks.length]!;
    }
  });
  const label = (v: number) => v.toFixed(v >= 100 ? 0 : 1).padStart(7);
  const rows = grid.map((row, i) => {
    const v = hi - ((hi - lo) * i) / (height - 1);
    const axis = i === 0 || i === height - 1 || i === Math.floor(height / 2) ? label(v) : ' '.repeat(7);
    return `${axis} |${row.join('').trimEnd()}`;
  });
  const legend = names.map((n, k) => `${marks[k % marks.length]} ${n}`).join('   ');
  const end = `${Number.isInteger(maxMin) ? maxMin : maxMin.toFixed(1)} min`;
  return `${rows.join('\n')}\n${' '.repeat(8)}+${'-'.repeat(width)}\n${' '.repeat(8)}0 min${' '.repeat(Math.max(1, width - 5 - end.length + 1))}${end}\n${' '.repeat(8)}${options.unit}: ${legend}\n`;
}
