// Typed errors shared by every layer; the API maps them to HTTP in one place (src/api/errors.ts).

export type ErrorKind =
  | "bad-request"
  | "unauthorized"
  | "not-found"
  | "conflict"
  | "too-large"
  | "rate-limited"
  | "insufficient-storage"
  | "unavailable"
  | "not-implemented"
  | "internal";

/** An error that knows what went wrong and what to do about it (the message says both). */
export class OneboxError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly extra: { retryAfterSec?: number; errorCode?: string } = {},
  ) {
    super(message);
    this.name = "OneboxError";
  }
}

export const badRequest = (msg: string) => new OneboxError("bad-request", msg);
export const unauthorized = (msg: string) => new OneboxError("unauthorized", msg);
export const notFound = (msg: string) => new OneboxError("not-found", msg);
export const conflict = (msg: string) => new OneboxError("conflict", msg);
export const unavailable = (msg: string) => new OneboxError("unavailable", msg);
/** A bound on stored data (snapshot storage) would be passed: 507, free space by deleting something first. */
export const insufficientStorage = (msg: string) => new OneboxError("insufficient-storage", msg);
export const notImplemented = (msg: string) => new OneboxError("not-implemented", msg);
export const rateLimited = (msg: string, retryAfterSec: number) =>
  new OneboxError("rate-limited", msg, { retryAfterSec });
