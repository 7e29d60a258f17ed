import { describe, expect, it } from "vitest";
import { LatencyWindow, percentile, RateMeter } from "./metrics";

describe("RateMeter", () => {
  it("reports events per second over the window and decays to zero", () => {
    const m = new RateMeter(5_000, 250);
    for (let t = 0; t < 5_000; t += 100) m.add(10, 100_000 + t); // 100 events/s for 5 s
    expect(m.perSecond(104_999)).toBeCloseTo(100, 0);
    expect(m.perSecond(112_000)).toBe(0);
  });

  it("does not under-report while young", () => {
    const m = new RateMeter(5_000, 250);
    m.add(50, 10_000);
    m.add(50, 10_900);
    expect(m.perSecond(10_999)).toBeGreaterThan(80);
    expect(new RateMeter().perSecond(1)).toBe(0);
  });
});

describe("latency", () => {
  it("percentile uses the nearest rank", () => {
    const sorted = Float64Array.from(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 95)).toBe(95);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });

  it("LatencyWindow summarises the recent samples only, in bounded memory", () => {
    const w = new LatencyWindow(100, 10_000);
    for (let i = 0; i < 1_000; i++) w.add(i % 100, 1_000);
    expect(w.summary(1_000)).toEqual({ p50: 49, p95: 94, samples: 100 });
    w.add(500, 20_000);
    expect(w.summary(20_000)).toEqual({ p50: 500, p95: 500, samples: 1 });
  });
});
