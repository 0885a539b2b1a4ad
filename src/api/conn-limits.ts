// Caps concurrent requests and streams per client address and in total (issue 11 item 4).
import { e2bError } from "./errors.ts";

/** Counts what each client address holds open: requests in flight, streaming responses until they
 *  end or are aborted, and WebSockets until they close. */
export class ConnLimits {
  private byAddr = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerClient: number,
  ) {}

  /** A release function (idempotent), or the JSON refusal to answer. */
  acquire(addr: string): (() => void) | Response {
    const held = this.byAddr.get(addr) ?? 0;
    if (held >= this.maxPerClient) {
      return e2bError(
        429,
        `too many concurrent requests from ${addr} (${held}, the limit is ${this.maxPerClient}): close idle streams and ` +
          "connections, or raise --max-client-connections",
        { "retry-after": "1" },
      );
    }
    if (this.total >= this.maxTotal) {
      return e2bError(503, `the daemon holds its limit of ${this.maxTotal} concurrent requests: retry shortly, or raise --max-connections`, {
        "retry-after": "1",
      });
    }
    this.byAddr.set(addr, held + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.byAddr.get(addr) ?? 1) - 1;
      if (n <= 0) this.byAddr.delete(addr);
      else this.byAddr.set(addr, n);
    };
  }

  /** What `addr` (or everyone, without one) holds now. */
  held(addr?: string): number {
    return addr === undefined ? this.total : (this.byAddr.get(addr) ?? 0);
  }
}

/** The same response, its body wrapped so `release` runs when the body ends, errors or is cancelled
 *  (the client went away), or when the request is aborted, whichever comes first. `ending` runs
 *  just before a body that ends normally is finished (the server restores the idle timeout).
 *  `cut` is how a body whose source fails (the sandbox was killed or paused, its vmm died) ends:
 *  Bun answers an errored body with a TCP reset, envd's streams end with the connection closed in
 *  the body (a FIN, no last chunk), which the SDKs map through their health check to "the sandbox
 *  was killed". So with `cut` the body stays open without more data and `cut` has the server close
 *  the connection (a short idle timeout); Bun then cancels the body. */
export function releaseWhenDone(res: Response, release: () => void, aborted: AbortSignal, ending?: () => void, cut?: () => void): Response {
  if (!res.body) {
    ending?.();
    release();
    return res;
  }
  aborted.addEventListener("abort", release, { once: true });
  const done = () => {
    aborted.removeEventListener("abort", release);
    release();
  };
  let unstall: (() => void) | undefined;
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        done();
        if (!cut || aborted.aborted) return c.error(e);
        cut();
        // No more reads: this pull ends only when Bun closes the connection and cancels the body.
        return new Promise<void>((r) => (unstall = r));
      }
      if (chunk.done) {
        ending?.();
        done();
        c.close();
      } else c.enqueue(chunk.value);
    },
    cancel(reason) {
      unstall?.();
      done();
      return reader.cancel(reason).catch(() => undefined);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
