// Defensive readers for proto3-JSON request fields: lowerCamelCase or snake_case names, hand type checks (e2b-protocol.md §3.1).
import { ConnectError } from "./connect.ts";

type Obj = Record<string, unknown>;

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

/** Raw value of a field by its JSON name or its proto (snake_case) name; null counts as absent. */
export function raw(o: Obj, name: string): unknown {
  const v = name in o ? o[name] : o[snake(name)];
  return v === null ? undefined : v;
}

function bad(name: string, want: string): never {
  throw new ConnectError("invalid_argument", `field "${name}" must be ${want}`);
}

export function optString(o: Obj, name: string): string | undefined {
  const v = raw(o, name);
  if (v === undefined) return undefined;
  if (typeof v !== "string") bad(name, "a string");
  return v;
}

export function reqString(o: Obj, name: string): string {
  const v = optString(o, name);
  if (v === undefined) bad(name, "present");
  return v;
}

export function reqNonEmpty(o: Obj, name: string): string {
  const v = reqString(o, name);
  if (v === "") bad(name, "a non-empty string");
  return v;
}

export function optBool(o: Obj, name: string): boolean | undefined {
  const v = raw(o, name);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") bad(name, "a boolean");
  return v;
}

/** uint32/int32 fields: proto3 JSON allows numbers or decimal strings. */
export function optUint(o: Obj, name: string, max = 0xffffffff): number | undefined {
  const v = raw(o, name);
  if (v === undefined) return undefined;
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > max) bad(name, `an integer in 0..${max}`);
  return n;
}

export function optObject(o: Obj, name: string): Obj | undefined {
  const v = raw(o, name);
  if (v === undefined) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) bad(name, "an object");
  return v as Obj;
}

export function reqObject(o: Obj, name: string): Obj {
  const v = optObject(o, name);
  if (v === undefined) bad(name, "present");
  return v;
}

export function optStringArray(o: Obj, name: string): string[] {
  const v = raw(o, name);
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) bad(name, "an array of strings");
  return v as string[];
}

export function optStringMap(o: Obj, name: string): Record<string, string> {
  const v = raw(o, name);
  if (v === undefined) return {};
  if (typeof v !== "object" || Array.isArray(v)) bad(name, "a map of strings");
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Obj)) {
    if (typeof x !== "string") bad(`${name}.${k}`, "a string");
    out[k] = x;
  }
  return out;
}

/** proto3 `bytes`: standard (or URL-safe) base64. */
export function optBytes(o: Obj, name: string): Uint8Array | undefined {
  const v = raw(o, name);
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) bad(name, "base64 bytes");
  return new Uint8Array(Buffer.from(v, "base64"));
}
