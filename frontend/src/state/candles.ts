/**
 * One symbol's candles: the one-second OHLC bars the trade-bars service produces to
 * `trade_bars`, as the chart dialog draws them. Kept sorted by second, one candle per second
 * (trade-bars makes exactly one bar per symbol and second; a bar seen again after a reconnect
 * replaces the one held rather than adding a second), and bounded to the newest `maxCandles`.
 */
import type { TradeBar } from "../gen/streamweaver/v1/events_pb";
import { timestampMs } from "./time";
import type { PriceBar } from "./trades";

/** Candles kept per chart: the last 15 minutes. */
export const MAX_CANDLES = 900;

/** A bar as a candle, or `undefined` for one without a start or a usable price. */
export function candleOf(bar: TradeBar): PriceBar | undefined {
  const startMs = timestampMs(bar.start);
  const prices = [bar.open, bar.high, bar.low, bar.close];
  if (startMs === undefined || !prices.every((p) => Number.isFinite(p) && p > 0)) return undefined;
  return {
    time: Math.floor(startMs / 1000),
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    volume: Number(bar.volume),
  };
}

export class Candles {
  private readonly candles: PriceBar[] = [];
  private snapshot: readonly PriceBar[] | undefined;

  constructor(private readonly maxCandles = MAX_CANDLES) {}

  /** Takes in one bar; returns whether the candles changed. */
  add(bar: TradeBar): boolean {
    const candle = candleOf(bar);
    if (!candle) return false;
    const list = this.candles;
    const last = list[list.length - 1];
    if (!last || candle.time > last.time) {
      list.push(candle);
    } else {
      // Older than the newest: after a reconnect or from the start-point backfill.
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((list[mid] as PriceBar).time < candle.time) lo = mid + 1;
        else hi = mid;
      }
      if (list[lo]?.time === candle.time) list[lo] = candle;
      else list.splice(lo, 0, candle);
    }
    if (list.length > this.maxCandles) list.splice(0, list.length - this.maxCandles);
    this.snapshot = undefined;
    return true;
  }

  /** The candles, oldest first: the same array until one is added. */
  list(): readonly PriceBar[] {
    this.snapshot ??= this.candles.slice();
    return this.snapshot;
  }
}

/** A candle as the chart draws it: trade-bars' (closed) or the page's own (still forming). */
export interface ChartCandle {
  readonly bar: PriceBar;
  /** From the page's own trades: a second trade-bars has not closed (or does not make) yet. */
  readonly forming: boolean;
}

/**
 * trade-bars' candles, then the page's own one-second bars of the seconds after the last of
 * them: one series, one candle per second, in time order, the newest seconds live before
 * trade-bars closes them (and all of them when trade-bars is not running).
 */
export function chartCandles(closed: readonly PriceBar[], own: readonly PriceBar[]): ChartCandle[] {
  const lastClosed = closed[closed.length - 1]?.time ?? Number.NEGATIVE_INFINITY;
  const out: ChartCandle[] = closed.map((bar) => ({ bar, forming: false }));
  for (const bar of own) if (bar.time > lastClosed) out.push({ bar, forming: true });
  return out;
}
