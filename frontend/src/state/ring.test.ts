import { describe, expect, it } from "vitest";
import { Ring } from "./ring";

describe("Ring", () => {
  it("holds the newest `capacity` items, newest first, and the same array until it changes", () => {
    const r = new Ring<number>(3);
    expect(r.newestFirst()).toEqual([]);
    for (let i = 1; i <= 5; i++) r.push(i);
    const a = r.newestFirst();
    expect(a).toEqual([5, 4, 3]);
    expect(r.newestFirst()).toBe(a);
    expect(r.size).toBe(3);
    r.push(6);
    expect(r.newestFirst()).toEqual([6, 5, 4]);
  });

  it("keeps only what `retain` accepts, in order", () => {
    const r = new Ring<number>(4);
    for (let i = 1; i <= 6; i++) r.push(i);
    r.retain((n) => n % 2 === 0);
    expect(r.newestFirst()).toEqual([6, 4]);
    r.push(7);
    expect(r.newestFirst()).toEqual([7, 6, 4]);
  });

  it("refuses a capacity under one", () => {
    expect(() => new Ring(0)).toThrow(RangeError);
  });
});
