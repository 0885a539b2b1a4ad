// Tests the lifecycle table and the operation lock.
import { describe, expect, test } from "bun:test";
import { OneboxError } from "../util/errors.ts";
import { ACTIONS, apiState, assertTransition, canTransition, precondition, STATES, TRANSITIONS, VISIBLE_STATES, type Op } from "./lifecycle.ts";
import { OpLocks } from "./op-lock.ts";

describe("lifecycle table", () => {
  test("every state is in the table and every target is a known state", () => {
    for (const s of STATES) {
      expect(TRANSITIONS[s]).toBeDefined();
      for (const t of TRANSITIONS[s]) expect(STATES).toContain(t);
    }
  });
  test("ended is terminal and every other state can end", () => {
    expect(TRANSITIONS.ended).toEqual([]);
    for (const s of STATES) if (s !== "ended") expect(canTransition(s, "ended")).toBe(true);
  });
  test("refused transitions throw a 409-kind error that says what to do", () => {
    expect(canTransition("paused", "pausing")).toBe(false);
    expect(canTransition("running", "resuming")).toBe(false);
    expect(canTransition("stopping", "running")).toBe(false);
    try {
      assertTransition("abc", "paused", "pausing");
      throw new Error("unreachable");
    } catch (e) {
      expect(e).toBeInstanceOf(OneboxError);
      expect((e as OneboxError).kind).toBe("conflict");
      expect((e as OneboxError).message).toContain("retry");
    }
  });
  test("allowed path create -> pause -> resume -> kill", () => {
    const path = ["starting", "running", "pausing", "paused", "resuming", "running", "stopping", "ended"] as const;
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!)).toBe(true);
  });
  test("API shows only running/paused and hides ended", () => {
    expect(apiState("pausing")).toBe("paused");
    expect(apiState("starting")).toBe("running");
    expect(VISIBLE_STATES).not.toContain("ended");
  });
});

describe("actions table", () => {
  test("every action's edges (from -> via -> to, via -> onFail) are allowed transitions", () => {
    for (const [op, a] of Object.entries(ACTIONS)) {
      const via = a.via;
      // connect writes no state of its own (a paused sandbox goes through resume's).
      if (via) for (const f of a.from) expect({ op, f, ok: canTransition(f, via) }).toEqual({ op, f, ok: true });
      if (via) expect({ op, ok: canTransition(via, a.to) }).toEqual({ op, ok: true });
      if (via && a.onFail && a.onFail !== "deleted") expect({ op, ok: canTransition(via, a.onFail) }).toEqual({ op, ok: true });
    }
  });
  test("preconditions come from the table, each refusal a 409 with its own message", () => {
    const refused = (op: Op, state: (typeof STATES)[number]) => {
      try {
        precondition(op, "abc", state);
        return null;
      } catch (e) {
        expect((e as OneboxError).kind).toBe("conflict");
        return (e as OneboxError).message;
      }
    };
    expect(refused("pause", "running")).toBeNull();
    expect(refused("pause", "paused")).toBe("sandbox abc is already paused");
    expect(refused("pause", "resuming")).toContain("is resuming and cannot become pausing");
    expect(refused("resume", "running")).toBe("sandbox abc is running, not paused");
    expect(refused("connect", "pausing")).toBe("sandbox abc is pausing; retry the connect in a moment");
    expect(refused("connect", "paused")).toBeNull();
    expect(refused("kill", "stopping")).toContain("is stopping and cannot become stopping");
    for (const st of VISIBLE_STATES) if (st !== "stopping") expect(refused("kill", st)).toBeNull();
  });
});

describe("operation lock", () => {
  test("a second operation during the first is refused with conflict, then allowed", async () => {
    const locks = new OpLocks();
    let release!: () => void;
    const first = locks.with("a", "pause", () => new Promise<void>((r) => (release = r)));
    await expect(locks.with("a", "pause", async () => 1)).rejects.toMatchObject({ kind: "conflict" });
    expect(await locks.with("b", "pause", async () => 2)).toBe(2);
    release();
    await first;
    expect(await locks.with("a", "pause", async () => 3)).toBe(3);
  });
  test("the lock is released when the operation throws", async () => {
    const locks = new OpLocks();
    await expect(locks.with("a", "x", async () => { throw new Error("boom"); })).rejects.toThrow("boom");
    expect(locks.busy("a")).toBeUndefined();
  });
});
