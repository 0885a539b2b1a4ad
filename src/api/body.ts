// Reads and validates JSON bodies with a byte cap (bodies may be chunked: Node sends no length).
import type { Context } from "hono";
import type { z } from "zod";
import { badRequest, OneboxError } from "../util/errors.ts";
import { zodMessage } from "./errors.ts";

async function readCapped(c: Context, max: number): Promise<string> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > max) throw new OneboxError("too-large", `request body is larger than ${max} bytes; send less`);
  const body = c.req.raw.body;
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw new OneboxError("too-large", `request body is larger than ${max} bytes; send less`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Parses the body with `schema`. An empty body counts as `{}` when `optional` (v2 connect sends none or `{}`). */
export async function parseBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  max: number,
  optional = false,
): Promise<z.infer<S>> {
  const text = await readCapped(c, max);
  let value: unknown;
  if (text.trim() === "") {
    if (!optional) throw badRequest("request body is empty: send a JSON object");
    value = {};
  } else {
    try {
      value = JSON.parse(text);
    } catch {
      throw badRequest("request body is not valid JSON: send a JSON object");
    }
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw badRequest("request body must be a JSON object");
  }
  const res = schema.safeParse(value);
  if (!res.success) throw badRequest(zodMessage(res.error, "body"));
  return res.data;
}

export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const res = schema.safeParse(c.req.query());
  if (!res.success) throw badRequest(zodMessage(res.error, "query"));
  return res.data;
}
