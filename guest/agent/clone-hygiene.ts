// A restored clone's hygiene carried by POST /init (issue 18): its wall clock, fresh entropy and identity, applied
// by the agent in the same exchange that gives it its token and env vars, so a create makes one guest round trip.
// The same effects as onebox-init's control channel (guest/init/control.c), which stays for older agents.
import { closeSync, mkdirSync, openSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { addEntropy, setClockNs, setHostname } from "./libc.ts";

/** The most entropy bytes taken (the host sends 64; control.c's CONTROL_ENTROPY_MAX). */
const ENTROPY_MAX = 512;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
// RFC 1123 label characters plus dots, at most 63 bytes, not starting with '-' or '.' (control.c's rule).
const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;

export interface CloneHygiene {
  /** CLOCK_REALTIME, ns since the epoch: a decimal string, as it does not fit a JSON number exactly. */
  timeNs?: bigint;
  entropy?: Uint8Array;
  id?: string;
  hostname?: string;
}

/** What applying hygiene does to the system: the real one below; a test gives its own, since the agent's tests run
 *  on a shared host whose clock and hostname they must not change. */
export interface HygieneSystem {
  setClockNs(ns: bigint): boolean;
  addEntropy(bytes: Uint8Array): boolean;
  setHostname(name: string): boolean;
  /** Where the clone's id is written (onebox-init's /run/onebox/sandbox-id). */
  idFile: string;
}

export const realHygieneSystem: HygieneSystem = {
  setClockNs,
  addEntropy(bytes) {
    const fd = openSync("/dev/random", "w");
    try {
      return addEntropy(fd, bytes);
    } finally {
      closeSync(fd);
    }
  },
  setHostname,
  idFile: "/run/onebox/sandbox-id",
};

/** Parses /init's `hygiene` field; a string says what is wrong with it. */
export function parseHygiene(v: unknown): CloneHygiene | string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "hygiene must be an object";
  const o = v as Record<string, unknown>;
  const out: CloneHygiene = {};
  if (o.timeNs !== undefined) {
    if (typeof o.timeNs !== "string" || !/^\d{1,20}$/.test(o.timeNs)) return "hygiene.timeNs must be a decimal string";
    out.timeNs = BigInt(o.timeNs);
  }
  if (o.entropy !== undefined) {
    if (typeof o.entropy !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(o.entropy)) return "hygiene.entropy must be base64";
    const bytes = Buffer.from(o.entropy, "base64");
    if (bytes.byteLength === 0 || bytes.byteLength > ENTROPY_MAX) return `hygiene.entropy must hold 1..${ENTROPY_MAX} bytes`;
    out.entropy = bytes;
  }
  if (o.id !== undefined) {
    if (typeof o.id !== "string" || !ID.test(o.id)) return "hygiene.id must match [A-Za-z0-9_-]{1,64}";
    out.id = o.id;
  }
  if (o.hostname !== undefined) {
    if (typeof o.hostname !== "string" || !HOSTNAME.test(o.hostname)) return "hygiene.hostname is not a valid host name";
    out.hostname = o.hostname;
  }
  return out;
}

/** Applies it, clock first (what else the guest does right after reads it); throws with what failed. */
export function applyHygiene(h: CloneHygiene, sys: HygieneSystem): void {
  if (h.timeNs !== undefined && !sys.setClockNs(h.timeNs)) throw new Error("clock_settime failed");
  if (h.entropy && !sys.addEntropy(h.entropy)) throw new Error("RNDADDENTROPY failed");
  if (h.hostname && !sys.setHostname(h.hostname)) throw new Error("sethostname failed");
  if (h.id) {
    // Written whole and renamed, as control.c does: a reader sees the old id or the new one.
    mkdirSync(join(sys.idFile, ".."), { recursive: true, mode: 0o755 });
    writeFileSync(`${sys.idFile}.tmp`, `${h.id}\n`, { mode: 0o644 });
    renameSync(`${sys.idFile}.tmp`, sys.idFile);
  }
}
