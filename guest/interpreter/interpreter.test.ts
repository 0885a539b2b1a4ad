// Python execution through the real @e2b/code-interpreter SDK against the real server (spec §4.1-§4.3).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Sandbox, TimeoutError } from "@e2b/code-interpreter";
import { startInterpreter, URL, type RunningInterpreter } from "./test-harness.ts";

let server: RunningInterpreter;
let sbx: Sandbox;

beforeAll(async () => {
  server = await startInterpreter();
  // Debug mode (§2.6): create makes no API call; the direct URL is http://localhost:49999.
  sbx = await Sandbox.create({ debug: true });
}, 40_000);

afterAll(async () => {
  await server?.stop();
});

test("GET /health answers \"OK\"", async () => {
  const res = await fetch(`${URL}/health`);
  expect(res.status).toBe(200);
  expect(await res.json()).toBe("OK");
});

test("state survives across runCode calls and execution counts grow", async () => {
  const a = await sbx.runCode("x = 41");
  const b = await sbx.runCode("x + 1");
  expect(b.text).toBe("42");
  expect(b.error).toBeUndefined();
  expect(b.executionCount).toBe((a.executionCount ?? 0) + 1);
});

test("print goes to logs.stdout and stderr to logs.stderr, with callbacks", async () => {
  const seen: string[] = [];
  const ex = await sbx.runCode('import sys\nprint("hello")\nprint("oops", file=sys.stderr)', {
    onStdout: (m) => void seen.push(m.line),
  });
  expect(ex.logs.stdout.join("")).toBe("hello\n");
  expect(ex.logs.stderr.join("")).toBe("oops\n");
  expect(seen.join("")).toBe("hello\n");
  expect(ex.results).toHaveLength(0);
});

test("a str result loses its quotes (§4.2 text)", async () => {
  expect((await sbx.runCode("'abc'")).text).toBe("abc");
});

test("an exception comes back as error with name, value and traceback", async () => {
  const ex = await sbx.runCode('def f():\n    raise ValueError("boom")\nf()');
  expect(ex.error?.name).toBe("ValueError");
  expect(ex.error?.value).toBe("boom");
  // one ANSI-coloured string (§4.2) that shows both frames
  const plain = (ex.error?.traceback ?? "").replace(/\x1b\[[0-9;]*m/g, "");
  expect(plain).toContain("----> 3 f()");
  expect(plain).toContain('----> 2     raise ValueError("boom")');
  expect(plain).toContain("ValueError: boom");
  // the kernel is still fine afterwards
  expect((await sbx.runCode("x")).text).toBe("41");
});

test("a failed cell does not swallow the calls queued behind it", async () => {
  // ipykernel aborts requests that reach it while it handles an error unless stop_on_error
  // is false; the window is narrow (it showed up under load), so this is not always decisive.
  for (let i = 0; i < 3; i++) {
    const [bad, good] = await Promise.all([sbx.runCode("1/0"), sbx.runCode("2 + 2")]);
    expect(bad.error?.name).toBe("ZeroDivisionError");
    expect(good.text).toBe("4");
  }
});

test("a matplotlib figure comes back once, as PNG with an e2b/chart", async () => {
  const ex = await sbx.runCode(
    'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 5, 1], label="a")\nplt.title("demo")\nplt.show()',
  );
  expect(ex.error).toBeUndefined();
  const pngs = ex.results.filter((r) => r.png);
  expect(pngs).toHaveLength(1);
  const png = Buffer.from(pngs[0]!.png!, "base64");
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chart = pngs[0]!.chart as unknown as { type: string; title: string; elements: { label: string; points: number[][] }[] };
  expect(chart.type).toBe("line");
  expect(chart.title).toBe("demo");
  expect(chart.elements[0]).toEqual({ label: "a", points: [[1, 4], [2, 5], [3, 1]] });
});

test("a bar chart is described as bars", async () => {
  const ex = await sbx.runCode('import matplotlib.pyplot as plt\nplt.bar(["a", "b"], [3, 7])\nplt.show()');
  const chart = ex.results[0]?.chart as unknown as { type: string; elements: { label: string; value: number }[] };
  expect(chart.type).toBe("bar");
  expect(chart.elements.map((e) => [e.label, e.value])).toEqual([["a", 3], ["b", 7]]);
});

test("a pie chart is described as wedges", async () => {
  const ex = await sbx.runCode('import matplotlib.pyplot as plt\nplt.pie([1, 3], labels=["x", "y"])\nplt.title("p")\nplt.show()');
  const chart = ex.results[0]?.chart as unknown as { type: string; title: string; elements: { label: string; angle: number; radius: number }[] };
  expect(chart.type).toBe("pie");
  expect(chart.title).toBe("p");
  expect(chart.elements.map((e) => [e.label, Math.round(e.angle), e.radius])).toEqual([["x", 90, 1], ["y", 270, 1]]);
});

test("a pandas DataFrame comes back as html and e2b/data", async () => {
  const ex = await sbx.runCode(
    'import pandas as pd\npd.DataFrame({"a": [1, 2], "b": ["x", "y"], "t": pd.to_datetime(["2024-01-01", "2024-01-02"]), "n": [1.5, float("nan")]})',
  );
  const r = ex.results[0]!;
  expect(r.isMainResult).toBe(true);
  expect(r.html).toContain("<table");
  expect(r.data).toEqual({ a: [1, 2], b: ["x", "y"], t: ["2024-01-01T00:00:00", "2024-01-02T00:00:00"], n: [1.5, null] });
});

test("display() gives non-main results with their MIME keys", async () => {
  const ex = await sbx.runCode(
    'from IPython.display import display, HTML, Markdown\ndisplay(HTML("<b>hi</b>"))\ndisplay(Markdown("# t"))\n{"k": 1}',
  );
  expect(ex.results.map((r) => r.isMainResult)).toEqual([false, false, true]);
  expect(ex.results[0]!.html).toBe("<b>hi</b>");
  expect(ex.results[1]!.markdown).toBe("# t");
  expect(ex.results[2]!.text).toBe("{'k': 1}");
});

test("envs apply to one call only", async () => {
  const code = 'import os\nos.environ.get("ONEBOX_T", "unset")';
  expect((await sbx.runCode(code, { envs: { ONEBOX_T: "per-call" } })).text).toBe("per-call");
  expect((await sbx.runCode(code)).text).toBe("unset");
});

test("timeoutMs interrupts a long cell and the context stays usable", async () => {
  await sbx.runCode("finished = False");
  const started = Date.now();
  await expect(
    sbx.runCode("import time\ntime.sleep(30)\nfinished = True", { timeoutMs: 1500 }),
  ).rejects.toBeInstanceOf(TimeoutError);
  // The disconnect interrupts the kernel (§4.2): the next cell runs at once, state is kept,
  // and the interrupted cell never reached its last line.
  const after = await sbx.runCode("finished, x");
  expect(JSON.stringify(after.toJSON())).toBe(JSON.stringify({ results: [{ text: "(False, 41)" }], logs: { stdout: [], stderr: [] } }));
  expect(Date.now() - started).toBeLessThan(10_000);
});

test("the raw stream: counts first, timestamps, keepalive while idle, end_of_execution last", async () => {
  const res = await fetch(`${URL}/execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code: 'import time\nprint("a", flush=True)\ntime.sleep(5.7)\n"done"' }),
  });
  expect(res.status).toBe(200);
  const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
  expect(lines[0].type).toBe("number_of_executions");
  expect(lines[1]).toMatchObject({ type: "stdout", text: "a\n" });
  expect(Number.isNaN(Date.parse(lines[1].timestamp))).toBe(false);
  expect(lines.some((l) => l.type === "keepalive")).toBe(true); // §4.2: every 5 s when idle
  expect(lines.at(-2)).toEqual({ type: "result", is_main_result: true, text: "done" });
  expect(lines.at(-1)).toEqual({ type: "end_of_execution" });
}, 20_000);
