import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { StockTradeSchema, type StockTrade } from "../gen/streamweaver/v1/events_pb";
import { TradesState } from "./trades";

const trade = (symbol: string, price: number): StockTrade => create(StockTradeSchema, { symbol, price });

describe("TradesState", () => {
  it("aggregates last price, change against the first price seen and count", () => {
    const s = new TradesState();
    s.apply([trade("AAPL", 100), trade("MSFT", 50)]);
    s.apply([trade("AAPL", 102), trade("AAPL", 105)]);
    const aapl = s.list().find((r) => r.symbol === "AAPL");
    expect(aapl).toMatchObject({ firstPrice: 100, lastPrice: 105, change: 5, count: 3 });
    expect(aapl?.changePct).toBeCloseTo(5);
    expect(aapl?.prices).toEqual([100, 102, 105]);
    expect(s.list().map((r) => r.symbol)).toEqual(["AAPL", "MSFT"]);
  });

  it("shows a fall as a negative change", () => {
    const s = new TradesState();
    s.apply([trade("X", 200), trade("X", 150)]);
    const [x] = s.list();
    expect(x?.change).toBe(-50);
    expect(x?.changePct).toBeCloseTo(-25);
  });

  it("keeps at most sparklinePoints prices, the most recent", () => {
    const s = new TradesState({ maxSymbols: 10, sparklinePoints: 60 });
    for (let batch = 0; batch < 10; batch++) {
      s.apply(Array.from({ length: 25 }, (_, i) => trade("Z", batch * 25 + i)));
    }
    const [z] = s.list();
    expect(z?.prices).toHaveLength(60);
    expect(z?.prices[59]).toBe(249);
    expect(z?.prices[0]).toBe(190);
    expect(z?.count).toBe(250);
    expect(z?.firstPrice).toBe(0);
  });

  it("evicts the least recently traded symbols beyond maxSymbols", () => {
    const s = new TradesState({ maxSymbols: 3, sparklinePoints: 5 });
    s.apply([trade("A", 1)]);
    s.apply([trade("B", 1)]);
    s.apply([trade("C", 1)]);
    s.apply([trade("A", 2)]);
    s.apply([trade("D", 1)]);
    expect(s.list().map((r) => r.symbol)).toEqual(["A", "C", "D"]);
    expect(s.size).toBe(3);
  });

  it("ignores trades without a symbol or a finite price; keeps the same list when idle", () => {
    const s = new TradesState();
    s.apply([trade("", 1), trade("Q", Number.NaN)]);
    expect(s.list()).toHaveLength(0);
    s.apply([trade("Q", 1)]);
    const first = s.list();
    s.apply([]);
    expect(s.list()).toBe(first);
  });
});
