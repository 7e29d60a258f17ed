/**
 * A symbol's price over the window on a time axis in local time, as one-second candles: the
 * trade-bars service's (`trade_bars`, green up / red down), then the seconds it has not closed
 * yet from the page's own trades (in the accent colour, replaced by trade-bars' candle once it
 * comes; all of them when trade-bars is not running), and the open as a dashed line.
 * TradingView's Lightweight Charts (canvas, made for financial time series; loaded only when a
 * chart is first opened). One series: Lightweight Charts 5.2 can fail a hit test when two series
 * of one chart hold different seconds. Screen readers get the same facts as a sentence.
 */
import { useEffect, useMemo, useRef, useState } from "react";
import type { AutoscaleInfo, IChartApi, IPriceLine, ISeriesApi, UTCTimestamp } from "lightweight-charts";
import { chartCandles } from "../state/candles";
import { formatInt, formatPrice, formatTime } from "../format";
import type { PriceBar } from "../state/trades";

interface Props {
  symbol: string;
  /** The page's one-second bars from the trades it received. */
  bars: readonly PriceBar[];
  /** trade-bars' one-second bars of the symbol, oldest first. */
  candles: readonly PriceBar[];
  openPrice: number;
}

interface Chart {
  chart: IChartApi;
  series: ISeriesApi<"Candlestick">;
  /** The colour of the candles from the page's own trades. */
  forming: string;
  openLine: IPriceLine | undefined;
}

const css = (name: string, fallback: string): string =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

export function PriceChart({ symbol, bars, candles, openPrice }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<Chart | undefined>(undefined);
  const [ready, setReady] = useState(false);
  const [failed, setFailed] = useState<string | undefined>();
  const openRef = useRef(openPrice);
  openRef.current = openPrice;

  useEffect(() => {
    let disposed = false;
    import("lightweight-charts")
      .then(({ createChart, CandlestickSeries, ColorType, LineStyle }) => {
        const el = host.current;
        if (disposed || !el) return;
        const text = css("--text", "#d6dde6");
        const line = css("--line", "#2a3340");
        const api = createChart(el, {
          autoSize: true,
          layout: {
            background: { type: ColorType.Solid, color: css("--panel", "#151b23") },
            textColor: text,
            fontFamily: css("--mono", "monospace"),
          },
          grid: { vertLines: { color: line }, horzLines: { color: line } },
          rightPriceScale: { borderColor: line },
          timeScale: {
            borderColor: line,
            timeVisible: true,
            secondsVisible: true,
            tickMarkFormatter: (time: unknown) => formatTime(Number(time) * 1000),
          },
          localization: {
            timeFormatter: (time: unknown) => formatTime(Number(time) * 1000),
            priceFormatter: formatPrice,
          },
        });
        const up = css("--up", "#3fb950");
        const down = css("--down", "#ff6b61");
        const series = api.addSeries(CandlestickSeries, {
          upColor: up,
          downColor: down,
          wickUpColor: up,
          wickDownColor: down,
          borderVisible: false,
          // Keep the open in view, so the dashed line is always there to compare with.
          autoscaleInfoProvider: (auto: () => AutoscaleInfo | null) => {
            const info = auto();
            const open = openRef.current;
            if (!info?.priceRange) return info;
            return {
              ...info,
              priceRange: {
                minValue: Math.min(info.priceRange.minValue, open),
                maxValue: Math.max(info.priceRange.maxValue, open),
              },
            };
          },
        });
        chart.current = {
          chart: api,
          series,
          forming: css("--accent", "#58a6ff"),
          openLine: series.createPriceLine({
            price: openPrice,
            color: css("--muted", "#8391a2"),
            lineStyle: LineStyle.Dashed,
            lineWidth: 1,
            axisLabelVisible: true,
            title: "open",
          }),
        };
        setReady(true);
      })
      .catch((err: unknown) => setFailed(err instanceof Error ? err.message : String(err)));
    return () => {
      disposed = true;
      chart.current?.chart.remove();
      chart.current = undefined;
    };
    // Made once per dialog: data and the open line follow in the effect below.
  }, []);

  const drawn = useMemo(() => chartCandles(candles, bars), [candles, bars]);
  useEffect(() => {
    const c = chart.current;
    if (!ready || !c) return;
    c.series.setData(
      drawn.map(({ bar, forming }) => ({
        time: bar.time as UTCTimestamp,
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        ...(forming ? { color: c.forming, wickColor: c.forming, borderColor: c.forming } : {}),
      })),
    );
    c.openLine?.applyOptions({ price: openPrice });
  }, [ready, drawn, openPrice]);

  useEffect(() => {
    if (ready) chart.current?.chart.timeScale().fitContent();
  }, [ready, symbol]);

  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const { bar } of drawn) {
    low = Math.min(low, bar.low);
    high = Math.max(high, bar.high);
  }
  const first = drawn[0]?.bar;
  const last = drawn[drawn.length - 1]?.bar;
  const forming = drawn.length - candles.length;
  const firstCandle = candles[0];
  const lastCandle = candles[candles.length - 1];
  const summary =
    first && last
      ? `${symbol}, ${formatInt(drawn.length)} one-second candles from ${formatTime(first.time * 1000)} to ${formatTime(last.time * 1000)}: ` +
        `low ${formatPrice(low)}, high ${formatPrice(high)}, last ${formatPrice(last.close)}; open ${formatPrice(openPrice)} (dashed line). ` +
        (candles.length > 0
          ? `${formatInt(candles.length)} from trade-bars (green up, red down)`
          : "None from trade-bars yet (the trade_bars topic)") +
        (forming > 0 ? `; the last ${formatInt(forming)} from this page's trades (blue), until trade-bars closes them.` : ".")
      : `${symbol}: no prices yet.`;

  return (
    <figure
      className="price-chart"
      data-candles={candles.length}
      data-first-candle={firstCandle?.time}
      data-last-candle={lastCandle?.time}
    >
      <div ref={host} className="price-chart-canvas" role="img" aria-label={summary} data-testid="price-chart" />
      <figcaption className="muted">{failed ? `The chart could not be drawn: ${failed}` : summary}</figcaption>
    </figure>
  );
}
