/**
 * StockTradesPanel: the board, one row per symbol — last price, side and size of the last
 * trade, change from the stated open, trade count and the last minute's prices — filled at
 * once by its own subscription (the last five minutes, then live, newest-per-symbol when
 * behind). A symbol opens its chart, with trade-bars' candles of the same window (a second
 * subscription, open while the chart is). It owns its subscriptions.
 */
import { memo, useCallback, useMemo, useState } from "react";
import {
  direction,
  formatInt,
  formatPercent,
  formatPrice,
  formatRate,
  formatSigned,
  formatTime,
  UNKNOWN,
} from "../format";
import { tradesRequest, TRADES_BACKFILL_MS } from "../requests";
import type { TradesPanelView } from "../state/store";
import type { TradeRow } from "../state/trades";
import { Dialog } from "./Dialog";
import { Panel, PanelFigure, type PanelProps } from "./Panel";
import { PriceChart } from "./PriceChart";
import { Sparkline } from "./Sparkline";
import { useStream } from "./useStream";
import { useTradeBars, type TradeBarsView } from "./useTradeBars";

const SIDE_WORDS = { B: "buy", S: "sell", "": "" } as const;
const CANDLE_STATUS = { connecting: "connecting…", connected: "live", disconnected: "not connected, retrying" } as const;

const Row = memo(function Row({ row, onOpen }: { row: TradeRow; onOpen: (symbol: string) => void }) {
  const dir = direction(row.change);
  return (
    <tr role="row" data-testid="trade-row" data-symbol={row.symbol}>
      <th scope="row" role="rowheader" className="symbol col-sym">
        <button type="button" className="symbol-button" data-testid={`symbol-${row.symbol}`} onClick={() => onOpen(row.symbol)}>
          {row.symbol}
        </button>
      </th>
      <td role="cell" className="num last col-last">{formatPrice(row.lastPrice)}</td>
      <td role="cell" className={`side col-side side-${row.lastSide || "none"}`}>
        <span aria-hidden="true">{row.lastSide || UNKNOWN}</span>
        <span className="visually-hidden">{SIDE_WORDS[row.lastSide] || "unknown"}</span>
      </td>
      <td role="cell" className="num col-qty">{formatInt(row.lastQuantity)}</td>
      <td role="cell" className={`num col-chg ${dir}`}>{formatSigned(row.change)}</td>
      <td role="cell" className={`num col-pct ${dir}`}>{formatPercent(row.changePct)}</td>
      <td role="cell" className="num col-count">{formatInt(row.count)}</td>
      <td role="cell" className="spark col-spark">
        <Sparkline values={row.recent} />
      </td>
    </tr>
  );
});

function ChartDetail({ row, candles }: { row: TradeRow; candles: TradeBarsView }) {
  const dir = direction(row.change);
  return (
    <>
      <dl className="chart-figures">
        <div>
          <dt>Last</dt>
          <dd className="num">{formatPrice(row.lastPrice)}</dd>
        </div>
        <div>
          <dt>Open (first trade {formatTime(row.openTimeMs)})</dt>
          <dd className="num">{formatPrice(row.openPrice)}</dd>
        </div>
        <div>
          <dt>Change from open</dt>
          <dd className={`num ${dir}`}>
            {formatSigned(row.change)} ({formatPercent(row.changePct)})
          </dd>
        </div>
        <div>
          <dt>Last trade</dt>
          <dd className="num">
            {row.lastSide ? SIDE_WORDS[row.lastSide] : UNKNOWN} {formatInt(row.lastQuantity)} @{" "}
            {formatPrice(row.lastPrice)}
            {row.exchange ? ` on ${row.exchange}` : ""} at {formatTime(row.lastTimeMs)}
          </dd>
        </div>
        <div>
          <dt>Trades in window</dt>
          <dd className="num">{formatInt(row.count)}</dd>
        </div>
      </dl>
      <p className="chart-note muted">
        The window starts with the last {TRADES_BACKFILL_MS / 60_000} minutes the page asked for when it opened, or at
        its first trade if the gateway could not serve them. Green and red candles are the trade-bars service&apos;s
        one-second bars; blue ones are seconds it has not closed yet, drawn from the trades this page received.
      </p>
      <p className="chart-note muted" role="status" data-testid="candles-status" data-status={candles.status}>
        Candles: {CANDLE_STATUS[candles.status]}
      </p>
    </>
  );
}

export const StockTradesPanel = memo(function StockTradesPanel({
  live,
  data,
  transport,
  heartbeatMs,
  hiddenOnNarrow,
}: PanelProps<TradesPanelView>) {
  const request = useMemo(() => tradesRequest(), []);
  useStream(live, "trades", transport, request, heartbeatMs);
  const [symbol, setSymbol] = useState<string | undefined>();
  const onOpen = useCallback((s: string) => setSymbol(s), []);
  const candles = useTradeBars(symbol, transport, heartbeatMs);

  const stale = data.stale;
  const rows = data.rows;
  const openRow = symbol === undefined ? undefined : rows.find((r) => r.symbol === symbol);
  const since = data.windowStartMs;
  return (
    <Panel
      id="trades"
      title="Stock trades"
      className="panel-trades"
      testId="panel-stock-trades"
      stale={stale}
      hiddenOnNarrow={hiddenOnNarrow}
      figures={
        <>
          <PanelFigure label="symbols" value={formatInt(rows.length)} />
          <PanelFigure label="trades/s" value={stale ? UNKNOWN : formatRate(data.eps)} />
        </>
      }
    >
      <p className="panel-note" data-testid="trades-reference">
        <b>Chg</b> is from the <b>open</b>: each symbol&apos;s first trade{" "}
        {since === undefined ? (
          "on this page"
        ) : (
          <>
            since <span className="num">{formatTime(since)}</span>
          </>
        )}
        .
      </p>
      <div className="panel-data">
        <div className="scroller board" role="region" aria-label="Stock trades board" tabIndex={0}>
          {rows.length === 0 ? (
            <p className="empty">{stale ? "No trades: not connected." : "Waiting for trades…"}</p>
          ) : (
            <table className="trades" role="table" aria-label="Last trade per symbol">
              <thead role="rowgroup">
                <tr role="row">
                  <th scope="col" role="columnheader" className="col-sym">
                    Symbol
                  </th>
                  <th scope="col" role="columnheader" className="num col-last">
                    Last
                  </th>
                  <th scope="col" role="columnheader" className="col-side">
                    <span aria-hidden="true">B/S</span>
                    <span className="visually-hidden">Side</span>
                  </th>
                  <th scope="col" role="columnheader" className="num col-qty">
                    Qty
                  </th>
                  <th scope="col" role="columnheader" className="num col-chg">
                    Chg
                  </th>
                  <th scope="col" role="columnheader" className="num col-pct">
                    Chg %
                  </th>
                  <th scope="col" role="columnheader" className="num col-count">
                    Trades
                  </th>
                  <th scope="col" role="columnheader" className="col-spark">
                    Last 60 s
                  </th>
                </tr>
              </thead>
              <tbody role="rowgroup">
                {rows.map((row) => (
                  <Row key={row.symbol} row={row} onOpen={onOpen} />
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
      <Dialog
        open={symbol !== undefined}
        size="wide"
        title={symbol ? `${symbol} · one-second candles` : "Price chart"}
        testId="chart-dialog"
        onClose={() => setSymbol(undefined)}
      >
        {symbol && openRow ? (
          <>
            <ChartDetail row={openRow} candles={candles} />
            <PriceChart
              symbol={symbol}
              bars={data.bars(symbol)}
              candles={candles.candles}
              openPrice={openRow.openPrice}
            />
          </>
        ) : (
          <p className="empty">No trades of {symbol} in the window.</p>
        )}
      </Dialog>
    </Panel>
  );
});
