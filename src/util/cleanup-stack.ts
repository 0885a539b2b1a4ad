// Cleanup stack: setup steps register their undo; on failure the undos run once, in reverse.

export type Undo = () => void | Promise<void>;

/**
 * Every setup step pushes the step that undoes it. `unwind()` runs them newest-first, once;
 * an undo that throws is logged and the others still run, so one stuck step cannot leak the rest.
 * `release()` drops the undos after a setup has fully succeeded.
 */
export class CleanupStack {
  private steps: { name: string; undo: Undo }[] = [];
  private done = false;

  push(name: string, undo: Undo): void {
    if (this.done) throw new Error(`cleanup stack already unwound; cannot register '${name}'`);
    this.steps.push({ name, undo });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Runs the undos in reverse order, at most once. Returns the errors of undos that failed. */
  async unwind(): Promise<Error[]> {
    if (this.done) return [];
    this.done = true;
    const errors: Error[] = [];
    for (const step of this.steps.reverse()) {
      try {
        await step.undo();
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        errors.push(new Error(`undo '${step.name}' failed: ${err.message}`));
      }
    }
    this.steps = [];
    return errors;
  }

  /** Setup succeeded: forget the undos (ownership passes to the running object). */
  release(): void {
    this.done = true;
    this.steps = [];
  }
}
