// Progress output for long runs (bench, fuzz, chaos, soak): a redrawn bar on a terminal, plain
// throttled lines otherwise (CI logs, pipes), so a long run never looks hung and never floods a log.

import { type Clock, systemClock } from '../protocol/clock.ts';

export interface ProgressOptions {
  /** Units of work in total (cases, records, cycles…); 0 or less means unknown. */
  readonly total: number;
  readonly label: string;
  /** Where to draw (default process.stderr). */
  readonly write?: (text: string) => void;
  /** Redraw in place (default: stderr is a terminal). */
  readonly tty?: boolean;
  /** Plain mode prints a line at each further 10 % (at most one per 2 s) and at least every this many ms (default 15 s). */
  readonly plainIntervalMs?: number;
  readonly clock?: Clock;
  /** Bar width in characters (default 28). */
  readonly width?: number;
}

export interface Progress {
  /** Sets the amount of work done so far (absolute), with an optional detail shown after the bar. */
  update(done: number, detail?: string): void;
  /** Ends the bar (newline on a terminal) with a closing line. */
  finish(summary?: string): void;
}

/** Formats a duration in ms for people: 850 ms, 12.4 s, 3 min 05 s, 2 h 04 min. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Formats a count with thousands separators. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Renders the bar text for `done` of `total` (pure; exported for tests). */
export function renderBar(done: number, total: number, width: number): string {
  if (!(total > 0)) return `[${'?'.repeat(width)}]`;
  const f = Math.min(1, Math.max(0, done / total));
  const full = Math.floor(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
}

export function createProgress(options: ProgressOptions): Progress {
  const write = options.write ?? ((t: string) => void process.stderr.write(t));
  const tty = options.tty ?? process.stderr.isTTY === true;
  const clock = options.clock ?? systemClock;
  const width = options.width ?? 28;
  const plainEvery = options.plainIntervalMs ?? 15_000;
  const started = clock.monotonicMs();
  let lastDrawMs = Number.NEGATIVE_INFINITY;
  let lastDecile = -1;
  let lastDone = 0;
  let lastDetail = '';
  let finished = false;

  const line = (done: number, detail: string) => {
    const elapsed = clock.monotonicMs() - started;
    const total = options.total;
    const eta =
      total > 0 && done > 0 && done < total ? ` eta ${formatDuration((elapsed / done) * (total - done))}` : '';
    const counts = total > 0 ? `${formatCount(done)}/${formatCount(total)}` : formatCount(done);
    return `${options.label} ${renderBar(done, total, width)} ${counts} ${formatDuration(elapsed)}${eta}${detail ? ` ${detail}` : ''}`;
  };

  return {
    update(done, detail = '') {
      if (finished) return;
      lastDone = done;
      lastDetail = detail;
      const now = clock.monotonicMs();
      if (tty) {
        if (now - lastDrawMs < 100) return;
        lastDrawMs = now;
        write(`\r\x1b[2K${line(done, detail)}`);
        return;
      }
      if (options.total > 0 && done >= options.total) return; // finish() prints the last line
      const decile = options.total > 0 ? Math.floor((10 * done) / options.total) : -1;
      const since = now - Math.max(lastDrawMs, started);
      if ((decile > lastDecile && since >= 2000) || since >= plainEvery) {
        lastDecile = Math.max(lastDecile, decile);
        lastDrawMs = now;
        write(`${line(done, detail)}\n`);
      }
    },
    finish(summary) {
      if (finished) return;
      finished = true;
      const text = summary ?? line(lastDone, lastDetail);
      write(tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
    },
  };
}
