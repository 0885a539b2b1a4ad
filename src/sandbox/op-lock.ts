// Per-sandbox operation lock: one lifecycle operation at a time; a second one is refused with 409.
import { conflict } from "../util/errors.ts";

export class OpLocks {
  private held = new Map<string, string>();
  private running = new Map<string, Promise<unknown>>();

  /** Runs `fn` holding the sandbox's lock; a concurrent operation fails at once (spec §1.3: 409
   *  while in transition) instead of queueing, so SDK calls never hang behind a slow boot. */
  async with<T>(id: string, op: string, fn: () => Promise<T>): Promise<T> {
    const current = this.held.get(id);
    if (current) {
      throw conflict(`sandbox ${id} is busy with '${current}'; retry '${op}' when it has finished`);
    }
    this.held.set(id, op);
    const run = (async () => fn())();
    this.running.set(id, run);
    try {
      return await run;
    } finally {
      this.held.delete(id);
      this.running.delete(id);
    }
  }

  /** Resolves once the operation in flight (if any) has finished, however it ended. */
  async settled(id: string): Promise<void> {
    await this.running.get(id)?.catch(() => undefined);
  }

  busy(id: string): string | undefined {
    return this.held.get(id);
  }
}
