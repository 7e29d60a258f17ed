/**
 * Stock trades per symbol, as a trader reads them: the last price and the side and size of the
 * last trade, the change from a stated reference — the **open**, the symbol's first trade in
 * the window this page holds (which starts with the 5-minute backfill the trades subscription
 * asks for, or at page load when the gateway cannot serve it) — the trade count, and
 * one-second price bars for the chart. Bounded: at most `maxSymbols` symbols (the least
 * recently traded is evicted) and `maxBars` bars each.
 */
import { TradeSide, type StockTrade } from "../gen/streamweaver/v1/events_pb";
import type { Arrival } from "./arrival";
import { timestampMs } from "./time";

/** One second of trading in one symbol. */
export interface PriceBar {
  /** Start of the second, in seconds since the epoch. */
  readonly time: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

export type Side = "B" | "S" | "";

export interface TradeRow {
  readonly symbol: string;
  /** The open: price and time of the symbol's first trade in the window. */
  readonly openPrice: number;
  readonly openTimeMs: number | undefined;
  readonly lastPrice: number;
  readonly lastTimeMs: number | undefined;
  readonly change: number;
  /** Percent change from the open; 0 when the open was 0. */
  readonly changePct: number;
  readonly count: number;
  /** Side of the last trade: B (buy) or S (sell). */
  readonly lastSide: Side;
  readonly lastQuantity: number;
  readonly exchange: string;
  /**
   * Closes of the last `sparklineBars` complete seconds (every bar but the newest), oldest
   * first: the same array until a second completes, so the sparkline redraws once a second.
   */
  readonly recent: readonly number[];
  /** Order of the last update, for eviction. */
  readonly seq: number;
}

export interface TradesOptions {
  maxSymbols: number;
  /** One-second bars kept per symbol (900: the last 15 minutes of trading). */
  maxBars: number;
  sparklineBars: number;
}

export const DEFAULT_TRADES_OPTIONS: TradesOptions = { maxSymbols: 40, maxBars: 900, sparklineBars: 60 };

export function sideOf(side: TradeSide): Side {
  return side === TradeSide.BUY ? "B" : side === TradeSide.SELL ? "S" : "";
}

interface SymbolState {
  row: TradeRow;
  bars: PriceBar[];
  barsSnapshot: readonly PriceBar[] | undefined;
  /** The second of the newest complete bar when `row.recent` was made. */
  lastComplete: number | undefined;
}

export class TradesState {
  private readonly symbols = new Map<string, SymbolState>();
  private seq = 0;
  private cached: readonly TradeRow[] | undefined;

  constructor(private readonly options: TradesOptions = DEFAULT_TRADES_OPTIONS) {}

  /** Folds a batch of trades in, in order. */
  apply(arrivals: readonly Arrival<StockTrade>[]): void {
    if (arrivals.length === 0) return;
    // Per symbol, collect the batch first, so each row is rebuilt once per batch.
    const bySymbol = new Map<string, Arrival<StockTrade>[]>();
    for (const a of arrivals) {
      const t = a.payload;
      if (!t.symbol || !Number.isFinite(t.price)) continue;
      const list = bySymbol.get(t.symbol);
      if (list) list.push(a);
      else bySymbol.set(t.symbol, [a]);
    }
    if (bySymbol.size === 0) return;
    for (const [symbol, list] of bySymbol) this.update(symbol, list);
    this.evict();
    this.cached = undefined;
  }

  /** Rows sorted by symbol (a stable order, so the board does not jump). */
  list(): readonly TradeRow[] {
    this.cached ??= [...this.symbols.values()]
      .map((s) => s.row)
      .sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
    return this.cached;
  }

  /** One-second bars of `symbol`, oldest first; the same array until a trade of it arrives. */
  bars(symbol: string): readonly PriceBar[] {
    const s = this.symbols.get(symbol);
    if (!s) return [];
    s.barsSnapshot ??= s.bars.slice();
    return s.barsSnapshot;
  }

  /** When the window starts: the earliest open of any symbol. */
  windowStartMs(): number | undefined {
    let start: number | undefined;
    for (const s of this.symbols.values()) {
      const t = s.row.openTimeMs;
      if (t !== undefined && (start === undefined || t < start)) start = t;
    }
    return start;
  }

  get size(): number {
    return this.symbols.size;
  }

  private update(symbol: string, list: readonly Arrival<StockTrade>[]): void {
    const prev = this.symbols.get(symbol);
    const bars = prev?.bars ?? [];
    for (const a of list) addToBars(bars, a.payload.price, a.payload.quantity, tradeTimeMs(a));
    if (bars.length > this.options.maxBars) bars.splice(0, bars.length - this.options.maxBars);
    const first = list[0] as Arrival<StockTrade>;
    const last = list[list.length - 1] as Arrival<StockTrade>;
    const openPrice = prev?.row.openPrice ?? first.payload.price;
    const openTimeMs = prev ? prev.row.openTimeMs : tradeTimeMs(first);
    const change = last.payload.price - openPrice;
    const row: TradeRow = {
      symbol,
      openPrice,
      openTimeMs,
      lastPrice: last.payload.price,
      lastTimeMs: tradeTimeMs(last),
      change,
      changePct: openPrice === 0 ? 0 : (change / openPrice) * 100,
      count: (prev?.row.count ?? 0) + list.length,
      lastSide: sideOf(last.payload.side),
      lastQuantity: last.payload.quantity,
      exchange: last.payload.exchange,
      recent: this.recent(bars, prev),
      seq: ++this.seq,
    };
    this.symbols.set(symbol, { row, bars, barsSnapshot: undefined, lastComplete: bars[bars.length - 2]?.time });
  }

  private recent(bars: readonly PriceBar[], prev: SymbolState | undefined): readonly number[] {
    const complete = bars.length - 1;
    // A complete bar never changes (a late trade counts in the newest), so the same newest
    // complete second means the same closes.
    if (prev && bars[complete - 1]?.time === prev.lastComplete) return prev.row.recent;
    return bars.slice(Math.max(0, complete - this.options.sparklineBars), complete).map((b) => b.close);
  }

  private evict(): void {
    const excess = this.symbols.size - this.options.maxSymbols;
    if (excess <= 0) return;
    const oldest = [...this.symbols.values()].sort((a, b) => a.row.seq - b.row.seq).slice(0, excess);
    for (const s of oldest) this.symbols.delete(s.row.symbol);
  }
}

function tradeTimeMs(a: Arrival<StockTrade>): number | undefined {
  return timestampMs(a.payload.timestamp) ?? a.producedMs ?? a.receivedMs;
}

/** Adds a trade to the bars (in place); a trade older than the last bar counts in the last bar. */
export function addToBars(bars: PriceBar[], price: number, quantity: number, timeMs: number | undefined): void {
  const last = bars[bars.length - 1];
  const second = timeMs === undefined ? (last?.time ?? 0) : Math.floor(timeMs / 1000);
  if (last && second <= last.time) {
    bars[bars.length - 1] = {
      time: last.time,
      open: last.open,
      high: Math.max(last.high, price),
      low: Math.min(last.low, price),
      close: price,
      volume: last.volume + quantity,
    };
    return;
  }
  bars.push({ time: second, open: price, high: price, low: price, close: price, volume: quantity });
}
