// Deadline timers: one per sandbox, firing at its absolute end time (E2B `endAt`, spec §1.3).

// setTimeout clamps delays above 2^31-1 ms; longer deadlines re-arm in steps.
const MAX_DELAY = 2 ** 31 - 1;

export class DeadlineTimers {
  private timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly onExpire: (id: string) => void) {}

  arm(id: string, endAtMs: number): void {
    this.clear(id);
    const delay = Math.max(0, endAtMs - Date.now());
    const t = setTimeout(() => {
      this.timers.delete(id);
      if (Date.now() + 5 < endAtMs) this.arm(id, endAtMs);
      else this.onExpire(id);
    }, Math.min(delay, MAX_DELAY));
    this.timers.set(id, t);
  }

  clear(id: string): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  has(id: string): boolean {
    return this.timers.has(id);
  }

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
