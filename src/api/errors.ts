// Maps every error to an E2B-shaped HTTP response, in one place (spec §1.2: {code, message}).
import type { Context } from "hono";
import { ZodError } from "zod";
import { OneboxError, type ErrorKind } from "../util/errors.ts";
import { log } from "../util/log.ts";

const STATUS: Record<ErrorKind, number> = {
  "bad-request": 400,
  unauthorized: 401,
  "not-found": 404,
  conflict: 409,
  "too-large": 413,
  "rate-limited": 429,
  "insufficient-storage": 507,
  unavailable: 503,
  "not-implemented": 501,
  internal: 500,
};

export function e2bError(status: number, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ code: status, message }, { status, headers });
}

/** Names the offending field: "timeout: expected number, received string". */
export function zodMessage(err: ZodError, where: string): string {
  const issues = err.issues.slice(0, 3).map((i) => {
    const path = i.path.length ? i.path.join(".") : where;
    return `${path}: ${i.message}`;
  });
  return `invalid ${where}: ${issues.join("; ")}`;
}

/** E2B's {code, message} for an error that is one entry of a response (fork's per-sandbox results). */
export function errorBody(err: unknown): { code: number; message: string } {
  if (err instanceof OneboxError) return { code: STATUS[err.kind], message: err.message };
  log.error("unhandled error", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return { code: 500, message: "internal error in onebox; see the daemon's log and report it" };
}

export function errorResponse(err: unknown): Response {
  if (err instanceof OneboxError) {
    const status = STATUS[err.kind];
    const headers: Record<string, string> = {};
    if (err.extra.retryAfterSec !== undefined) headers["retry-after"] = String(err.extra.retryAfterSec);
    return e2bError(status, err.message, headers);
  }
  if (err instanceof ZodError) return e2bError(400, zodMessage(err, "request"));
  log.error("unhandled error", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return e2bError(500, "internal error in onebox; see the daemon's log and report it");
}

export function onError(err: unknown, c: Context): Response {
  // A client that went away mid-body (or was cut by the idle timeout) is not a daemon error.
  if (c.req.raw.signal.aborted) return e2bError(400, "the client closed the request before its body was read");
  return errorResponse(err);
}
