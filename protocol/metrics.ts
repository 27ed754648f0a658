// Prometheus metrics: a small registry and the text exposition format 0.0.4, pure.
// Each daemon owns one registry (no global default) and serves `render()` on its metrics port.

export type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function labelKey(names: readonly string[], labels: Labels): string {
  for (const k of Object.keys(labels)) {
    if (!names.includes(k)) throw new RangeError(`unknown label ${k}`);
  }
  return names.map((n) => labels[n] ?? '').join('\u0000');
}

function renderLabels(names: readonly string[], key: string, extra?: [string, string]): string {
  const values = key === '' && names.length === 0 ? [] : key.split('\u0000');
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Counter implements Family {
  readonly type = 'counter' as const;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly #values = new Map<string, number>();

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /** Adds `by` (≥ 0) to the series named by `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} cannot decrease`);
    const k = labelKey(this.labelNames, labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(this.labelNames, labels)) ?? 0;
  }

  render(): string[] {
    return [...this.#values].map(([k, v]) => `${this.name}${renderLabels(this.labelNames, k)} ${formatValue(v)}`);
  }
}

export class Gauge implements Family {
  readonly type = 'gauge' as const;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly #values = new Map<string, number>();
  readonly #collect: ((set: (labels: Labels, value: number) => void) => void) | undefined;

  /** `collect`, when given, is called at render time to read values from their source. */
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: (set: (labels: Labels, value: number) => void) => void,
  ) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.#collect = collect;
  }

  set(labels: Labels, value: number): void {
    this.#values.set(labelKey(this.labelNames, labels), value);
  }

  get(labels: Labels = {}): number | undefined {
    return this.#values.get(labelKey(this.labelNames, labels));
  }

  render(): string[] {
    this.#collect?.((labels, value) => this.set(labels, value));
    return [...this.#values].map(([k, v]) => `${this.name}${renderLabels(this.labelNames, k)} ${formatValue(v)}`);
  }
}

export class Histogram implements Family {
  readonly type = 'histogram' as const;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly buckets: readonly number[];
  readonly #series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []) {
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => i > 0 && b === sorted[i - 1])) {
      throw new RangeError(`histogram ${name} needs distinct buckets`);
    }
    this.name = name;
    this.help = help;
    this.buckets = sorted;
    this.labelNames = labelNames;
  }

  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(this.labelNames, labels);
    let s = this.#series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const out: string[] = [];
    for (const [k, s] of this.#series) {
      this.buckets.forEach((b, i) => {
        out.push(`${this.name}_bucket${renderLabels(this.labelNames, k, ['le', formatValue(b)])} ${s.counts[i]}`);
      });
      out.push(`${this.name}_bucket${renderLabels(this.labelNames, k, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${renderLabels(this.labelNames, k)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${renderLabels(this.labelNames, k)} ${s.count}`);
    }
    return out;
  }
}

/** One daemon's metrics. Names are checked once, at registration. */
export class MetricsRegistry {
  readonly #families = new Map<string, Family>();

  #add<F extends Family & { labelNames: readonly string[] }>(f: F): F {
    if (!NAME.test(f.name)) throw new RangeError(`bad metric name ${f.name}`);
    for (const l of f.labelNames) if (!LABEL.test(l) || l.startsWith('__')) throw new RangeError(`bad label ${l}`);
    if (this.#families.has(f.name)) throw new RangeError(`metric ${f.name} registered twice`);
    this.#families.set(f.name, f);
    return f;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: (set: (labels: Labels, value: number) => void) => void,
  ): Gauge {
    return this.#add(new Gauge(name, help, labelNames, collect));
  }

  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.#add(new Histogram(name, help, buckets, labelNames));
  }

  /** The exposition text (`Content-Type: text/plain; version=0.0.4`), families sorted by name. */
  render(): string {
    const lines: string[] = [];
    for (const f of [...this.#families.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`, ...f.render());
    }
    return `${lines.join('\n')}\n`;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
