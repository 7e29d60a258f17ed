import { describe, expect, it } from "vitest";
import { backoffCeiling, backoffDelay, sleep } from "./backoff";

describe("backoff", () => {
  it("doubles from 250 ms up to a 5 s cap", () => {
    expect(Array.from({ length: 8 }, (_, i) => backoffCeiling(i))).toEqual([
      250, 500, 1000, 2000, 4000, 5000, 5000, 5000,
    ]);
    expect(backoffCeiling(10_000)).toBe(5000);
  });

  it("jitters within [ceiling/2, ceiling]", () => {
    expect(backoffDelay(0, undefined, () => 0)).toBe(125);
    expect(backoffDelay(0, undefined, () => 0.999999)).toBe(250);
    expect(backoffDelay(3, { baseMs: 100, capMs: 1000 }, () => 0.5)).toBe(600);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(6);
      expect(d).toBeGreaterThanOrEqual(2500);
      expect(d).toBeLessThanOrEqual(5000);
    }
  });

  it("sleep ends early when aborted", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const done = sleep(10_000, controller.signal);
    controller.abort();
    await done;
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
