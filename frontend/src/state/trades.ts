/**
 * Stock trades aggregated per symbol: last price, change against the first price seen, trade
 * count and the recent prices for a sparkline. Bounded: at most `maxSymbols` symbols (the
 * least recently traded is evicted) and `sparklinePoints` prices each.
 */
import type { StockTrade } from "../gen/streamweaver/v1/events_pb";
import { TradeSide } from "../gen/streamweaver/v1/events_pb";

export interface TradeRow {
  readonly symbol: string;
  readonly firstPrice: number;
  readonly lastPrice: number;
  readonly change: number;
  /** Percent change against the first price seen; 0 when that price was 0. */
  readonly changePct: number;
  readonly count: number;
  readonly lastSide: "buy" | "sell" | "";
  readonly lastQuantity: number;
  readonly exchange: string;
  /** Most recent last, at most `sparklinePoints`. */
  readonly prices: readonly number[];
  /** Order of the last update, for eviction. */
  readonly seq: number;
}

export interface TradesOptions {
  maxSymbols: number;
  sparklinePoints: number;
}

export const DEFAULT_TRADES_OPTIONS: TradesOptions = { maxSymbols: 40, sparklinePoints: 60 };

export class TradesState {
  private readonly rows = new Map<string, TradeRow>();
  private seq = 0;
  private cached: readonly TradeRow[] | undefined;

  constructor(private readonly options: TradesOptions = DEFAULT_TRADES_OPTIONS) {}

  /** Folds a batch of trades in, in order. */
  apply(trades: readonly StockTrade[]): void {
    if (trades.length === 0) return;
    // Per symbol, collect the batch's prices first, so each row is rebuilt once per batch.
    const bySymbol = new Map<string, StockTrade[]>();
    for (const t of trades) {
      if (!t.symbol || !Number.isFinite(t.price)) continue;
      const list = bySymbol.get(t.symbol);
      if (list) list.push(t);
      else bySymbol.set(t.symbol, [t]);
    }
    for (const [symbol, list] of bySymbol) this.update(symbol, list);
    this.evict();
    this.cached = undefined;
  }

  /** Rows sorted by symbol (a stable order, so the table does not jump). */
  list(): readonly TradeRow[] {
    this.cached ??= [...this.rows.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
    return this.cached;
  }

  get size(): number {
    return this.rows.size;
  }

  private update(symbol: string, list: readonly StockTrade[]): void {
    const prev = this.rows.get(symbol);
    const last = list[list.length - 1] as StockTrade;
    const firstPrice = prev?.firstPrice ?? (list[0] as StockTrade).price;
    const keep = this.options.sparklinePoints;
    const incoming = list.length > keep ? list.slice(-keep) : list;
    const prices = [...(prev?.prices ?? []), ...incoming.map((t) => t.price)];
    const bounded = prices.length > keep ? prices.slice(prices.length - keep) : prices;
    const change = last.price - firstPrice;
    this.rows.set(symbol, {
      symbol,
      firstPrice,
      lastPrice: last.price,
      change,
      changePct: firstPrice === 0 ? 0 : (change / firstPrice) * 100,
      count: (prev?.count ?? 0) + list.length,
      lastSide:
        last.side === TradeSide.BUY ? "buy" : last.side === TradeSide.SELL ? "sell" : "",
      lastQuantity: last.quantity,
      exchange: last.exchange,
      prices: bounded,
      seq: ++this.seq,
    });
  }

  private evict(): void {
    const excess = this.rows.size - this.options.maxSymbols;
    if (excess <= 0) return;
    const oldest = [...this.rows.values()].sort((a, b) => a.seq - b.seq).slice(0, excess);
    for (const row of oldest) this.rows.delete(row.symbol);
  }
}
