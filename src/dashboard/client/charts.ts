// SVG sparklines (the list) and a small line chart (a sandbox's page), drawn from numbers: no chart library.
const NS = "http://www.w3.org/2000/svg";

function svg(w: number, hgt: number, cls: string): SVGSVGElement {
  const s = document.createElementNS(NS, "svg");
  s.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  s.setAttribute("preserveAspectRatio", "none");
  s.setAttribute("class", cls);
  return s;
}

function points(values: number[], w: number, hgt: number, min: number, max: number): string {
  const span = max > min ? max - min : 1;
  const dx = values.length > 1 ? w / (values.length - 1) : 0;
  return values.map((v, i) => `${(i * dx).toFixed(1)},${(hgt - ((Math.min(v, max) - min) / span) * (hgt - 2) - 1).toFixed(1)}`).join(" ");
}

function line(values: number[], w: number, hgt: number, max: number, cls: string, min = 0): SVGPolylineElement {
  const p = document.createElementNS(NS, "polyline");
  p.setAttribute("points", points(values.length === 1 ? [values[0]!, values[0]!] : values, w, hgt, min, max));
  p.setAttribute("class", cls);
  return p;
}

/** A 80x20 sparkline; `max` fixes the scale 0..max (100 for CPU %), else it spans the values' own range. */
export function sparkline(values: number[], label: string, max?: number): Element {
  const s = svg(80, 20, "spark");
  s.setAttribute("role", "img");
  s.setAttribute("aria-label", label);
  if (values.length) s.appendChild(line(values, 80, 20, max ?? Math.max(...values), "spark-line", max === undefined ? Math.min(...values) : 0));
  const title = document.createElementNS(NS, "title");
  title.textContent = label;
  s.appendChild(title);
  return s;
}

/** A chart of one series over time, with its range in a caption. */
export function chart(title: string, ts: number[], values: number[], max: number, fmt: (v: number) => string): HTMLElement {
  const fig = document.createElement("figure");
  fig.className = "chart";
  const s = svg(600, 120, "chart-svg");
  s.setAttribute("role", "img");
  s.setAttribute("aria-label", title);
  if (values.length) s.appendChild(line(values, 600, 120, max, "chart-line"));
  fig.appendChild(s);
  const cap = document.createElement("figcaption");
  const last = values[values.length - 1];
  const span = ts.length > 1 ? ` over ${Math.round((ts[ts.length - 1]! - ts[0]!) / 60000)} min` : "";
  cap.textContent = values.length ? `${title}: now ${fmt(last!)}, peak ${fmt(Math.max(...values))}${span}` : `${title}: no samples yet`;
  fig.appendChild(cap);
  return fig;
}
