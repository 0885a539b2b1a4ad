// What the audit log records of a data-plane request: a process.Process/Start's command line (or that it opened a
// PTY) and an upload's path. The Start body streams on to the guest untouched; a copy of its first bytes (capped) is
// read as the Connect envelope the SDKs send (flags byte, 4-byte length, JSON) once it is complete.

/** Most bytes of a Start body kept for the audit: a command line longer than this is recorded cut. */
const START_CAPTURE_MAX = 64 * 1024;

export interface StartAudit {
  pty: boolean;
  /** cmd and args joined by spaces; the cwd when one was asked. */
  commandLine: string;
}

/** Parses a Connect JSON envelope holding a StartRequest; null when it is not one (binary protobuf, cut, malformed). */
export function parseStartEnvelope(buf: Uint8Array): StartAudit | null {
  if (buf.length < 5 || (buf[0]! & 0x01) !== 0) return null; // a compressed message is not read
  const len = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(1);
  const json = new TextDecoder().decode(buf.subarray(5, 5 + Math.min(len, buf.length - 5)));
  let msg: unknown;
  try {
    msg = JSON.parse(json);
  } catch {
    return null;
  }
  const p = (msg as { process?: { cmd?: unknown; args?: unknown; cwd?: unknown } } | null)?.process;
  if (!p || typeof p.cmd !== "string") return null;
  const args = Array.isArray(p.args) ? p.args.filter((a): a is string => typeof a === "string") : [];
  const cwd = typeof p.cwd === "string" && p.cwd ? ` (cwd ${p.cwd})` : "";
  return { pty: (msg as { pty?: unknown }).pty != null, commandLine: `${[p.cmd, ...args].join(" ")}${cwd}` };
}

/** A pass-through stream that hands the parsed Start to `seen` once the body has ended (or the cap is reached). */
export function startAuditStream(seen: (s: StartAudit | null) => void): TransformStream<Uint8Array, Uint8Array> {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    seen(parseStartEnvelope(Buffer.concat(chunks)));
  };
  return new TransformStream({
    transform(chunk, controller) {
      if (!done && kept < START_CAPTURE_MAX) {
        const part = chunk.subarray(0, START_CAPTURE_MAX - kept);
        chunks.push(part);
        kept += part.length;
        if (kept >= START_CAPTURE_MAX) finish();
      }
      controller.enqueue(chunk);
    },
    flush: finish,
  });
}
