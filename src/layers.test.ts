// The layer rule of docs/architecture.md, read from the source: every relative import in src/ is parsed; a cycle
// (between files, or between the folders they are in) or an import that points up the layer list fails.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = import.meta.dir;
const ROOT = resolve(SRC, "..");

/** Top to bottom: a file may import its own layer's files and those below (docs/architecture.md "Layers"). */
const LAYERS: string[][] = [
  ["main.ts", "cli"],
  ["daemon.ts"],
  ["api", "proxy", "builds"],
  ["dashboard"],
  ["sandbox", "templates"],
  ["scheduler", "machine", "metrics"],
  ["vmm", "net", "store"],
  ["sys"],
  ["util"],
];
/** Importable by anyone: the constants and types shared with the guest. */
const ANYONE = ["guest/protocol.ts"];
/** What src/ embeds from outside it (sys/natives.ts, cli/index.ts, dashboard/assets.ts, templates/builder-files.ts):
 *  build outputs, the package version, and the default templates' builder (its scripts, onebox-init/runas, the agent
 *  bundle, the interpreter's files). Files carried into the binary, not code src/ runs from there. */
const EMBEDDED = [
  /^ffi\/build\//, /^dist\/dashboard\//, /^package\.json$/,
  /^scripts\/[a-z-]+\.sh$/, /^guest\/init\/build\//, /^dist\/guest\/agent\.js$/, /^guest\/interpreter\//,
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(n) && !n.endsWith(".d.ts") ? [p] : [];
  });
}

/** The unit a file belongs to: its folder under src/, or the file itself at the top. */
function unitOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes("/") ? rel.split("/")[0]! : rel;
}

function layerOf(unit: string): number {
  const i = LAYERS.findIndex((l) => l.includes(unit));
  if (i < 0) throw new Error(`src/${unit} is in no layer: add it to LAYERS here and to docs/architecture.md`);
  return i;
}

/** Relative specifiers of static imports, re-exports and dynamic imports (comments are not code). */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const out: string[] = [];
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g)) if (m[1]!.startsWith(".")) out.push(m[1]!);
  return out;
}

const isTest = (f: string) => f.endsWith(".test.ts") || f.endsWith("test-support.ts") || /\/fake-[^/]+\.ts$/.test(f);

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(SRC)) g.set(f, importsOf(readFileSync(f, "utf8")).map((s) => resolve(dirname(f), s)));
  return g;
}

/** A cycle in g as a list of nodes, or null. */
function findCycle(g: Map<string, string[]>): string[] | null {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 1);
    stack.push(n);
    for (const m of g.get(n) ?? []) {
      if (!g.has(m)) continue;
      if (state.get(m) === 1) return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of g.keys()) if (!state.has(n)) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

test("the import parser sees imports, re-exports and dynamic imports, not comments", () => {
  const src = `import a from "./a.ts";\nexport { b } from "../b.ts";\n// import c from "./c.ts";\nconst d = await import("./d.ts");\nimport "./e.ts";\nimport x from "zod";`;
  expect(importsOf(src)).toEqual(["./a.ts", "../b.ts", "./d.ts", "./e.ts"]);
});

test("no import cycle between files of src/", () => {
  const c = findCycle(graph());
  expect(c?.map((f) => relative(ROOT, f)) ?? null).toBeNull();
});

test("no cycle between folders of src/ (a layer's folders do not import each other both ways)", () => {
  const folders = new Map<string, string[]>();
  for (const [f, deps] of graph()) {
    if (isTest(f)) continue;
    const from = unitOf(f);
    const to = deps.filter((d) => d.startsWith(SRC + "/")).map(unitOf).filter((u) => u !== from);
    folders.set(from, [...new Set([...(folders.get(from) ?? []), ...to])]);
  }
  expect(findCycle(folders)).toBeNull();
});

test("every import points down the layer list (or to guest/protocol.ts)", () => {
  const up: string[] = [];
  for (const [f, deps] of graph()) {
    if (isTest(f)) continue; // tests and test support may start a whole daemon
    for (const d of deps) {
      if (ANYONE.some((a) => d === join(ROOT, a))) continue;
      if (!d.startsWith(SRC + "/")) {
        if (EMBEDDED.some((re) => re.test(relative(ROOT, d)))) continue;
        up.push(`${relative(ROOT, f)} -> ${relative(ROOT, d)} (outside src/)`);
        continue;
      }
      if (layerOf(unitOf(d)) < layerOf(unitOf(f))) up.push(`${relative(ROOT, f)} -> ${relative(ROOT, d)}`);
    }
  }
  expect(up).toEqual([]);
});

test("ONEBOX_* environment variables are read in src/util/config.ts only", () => {
  const readers: string[] = [];
  for (const f of files(SRC)) {
    if (isTest(f) || f === join(SRC, "util", "config.ts")) continue;
    const code = readFileSync(f, "utf8");
    if (/process\.env\.ONEBOX_|process\.env\[/.test(code)) readers.push(relative(ROOT, f));
  }
  expect(readers).toEqual([]);
});
