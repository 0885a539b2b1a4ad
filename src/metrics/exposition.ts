// The Prometheus text exposition format (version 0.0.4): counters, gauges and histograms with labels, rendered with
// their HELP and TYPE lines. Small on purpose: onebox exports a few dozen series; a client library would bring a
// registry, default collectors and dependencies it does not need.

export type Labels = Record<string, string>;

/** Label values are escaped as the format says: backslash, double quote and line feed. */
function escapeValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.length ? `{${keys.map((k) => `${k}="${escapeValue(labels[k] ?? "")}"`).join(",")}}` : "";
}

/** Numbers as Prometheus reads them (+Inf, NaN); integers without a fraction. */
function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

abstract class Family {
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  abstract readonly type: "counter" | "gauge" | "histogram";
  abstract samples(): string[];
  render(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.samples()].join("\n");
  }
}

/** A value per label set, kept in insertion order. */
class Series {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  add(labels: Labels, by: number): void {
    const key = labelText(labels);
    const cur = this.values.get(key);
    if (cur) cur.value += by;
    else this.values.set(key, { labels, value: by });
  }
  set(labels: Labels, value: number): void {
    this.values.set(labelText(labels), { labels, value });
  }
  clear(): void {
    this.values.clear();
  }
  lines(name: string): string[] {
    return [...this.values.values()].map((s) => `${name}${labelText(s.labels)} ${num(s.value)}`);
  }
}

export class Counter extends Family {
  readonly type = "counter";
  private readonly series = new Series();
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot go down`);
    this.series.add(labels, by);
  }
  samples(): string[] {
    return this.series.lines(this.name);
  }
}

/** Values set at scrape time: reset() then set() for every series that exists now. */
abstract class SetAtScrape extends Family {
  private readonly series = new Series();
  set(labels: Labels, value: number): void {
    this.series.set(labels, value);
  }
  reset(): void {
    this.series.clear();
  }
  samples(): string[] {
    return this.series.lines(this.name);
  }
}

/** A gauge set at scrape time. */
export class Gauge extends SetAtScrape {
  readonly type = "gauge";
}

/** A counter whose totals another part keeps, read at scrape time as a gauge is. */
export class ScrapedCounter extends SetAtScrape {
  readonly type = "counter";
}

/** Cumulative buckets (upper bounds, ascending; +Inf added), _sum and _count per label set. */
export class Histogram extends Family {
  readonly type = "histogram";
  private readonly data = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    private readonly buckets: number[],
  ) {
    super(name, help);
    if (buckets.some((b, i) => i > 0 && b <= (buckets[i - 1] ?? 0))) throw new Error(`histogram ${name}: buckets must ascend`);
  }
  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let d = this.data.get(key);
    if (!d) {
      d = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.data.set(key, d);
    }
    for (const [i, b] of this.buckets.entries()) if (value <= b) d.counts[i]!++;
    d.sum += value;
    d.count++;
  }
  samples(): string[] {
    const out: string[] = [];
    for (const d of this.data.values()) {
      for (const [i, b] of this.buckets.entries()) out.push(`${this.name}_bucket${labelText({ ...d.labels, le: num(b) })} ${d.counts[i]}`);
      out.push(`${this.name}_bucket${labelText({ ...d.labels, le: "+Inf" })} ${d.count}`);
      out.push(`${this.name}_sum${labelText(d.labels)} ${num(d.sum)}`);
      out.push(`${this.name}_count${labelText(d.labels)} ${d.count}`);
    }
    return out;
  }
}

/** The whole exposition: every family in order, ending in a newline. */
export function render(families: Family[]): string {
  return `${families.map((f) => f.render()).join("\n")}\n`;
}
