/** StockTradesPanel: one live row per symbol (from the `stock_trades` topic). */
import { memo } from "react";
import { direction, formatPercent, formatPrice, formatSigned } from "../format";
import type { TradeRow } from "../state/trades";
import { Sparkline } from "./Sparkline";

const Row = memo(function Row({ row }: { row: TradeRow }) {
  const dir = direction(row.change);
  return (
    <tr data-testid="trade-row" data-symbol={row.symbol}>
      <td className="symbol">{row.symbol}</td>
      <td className={`num last ${row.lastSide}`}>{formatPrice(row.lastPrice)}</td>
      <td className={`num ${dir}`}>{formatSigned(row.change)}</td>
      <td className={`num ${dir}`}>{formatPercent(row.changePct)}</td>
      <td className="num">{row.count}</td>
      <td className="spark">
        <Sparkline values={row.prices} />
      </td>
    </tr>
  );
});

export function StockTradesPanel({ rows, eps }: { rows: readonly TradeRow[]; eps: string }) {
  return (
    <section className="panel" data-testid="panel-stock-trades" aria-labelledby="trades-title">
      <header className="panel-head">
        <h2 id="trades-title">Stock trades</h2>
        <span className="panel-meta">
          {rows.length} symbols · {eps}/s
        </span>
      </header>
      <div className="panel-body">
        {rows.length === 0 ? (
          <p className="empty">Waiting for trades…</p>
        ) : (
          <table className="trades">
            <thead>
              <tr>
                <th>Symbol</th>
                <th className="num">Last</th>
                <th className="num">Chg</th>
                <th className="num">Chg %</th>
                <th className="num">Trades</th>
                <th>Recent</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <Row key={row.symbol} row={row} />
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
