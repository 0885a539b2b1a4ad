// Admission control: CPU/memory budgets and a bound on concurrent creates; full → 429 + Retry-After.
import { rateLimited } from "../util/errors.ts";

export interface Budget {
  cpuBudget: number;
  memoryBudgetMib: number;
  maxConcurrentCreates: number;
  retryAfterSec: number;
}

export interface Cost {
  cpus: number;
  memoryMib: number;
}

export class Admission {
  private inFlight = 0;
  /** Creates waiting for a slot (admit's waitForSlotMs), woken one per ended create. */
  private readonly waiters: ((freed: boolean) => void)[] = [];
  private reserved: Cost = { cpus: 0, memoryMib: 0 };

  /** `usage` reports what existing sandboxes (starting ones included) already claim. */
  constructor(
    private readonly budget: Budget,
    private readonly usage: () => Cost,
  ) {}

  /** Runs `fn` if the host has room; otherwise throws a 429 telling the client when to retry
   *  (the SDK retries on 429 with Retry-After, spec §1.2). `waitForSlotMs`: when only the bound on concurrent
   *  creates is reached, wait up to this long for a slot instead (a fork's own creates: one request asks for up to
   *  10 at once, more than the default bound of 4, and a client cannot retry one entry of it). A full budget is
   *  429 at once either way. */
  async admit<T>(cost: Cost, fn: () => Promise<T>, opts: { waitForSlotMs?: number } = {}): Promise<T> {
    const b = this.budget;
    const end = Date.now() + (opts.waitForSlotMs ?? 0);
    while (this.inFlight >= b.maxConcurrentCreates) {
      if (Date.now() >= end || !(await this.slotFreed(end - Date.now()))) {
        throw rateLimited(`${this.inFlight} sandboxes are being created (limit ${b.maxConcurrentCreates}); retry in ${b.retryAfterSec} s`, b.retryAfterSec);
      }
    }
    // Rows of in-flight creates are already counted by usage() once inserted; reserved covers
    // the window before the insert, so take the larger of the two views per in-flight create.
    const used = this.usage();
    const cpus = Math.max(used.cpus, this.reserved.cpus) + cost.cpus;
    const mem = Math.max(used.memoryMib, this.reserved.memoryMib) + cost.memoryMib;
    if (cpus > b.cpuBudget || mem > b.memoryBudgetMib) {
      throw rateLimited(
        `host is full: sandboxes would claim ${cpus} vCPUs / ${mem} MiB of a ${b.cpuBudget} vCPU / ${b.memoryBudgetMib} MiB budget; kill idle sandboxes or retry in ${b.retryAfterSec} s`,
        b.retryAfterSec,
      );
    }
    this.inFlight++;
    this.reserved = { cpus: used.cpus + cost.cpus, memoryMib: used.memoryMib + cost.memoryMib };
    try {
      return await fn();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.reserved = { cpus: 0, memoryMib: 0 };
      this.waiters.shift()?.(true);
    }
  }

  /** Resolves true when a create ends (the waiter then checks again: another create may take the slot first), false
   *  after ms. */
  private slotFreed(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = (freed: boolean) => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(freed);
      };
      const timer = setTimeout(() => wake(false), ms);
      this.waiters.push(wake);
    });
  }

  get creating(): number {
    return this.inFlight;
  }
}
