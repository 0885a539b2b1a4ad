// Rewrites one JavaScript cell into a script whose top-level names outlive the cell (REPL semantics).
//
// A cell may use static `import`, `await` at top level and declare names that later cells use.
// A plain vm.Script allows neither imports nor await, and an async wrapper would make every
// declaration local to it. So, as Node's REPL does for cells with await (lib/internal/repl/await.js),
// the cell is parsed (acorn, from Debian's node-acorn, which Debian's nodejs itself depends on) and:
//   - `const/let/var a = …` at top level become `void (a = …)`, with `var a` hoisted to the script:
//     globals that any later cell sees and may declare again (re-running a cell works; const-ness
//     is lost, as in Node's REPL);
//   - `class C …` becomes `C = class C …;`; `function f` stays (hoisting) and is copied to the global;
//   - `import x from "m"` becomes `x = (await __onebox_import("m")).default` (and the other forms),
//     `import("m")` anywhere becomes `__onebox_import("m")` (resolved from the cwd, js_runtime.mjs);
//   - the last statement, if an expression, is returned: its value is the cell's result;
//   - all of it runs inside `(async () => { … })()`, so top-level await works.
// The prologue shares the cell's first line, and rewritten imports keep their line count, so the
// line numbers in a stack trace are the cell's own.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const acorn = loadAcorn();
export const IMPORT_FN = "__onebox_import";

function loadAcorn() {
  // Debian's node finds /usr/share/nodejs itself; other Node builds (a developer's) need the path.
  for (const id of ["acorn", "/usr/share/nodejs/acorn"]) {
    try {
      return require(id);
    } catch {}
  }
  throw new Error("acorn not found: install Debian's node-acorn (scripts/install-deps.sh)");
}

const OPTIONS = {
  ecmaVersion: "latest",
  sourceType: "script",
  allowAwaitOutsideFunction: true,
  allowImportExportEverywhere: true, // lets a script parse `import` declarations (rewritten below)
  allowHashBang: true,
};

/** Parses a cell; `{…}` alone is an object literal, not a block (as in Node's REPL). */
function parse(code) {
  if (/^\s*\{/.test(code) && /\}\s*;?\s*$/.test(code)) {
    const wrapped = `(${code.replace(/;\s*$/, "")})`;
    try {
      return { code: wrapped, program: acorn.parse(wrapped, OPTIONS) };
    } catch {}
  }
  return { code, program: acorn.parse(code, OPTIONS) };
}

/** The identifiers a declaration pattern binds. */
function boundNames(pattern, out) {
  if (!pattern) return out;
  switch (pattern.type) {
    case "Identifier": out.push(pattern.name); break;
    case "ObjectPattern": for (const p of pattern.properties) boundNames(p.type === "RestElement" ? p.argument : p.value, out); break;
    case "ArrayPattern": for (const e of pattern.elements) boundNames(e, out); break;
    case "RestElement": boundNames(pattern.argument, out); break;
    case "AssignmentPattern": boundNames(pattern.left, out); break;
  }
  return out;
}

/** Every `import(…)` expression in the tree (the walk is generic: any property holding nodes). */
function importCalls(node, out) {
  if (Array.isArray(node)) {
    for (const n of node) importCalls(n, out);
  } else if (node && typeof node.type === "string") {
    if (node.type === "ImportExpression") out.push(node);
    for (const key in node) {
      const v = node[key];
      if (v && typeof v === "object" && key !== "loc") importCalls(v, out);
    }
  }
  return out;
}

function importText(node) {
  const from = `(await ${IMPORT_FN}(${JSON.stringify(node.source.value)}))`;
  const names = [];
  const parts = [];
  for (const s of node.specifiers) {
    names.push(s.local.name);
    if (s.type === "ImportDefaultSpecifier") parts.push(`${s.local.name} = ${from}.default`);
    else if (s.type === "ImportNamespaceSpecifier") parts.push(`${s.local.name} = ${from}`);
  }
  const named = node.specifiers.filter((s) => s.type === "ImportSpecifier");
  if (named.length) {
    const fields = named.map((s) => `${JSON.stringify(s.imported.name ?? s.imported.value)}: ${s.local.name}`);
    parts.push(`({${fields.join(", ")}} = ${from})`);
  }
  if (!parts.length) parts.push(from); // `import "m"`: for its side effects
  return { names, text: `${parts.join("; ")};` };
}

/** The script to run for one cell (its completion value is a promise of the cell's result). */
export function compileCell(source) {
  const { code, program } = parse(source);
  const edits = []; // [start, end, text]: replacements never overlap, insertions may share a place
  const hoisted = [];
  const globalFns = [];
  for (let stmt of program.body) {
    if (stmt.type === "ExportNamedDeclaration" && stmt.declaration) {
      edits.push([stmt.start, stmt.declaration.start, ""]); // `export const a` declares a, as in a module
      stmt = stmt.declaration;
    } else if (stmt.type.startsWith("Export")) {
      throw Object.assign(new SyntaxError("a cell cannot export; declare the name instead (it stays defined for later cells)"), {
        pos: stmt.start,
      });
    }
    if (stmt.type === "VariableDeclaration") {
      const first = stmt.declarations[0];
      const last = stmt.declarations[stmt.declarations.length - 1];
      edits.push([stmt.start, first.start, "void ("]);
      for (const d of stmt.declarations) {
        boundNames(d.id, hoisted);
        // `let a;` resets a, as a fresh declaration would; `var a;` keeps a's value.
        if (!d.init && stmt.kind !== "var") edits.push([d.id.end, d.id.end, " = undefined"]);
      }
      edits.push([last.end, last.end, ")"]);
    } else if (stmt.type === "ClassDeclaration") {
      hoisted.push(stmt.id.name);
      edits.push([stmt.start, stmt.start, `${stmt.id.name} = `], [stmt.end, stmt.end, ";"]);
    } else if (stmt.type === "FunctionDeclaration") {
      hoisted.push(stmt.id.name);
      globalFns.push(stmt.id.name);
    } else if (stmt.type === "ImportDeclaration") {
      const { names, text } = importText(stmt);
      hoisted.push(...names);
      const lines = code.slice(stmt.start, stmt.end).split("\n").length - 1;
      edits.push([stmt.start, stmt.end, text + "\n".repeat(lines)]);
    }
  }
  for (const call of importCalls(program, [])) edits.push([call.start, call.start + "import".length, IMPORT_FN]);
  const last = program.body[program.body.length - 1];
  if (last?.type === "ExpressionStatement") {
    // From the statement's start: the expression of a wrapped `({…})` starts inside the parenthesis.
    edits.push([last.start, last.start, "return ("], [last.expression.end, last.expression.end, ")"]);
  }
  // Applied from the end; of two insertions at one place, the one pushed first ends up first.
  const order = edits.map((e, i) => [...e, i]).sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[3] - a[3]);
  let body = code;
  for (const [start, end, text] of order) body = body.slice(0, start) + text + body.slice(end);
  const names = [...new Set(hoisted)];
  const prologue = names.length ? `var ${names.join(", ")}; ` : "";
  const copies = globalFns.map((f) => `globalThis[${JSON.stringify(f)}] = ${f}; `).join("");
  return `${prologue}(async () => { ${copies}${body}\n})()`;
}
