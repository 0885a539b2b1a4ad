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
 *  just before a body that ends normally is finished (the server restores the idle timeout). */
export function releaseWhenDone(res: Response, release: () => void, aborted: AbortSignal, ending?: () => void): Response {
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
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const { done: end, value } = await reader.read();
        if (end) {
          ending?.();
          done();
          c.close();
        } else c.enqueue(value);
      } catch (e) {
        done();
        c.error(e);
      }
    },
    cancel(reason) {
      done();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
