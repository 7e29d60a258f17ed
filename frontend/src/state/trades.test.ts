import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { StockTradeSchema, TradeSide } from "../gen/streamweaver/v1/events_pb";
import { arrival } from "../test/fixtures";
import { addToBars, TradesState, type PriceBar } from "./trades";

const trade = (symbol: string, price: number, atMs = 1_000_000, side = TradeSide.BUY, quantity = 100) =>
  arrival(create(StockTradeSchema, { symbol, price, side, quantity, timestamp: timestampFromMs(atMs) }));

describe("TradesState", () => {
  it("measures change from the open: the symbol's first trade in the window", () => {
    const s = new TradesState();
    s.apply([trade("AAPL", 100, 5_000), trade("MSFT", 50, 7_000)]);
    s.apply([trade("AAPL", 102, 8_000), trade("AAPL", 105, 9_000, TradeSide.SELL, 1_200)]);
    const aapl = s.list().find((r) => r.symbol === "AAPL");
    expect(aapl).toMatchObject({
      openPrice: 100,
      openTimeMs: 5_000,
      lastPrice: 105,
      lastTimeMs: 9_000,
      change: 5,
      count: 3,
      lastSide: "S",
      lastQuantity: 1_200,
    });
    expect(aapl?.changePct).toBeCloseTo(5);
    expect(s.list().map((r) => r.symbol)).toEqual(["AAPL", "MSFT"]);
    expect(s.windowStartMs()).toBe(5_000);
  });

  it("shows a fall as a negative change and the side of the last trade as B or S", () => {
    const s = new TradesState();
    s.apply([trade("X", 200, 1_000, TradeSide.SELL), trade("X", 150, 2_000, TradeSide.BUY)]);
    const [x] = s.list();
    expect(x?.change).toBe(-50);
    expect(x?.changePct).toBeCloseTo(-25);
    expect(x?.lastSide).toBe("B");
    s.apply([trade("X", 150, 3_000, TradeSide.UNSPECIFIED)]);
    expect(s.list()[0]?.lastSide).toBe("");
  });

  it("makes one-second bars, keeping at most maxBars, and a sparkline of the last closes", () => {
    const s = new TradesState({ maxSymbols: 10, maxBars: 5, sparklineBars: 3 });
    for (let sec = 0; sec < 8; sec++) {
      s.apply([trade("Z", 10 + sec, sec * 1000 + 100), trade("Z", 20 + sec, sec * 1000 + 900)]);
    }
    const bars = s.bars("Z");
    expect(bars.map((b) => b.time)).toEqual([3, 4, 5, 6, 7]);
    expect(bars[4]).toEqual({ time: 7, open: 17, high: 27, low: 17, close: 27, volume: 200 });
    expect(s.bars("Z")).toBe(bars); // the same array until Z trades again
    expect(s.bars("nope")).toEqual([]);
    // The sparkline shows complete seconds only, and keeps its array while a second fills.
    const recent = s.list()[0]?.recent;
    expect(recent).toEqual([24, 25, 26]);
    s.apply([trade("Z", 30, 7_950)]);
    expect(s.list()[0]?.recent).toBe(recent);
    s.apply([trade("Z", 31, 8_100)]);
    expect(s.list()[0]?.recent).toEqual([25, 26, 30]);
  });

  it("evicts the least recently traded symbols beyond maxSymbols", () => {
    const s = new TradesState({ maxSymbols: 3, maxBars: 5, sparklineBars: 5 });
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

describe("addToBars", () => {
  it("counts a trade older than the last bar in the last bar, so bar times only grow", () => {
    const bars: PriceBar[] = [];
    addToBars(bars, 10, 1, 5_500);
    addToBars(bars, 12, 1, 4_000);
    addToBars(bars, 11, 1, 6_000);
    expect(bars.map((b) => [b.time, b.close])).toEqual([
      [5, 12],
      [6, 11],
    ]);
  });
});
