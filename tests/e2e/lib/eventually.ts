// Polling for e2e tests: emulated guests answer in seconds, so a test waits for a state instead of a fixed time.

/** Polls `check` every 200 ms until it returns true or `ms` pass; returns the last answer. */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await Bun.sleep(200);
  }
}
