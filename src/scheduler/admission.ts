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
  private reserved: Cost = { cpus: 0, memoryMib: 0 };

  /** `usage` reports what existing sandboxes (starting ones included) already claim. */
  constructor(
    private readonly budget: Budget,
    private readonly usage: () => Cost,
  ) {}

  /** Runs `fn` if the host has room; otherwise throws a 429 telling the client when to retry
   *  (the SDK retries on 429 with Retry-After, spec §1.2). */
  async admit<T>(cost: Cost, fn: () => Promise<T>): Promise<T> {
    const b = this.budget;
    if (this.inFlight >= b.maxConcurrentCreates) {
      throw rateLimited(`${this.inFlight} sandboxes are being created (limit ${b.maxConcurrentCreates}); retry in ${b.retryAfterSec} s`, b.retryAfterSec);
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
    }
  }

  get creating(): number {
    return this.inFlight;
  }
}
