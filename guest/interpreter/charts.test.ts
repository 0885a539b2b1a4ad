// charts.py per chart type on Debian's matplotlib (scripts/install-deps.sh): each figure as E2B's interpreter describes it.
import { beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { PYTHON } from "./test-harness.ts";

/** Each case builds one figure with pyplot (Agg); the driver prints {name: figure_to_chart(fig)}. */
const CASES: Record<string, string> = {
  line: `
plt.plot([1, 2, 3], [4, 5, 1], label="a")
plt.plot([1, 2, 3], [1, 1.5, 2])
plt.xlabel("Time (s)"); plt.ylabel("Amplitude [Hz]"); plt.title("waves")`,
  scatter: `
plt.scatter([1, 2], [3, 4], label="d1")
plt.xlabel("A")`,
  bar: `
plt.bar(["a", "b", "c"], [3, 7, 5], label="sold")
plt.xlabel("Authors"); plt.ylabel("Books")`,
  barh: `
plt.barh(["x", "y"], [2, 9])`,
  pie: `
fig, ax = plt.subplots()
ax.pie([90, 10], labels=["No", "No, in blue"], autopct="%1.1f%%", startangle=90)
plt.title("wake up")`,
  box: `
fig, ax = plt.subplots()
ax.boxplot([[1, 2, 3, 4, 5, 20], [2, 3, 4, 5, 6]], labels=["A", "B"], patch_artist=True)
ax.set_xlabel("Class"); ax.set_ylabel("Score (pts)")`,
  boxh: `
fig, ax = plt.subplots()
ax.boxplot([[1, 2, 3, 4, 5]], labels=["only"], vert=False, patch_artist=True)
ax.set_xlabel("Score")`,
  log: `
import numpy as np
x = np.linspace(1, 10, 10)
plt.plot(x, np.exp(x), label="exp")
plt.yscale("log"); plt.grid(True)`,
  datetime: `
import datetime
plt.plot([datetime.date(2023, 9, 1) + datetime.timedelta(days=i) for i in range(5)], [1, 2, 3, 2, 1])`,
  categorical: `
plt.plot([1, 2, 3], ["A", "B", "C"])`,
  superchart: `
fig, (a1, a2) = plt.subplots(1, 2)
a1.plot([1, 2], [3, 4]); a2.bar(["p", "q"], [1, 2])
fig.suptitle("both")`,
  blank: `
plt.subplots()`,
};

const DRIVER = `
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
sys.path.insert(0, ${JSON.stringify(import.meta.dir)})
import charts
out = {}
for name, src in json.loads(sys.stdin.read()).items():
    plt.close("all")
    exec(src, {"plt": plt})
    out[name] = charts.figure_to_chart(plt.gcf())
print(json.dumps(out))
`;

type Chart = Record<string, unknown> & { type: string; title: string | null; elements: Record<string, unknown>[] };
let charts: Record<string, Chart>;

beforeAll(async () => {
  const p = Bun.spawn([PYTHON, "-c", DRIVER], { stdin: new TextEncoder().encode(JSON.stringify(CASES)), stdout: "pipe", stderr: "pipe", cwd: join(import.meta.dir) });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`chart driver failed: ${err}`);
  charts = JSON.parse(out);
}, 60_000);

const TWO_D = ["x_label", "y_label", "x_unit", "y_unit"];
const POINTS = [...TWO_D, "x_ticks", "x_tick_labels", "x_scale", "y_ticks", "y_tick_labels", "y_scale"];

test("line: type line, units from '(s)' and '[Hz]', unlabelled lines named 'Line N', every key the Python SDK reads", () => {
  const c = charts.line!;
  expect(c.type).toBe("line");
  for (const k of POINTS) expect(c).toHaveProperty(k);
  expect(c).toMatchObject({ title: "waves", x_label: "Time (s)", y_label: "Amplitude [Hz]", x_unit: "s", y_unit: "Hz", x_scale: "linear", y_scale: "linear" });
  expect(c.elements[0]).toEqual({ label: "a", points: [[1, 4], [2, 5], [3, 1]] });
  expect(c.elements[1]!.label).toBe("Line 1");
});

test("scatter: type scatter, absent labels and units are null", () => {
  const c = charts.scatter!;
  expect(c).toMatchObject({ type: "scatter", title: null, x_label: "A", y_label: null, x_unit: null, y_unit: null });
  expect(c.elements).toEqual([{ label: "d1", points: [[1, 3], [2, 4]] }]);
});

test("bar: labels from the categories, the group from the label; barh swaps the axes", () => {
  expect(charts.bar).toMatchObject({ type: "bar", x_label: "Authors", y_label: "Books", x_unit: null, y_unit: null });
  expect(charts.bar!.elements).toEqual([
    { label: "a", group: "sold", value: 3 },
    { label: "b", group: "sold", value: 7 },
    { label: "c", group: "sold", value: 5 },
  ]);
  expect(charts.barh!.elements).toEqual([
    { label: "x", group: "Group 0", value: 2 },
    { label: "y", group: "Group 0", value: 9 },
  ]);
});

test("pie: angles rounded as E2B's (324, not 323.99999141693115), radius, title", () => {
  expect(charts.pie).toEqual({
    type: "pie",
    title: "wake up",
    elements: [
      { label: "No", angle: 324, radius: 1 },
      { label: "No, in blue", angle: 36, radius: 1 },
    ],
  });
});

test("box and whisker (patch_artist): quartiles, whiskers and outliers per box, vertical and horizontal", () => {
  const c = charts.box!;
  expect(c).toMatchObject({ type: "box_and_whisker", x_label: "Class", y_label: "Score (pts)", y_unit: "pts" });
  expect(c.elements).toEqual([
    { label: "A", min: 1, first_quartile: 2.25, median: 3.5, third_quartile: 4.75, max: 5, outliers: [20] },
    { label: "B", min: 2, first_quartile: 3, median: 4, third_quartile: 5, max: 6, outliers: [] },
  ]);
  // One horizontal box: the category is on y, the values on x (the axes swapped, as for barh).
  expect(charts.boxh).toMatchObject({ type: "box_and_whisker", x_label: null, y_label: "Score" });
  expect(charts.boxh!.elements).toEqual([{ label: "only", min: 1, first_quartile: 2, median: 3, third_quartile: 4, max: 5, outliers: [] }]);
});

test("scales: log, datetime (ISO ticks and points), categorical", () => {
  expect(charts.log).toMatchObject({ type: "line", x_scale: "linear", y_scale: "log" });
  expect(charts.log!.elements).toHaveLength(1); // grid lines are not elements
  const d = charts.datetime!;
  expect(d).toMatchObject({ type: "line", x_scale: "datetime", y_scale: "linear" });
  expect((d.x_ticks as string[]).every((t) => typeof t === "string" && !Number.isNaN(Date.parse(t)))).toBe(true);
  expect((d.elements[0]!.points as unknown[][])[0]).toEqual(["2023-09-01", 1]);
  expect(charts.categorical).toMatchObject({ type: "line", x_scale: "linear", y_scale: "categorical" });
  expect((charts.categorical!.elements[0]!.points as unknown[][])[0]).toEqual([1, "A"]);
});

test("superchart: one chart per subplot, the suptitle; a blank figure is {}", () => {
  const c = charts.superchart!;
  expect(c.type).toBe("superchart");
  expect(c.title).toBe("both");
  expect(c.elements.map((e) => e.type)).toEqual(["line", "bar"]);
  expect(charts.blank as unknown).toEqual({});
});
