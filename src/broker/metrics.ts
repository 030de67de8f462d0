/**
 * Prometheus text exposition (format 0.0.4), hand-rolled: a few counters and one histogram do
 * not justify a dependency.
 */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Label sets seen so far, by their values: every request names one, and escaping each time is waste. */
const labelTexts = new Map<string, string>();

function labelText(labels: Record<string, string>): string {
  let key = '';
  for (const name in labels) key += `${name}\u0000${labels[name]}\u0001`;
  let text = labelTexts.get(key);
  if (text === undefined) {
    text = renderLabels(labels);
    if (labelTexts.size < 10_000) labelTexts.set(key, text);
  }
  return text;
}

function renderLabels(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export class Metrics {
  readonly #counters = new Map<string, { help: string; values: Map<string, number> }>();
  readonly #histograms = new Map<string, { help: string; values: Map<string, Histogram> }>();
  readonly #gauges = new Map<string, { help: string; read: () => number }>();

  count(name: string, help: string, labels: Record<string, string> = {}, by = 1): void {
    let counter = this.#counters.get(name);
    if (!counter) this.#counters.set(name, (counter = { help, values: new Map() }));
    const key = labelText(labels);
    counter.values.set(key, (counter.values.get(key) ?? 0) + by);
  }

  observe(name: string, help: string, labels: Record<string, string>, seconds: number): void {
    let histogram = this.#histograms.get(name);
    if (!histogram) this.#histograms.set(name, (histogram = { help, values: new Map() }));
    const key = labelText(labels);
    let h = histogram.values.get(key);
    if (!h) histogram.values.set(key, (h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) h.counts[i]++;
    h.sum += seconds;
    h.count++;
  }

  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.set(name, { help, read });
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, { help, values }] of this.#counters) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [labels, value] of values) lines.push(`${name}${labels} ${value}`);
    }
    for (const [name, { help, values }] of this.#histograms) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      for (const [labels, h] of values) {
        const inner = labels ? labels.slice(1, -1) + ',' : '';
        BUCKETS.forEach((bound, i) => lines.push(`${name}_bucket{${inner}le="${bound}"} ${h.counts[i]}`));
        lines.push(`${name}_bucket{${inner}le="+Inf"} ${h.count}`, `${name}_sum${labels} ${h.sum}`, `${name}_count${labels} ${h.count}`);
      }
    }
    for (const [name, { help, read }] of this.#gauges) lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${read()}`);
    return `${lines.join('\n')}\n`;
  }
}
