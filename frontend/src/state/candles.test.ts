import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { TradeBarSchema } from "../gen/streamweaver/v1/events_pb";
import { candleOf, Candles, chartCandles } from "./candles";

const bar = (second: number, close = 100 + second, symbol = "AAPL") =>
  create(TradeBarSchema, {
    symbol,
    start: timestampFromMs(second * 1000),
    open: 100,
    high: Math.max(100, close) + 1,
    low: Math.min(100, close) - 1,
    close,
    volume: 1_200n,
    tradeCount: 7,
  });

describe("Candles", () => {
  it("turns a trade-bars bar into a candle of its second", () => {
    expect(candleOf(bar(1_700_000_000, 103))).toEqual({
      time: 1_700_000_000,
      open: 100,
      high: 104,
      low: 99,
      close: 103,
      volume: 1_200,
    });
    expect(candleOf(create(TradeBarSchema, { symbol: "X", open: 1, high: 1, low: 1, close: 1 }))).toBeUndefined();
    expect(candleOf({ ...bar(5), low: Number.NaN })).toBeUndefined();
  });

  it("keeps one candle per second in time order, whatever order the bars come in", () => {
    const c = new Candles();
    for (const s of [10, 11, 13]) expect(c.add(bar(s))).toBe(true);
    // The start-point backfill or a reconnect can bring an older bar, or one seen before.
    c.add(bar(12));
    c.add(bar(11, 150));
    expect(c.list().map((k) => k.time)).toEqual([10, 11, 12, 13]);
    expect(c.list()[1]?.close).toBe(150);
    expect(c.add(create(TradeBarSchema, { symbol: "AAPL" }))).toBe(false);
  });

  it("keeps the newest maxCandles, and the same array until one is added", () => {
    const c = new Candles(3);
    for (let s = 0; s < 5; s++) c.add(bar(s));
    const list = c.list();
    expect(list.map((k) => k.time)).toEqual([2, 3, 4]);
    expect(c.list()).toBe(list);
    c.add(bar(5));
    expect(c.list()).not.toBe(list);
    expect(c.list().map((k) => k.time)).toEqual([3, 4, 5]);
  });
});

describe("chartCandles", () => {
  const own = (time: number) => ({ time, open: 1, high: 1, low: 1, close: 1, volume: 1 });
  it("draws trade-bars' candles, then the page's own seconds after the last of them", () => {
    const closed = new Candles();
    for (const s of [10, 11, 12]) closed.add(bar(s));
    const merged = chartCandles(closed.list(), [own(9), own(11), own(12), own(13), own(14)]);
    expect(merged.map((c) => [c.bar.time, c.forming])).toEqual([
      [10, false],
      [11, false],
      [12, false],
      [13, true],
      [14, true],
    ]);
    expect(merged[1]?.bar.close).toBe(111);
  });

  it("is the page's own bars alone when trade-bars makes none", () => {
    expect(chartCandles([], [own(1), own(2)]).map((c) => c.forming)).toEqual([true, true]);
    expect(chartCandles([], [])).toEqual([]);
  });
});
