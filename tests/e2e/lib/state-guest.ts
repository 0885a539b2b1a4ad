// Client of the echo test mode's state service (guest/init/test-mode-dirty.h): dirty guest memory, write a file,
// keep a process ticking, and check all three after a pause/resume.
import type { Socket } from "node:net";
import { dialVsock } from "../../../src/vmm/index.ts";

/** Mirror of ONEBOX_TEST_STATE_PORT in guest/init/test-mode-dirty.h. */
export const ONEBOX_TEST_STATE_PORT = 5001;

export interface StateCheck {
  /** Pages of the dirtied region / of the file that differ from their pattern; -1 when none was made. */
  memBad: number;
  fileBad: number;
  pid: number;
  alive: boolean;
  ticks: number;
}

/** One connection to the state service; requests are answered in order, one line each. */
export class StateClient {
  private buf = "";
  private waiters: ((line: string) => void)[] = [];
  private closed: Error | null = null;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      this.buf += chunk;
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiters.shift()?.(line);
      }
    });
    sock.on("close", () => {
      this.closed = new Error("state service closed the connection");
      for (const w of this.waiters.splice(0)) w("err closed");
    });
  }

  static async dial(vsockPath: string, timeoutMs = 10_000): Promise<StateClient> {
    return new StateClient(await dialVsock(vsockPath, ONEBOX_TEST_STATE_PORT, timeoutMs));
  }

  /** Sends one request line; resolves with the `ok ...` reply's key=value fields, throws on `err`. */
  async request(line: string, timeoutMs = 120_000): Promise<Record<string, string>> {
    if (this.closed) throw this.closed;
    const reply = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`state '${line}': no reply in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
      this.sock.write(`${line}\n`);
    });
    if (!reply.startsWith("ok")) throw new Error(`state '${line}': ${reply}`);
    return Object.fromEntries(
      reply
        .slice(2)
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map((kv) => kv.split("=", 2) as [string, string]),
    );
  }

  /** Fills `mib` MiB of fresh guest memory with the pattern of `seed`; returns the guest's fill time in ms. */
  async dirty(mib: number, seed: number): Promise<number> {
    return Number((await this.request(`dirty ${mib} ${seed}`)).ms);
  }

  async writeFile(seed: number): Promise<void> {
    await this.request(`file ${seed}`);
  }

  async spawnTicker(): Promise<number> {
    return Number((await this.request("spawn")).pid);
  }

  async check(): Promise<StateCheck> {
    const r = await this.request("check");
    return { memBad: Number(r.mem_bad), fileBad: Number(r.file_bad), pid: Number(r.pid), alive: r.alive === "1", ticks: Number(r.ticks) };
  }

  close(): void {
    this.sock.destroy();
  }
}
