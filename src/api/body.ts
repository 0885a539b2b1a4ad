// Reads and validates JSON bodies with a byte cap (bodies may be chunked: Node sends no length).
import type { Context } from "hono";
import type { z } from "zod";
import { BoundedReadError, readCapped } from "../util/bounded-read.ts";
import { badRequest, OneboxError } from "../util/errors.ts";
import { zodMessage } from "./errors.ts";

/** How long a client may take to send a control-plane body (at most maxBodyBytes, 1 MiB by default): a slow
 *  body must not hold the request (and its memory) open forever. */
export const BODY_DEADLINE_MS = 30_000;

async function readBody(c: Context, max: number): Promise<string> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > max) throw new OneboxError("too-large", `request body is larger than ${max} bytes; send less`);
  try {
    return new TextDecoder().decode(await readCapped(c.req.raw.body, max, BODY_DEADLINE_MS, "request body"));
  } catch (e) {
    if (!(e instanceof BoundedReadError)) throw e;
    if (e.why === "too-large") throw new OneboxError("too-large", `request body is larger than ${max} bytes; send less`);
    throw badRequest(`request body not received within ${BODY_DEADLINE_MS / 1000} s; send it at once`);
  }
}

/** Parses the body with `schema`. An empty body counts as `{}` when `optional` (v2 connect sends none or `{}`). */
export async function parseBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  max: number,
  optional = false,
): Promise<z.infer<S>> {
  const text = await readBody(c, max);
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
