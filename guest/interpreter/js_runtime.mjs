// The Node process behind a javascript/typescript context: runs cells from js_kernel.py in this realm.
//
// usage: node js_runtime.mjs CMD_FD EVENT_FD
// CMD_FD carries one JSON object per line, {id, code, typescript}; for each, one line
// {id, ok: true, text} (text: the last expression as Node's REPL shows it, or null) or
// {id, ok: false, error: {name, value, traceback}} goes to EVENT_FD. The cell's own output is
// this process's stdout/stderr (pipes, written synchronously on Linux, so it is in the pipe
// before the event). Cells run in the main context (vm.runInThisContext), not a vm context of
// their own: objects from imported modules and from the cell then share one set of built-ins.
// SIGINT (the Jupyter interrupt, sent to the kernel's process group) stops a synchronous loop (breakOnSigint)
// or abandons the awaited part of a cell, which may still finish in the background.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import util from "node:util";
import vm from "node:vm";
import { compileCell, IMPORT_FN } from "./js_cell.mjs";

const [cmdFd, eventFd] = process.argv.slice(2).map(Number);
if (!(cmdFd > 2 && eventFd > 2)) {
  console.error("usage: node js_runtime.mjs CMD_FD EVENT_FD");
  process.exit(2);
}
const MAX_TEXT = 1 << 20; // a result's text beyond this is cut (the kernel caps event lines too)
const ESBUILD = process.env.ONEBOX_INTERPRETER_ESBUILD || "esbuild";
const OWN_FILES = [import.meta.url, new URL("./js_cell.mjs", import.meta.url).href, fileURLToPath(import.meta.url)];

function send(event) {
  const data = Buffer.from(JSON.stringify(event) + "\n");
  for (let off = 0; off < data.length; ) off += fs.writeSync(eventFd, data, off);
}

// What a cell sees besides the built-ins: `require` and `import()` resolved from the cwd, where
// the user's node_modules are (from ours they would resolve against /opt/onebox/interpreter).
const requireHere = () => createRequire(path.join(process.cwd(), "[cell]"));
Object.defineProperty(globalThis, "require", {
  configurable: true,
  get: requireHere,
  set(value) {
    Object.defineProperty(globalThis, "require", { value, writable: true, configurable: true });
  },
});
Object.defineProperty(globalThis, IMPORT_FN, { value: importFromCwd });

async function importFromCwd(specifier) {
  const spec = String(specifier);
  if (isBuiltin(spec) || /^(node|file|data):/.test(spec)) return import(spec);
  if (spec.startsWith(".") || path.isAbsolute(spec)) return import(pathToFileURL(path.resolve(spec)).href);
  let resolved;
  try {
    resolved = pathToFileURL(requireHere().resolve(spec)).href;
  } catch {
    return import(spec); // an ESM-only package's exports, or a clear "Cannot find package"
  }
  return import(resolved);
}

/** TypeScript to JavaScript: types stripped by Debian's esbuild, the syntax otherwise kept. */
function stripTypes(code) {
  // preserveValueImports: an import used only by later cells must not be dropped as "unused".
  const tsconfig = JSON.stringify({ compilerOptions: { preserveValueImports: true } });
  const r = spawnSync(ESBUILD, ["--loader=ts", "--log-level=error", `--tsconfig-raw=${tsconfig}`], {
    input: code,
    encoding: "utf8",
    maxBuffer: 64 << 20,
    timeout: 60_000,
  });
  if (r.error) throw new Error(`esbuild could not run (${r.error.message}): install Debian's esbuild`);
  if (r.status !== 0) {
    const detail = r.stderr.trim();
    const first = detail.split("\n").find((l) => l.includes("ERROR")) ?? detail.split("\n")[0];
    throw Object.assign(new SyntaxError(first.replace(/^.*\[ERROR\]\s*/, "")), { stack: detail });
  }
  return r.stdout;
}

function show(value) {
  if (value === undefined) return null; // no result, like a Python cell that ends in None
  const text = util.inspect(value);
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}… (${text.length - MAX_TEXT} more characters)` : text;
}

function describe(err, code, cellFrame) {
  if (!(err instanceof Error) && !(err && typeof err === "object" && typeof err.stack === "string")) {
    return { name: "Error", value: `Uncaught ${show(err)}`, traceback: [`Uncaught ${show(err)}`] };
  }
  const name = String(err.name ?? "Error");
  const value = String(err.message ?? "");
  let lines = String(err.stack ?? `${name}: ${value}`).split("\n");
  // Node's frames, ours, and the one that calls the cell's async wrapper are not the user's.
  lines = lines.filter((l) => !OWN_FILES.some((f) => l.includes(f)) && !/\(node:|at node:/.test(l) && !(cellFrame && l.includes(cellFrame)));
  if (err instanceof SyntaxError && err.loc && typeof code === "string") {
    // acorn's position: show the line with a caret, as Node does for a script
    const line = code.split("\n")[err.loc.line - 1] ?? "";
    lines = [`cell:${err.loc.line}`, line, `${" ".repeat(err.loc.column)}^`, "", `${name}: ${value}`];
  }
  return { name, value, traceback: lines };
}

let current = null; // the running cell's interrupt hook
let cellCount = 0;

async function runCell({ id, code, typescript }) {
  let js, cellFrame;
  try {
    js = typescript ? stripTypes(code) : code;
    const compiled = compileCell(js);
    const filename = `cell[${++cellCount}]`;
    cellFrame = `${filename}:${compiled.split("\n").length}:`; // the wrapper's `})()`, last line
    const script = new vm.Script(compiled, { filename });
    const interrupted = new Promise((_, reject) => {
      current = () => reject(Object.assign(new Error("Script execution was interrupted by SIGINT"), { stack: "" }));
    });
    const value = await Promise.race([script.runInThisContext({ breakOnSigint: true, displayErrors: false }), interrupted]);
    send({ id, ok: true, text: show(value) });
  } catch (err) {
    send({ id, ok: false, error: describe(err, js, cellFrame) });
  } finally {
    current = null;
  }
}

// Outside a synchronous run (breakOnSigint takes SIGINT then), an interrupt abandons the awaited cell.
process.on("SIGINT", () => current?.());
// Errors of callbacks that outlive their cell are reported, as Node's REPL does, not fatal.
process.on("uncaughtException", (err) => console.error("Uncaught", err));
process.on("unhandledRejection", (err) => console.error("Uncaught (in promise)", err));

let queue = Promise.resolve();
// A net.Socket polls the pipe; an fs stream would block a thread-pool thread in read(), and
// process.exit() in a cell then hangs waiting for that thread.
const commands = new net.Socket({ fd: cmdFd, readable: true, writable: false });
const lines = readline.createInterface({ input: commands, crlfDelay: Infinity });
lines.on("line", (line) => {
  let cell;
  try {
    cell = JSON.parse(line);
  } catch {
    console.error("js_runtime: ignoring a malformed command line");
    return;
  }
  queue = queue.then(() => runCell(cell));
});
// The kernel is gone (shut down or killed): nobody is left to read an outcome.
lines.on("close", () => process.exit(0));
