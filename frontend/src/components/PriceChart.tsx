/**
 * A symbol's price over the window, one point per second with trades, on a time axis in local
 * time, with the open drawn as a dashed line: TradingView's Lightweight Charts (canvas, made for
 * financial time series; loaded only when a chart is first opened). Screen readers get the same
 * facts as a sentence.
 */
import { useEffect, useRef, useState } from "react";
import type { AutoscaleInfo, IChartApi, IPriceLine, ISeriesApi, UTCTimestamp } from "lightweight-charts";
import { formatPrice, formatTime } from "../format";
import type { PriceBar } from "../state/trades";

interface Props {
  symbol: string;
  bars: readonly PriceBar[];
  openPrice: number;
}

interface Chart {
  chart: IChartApi;
  series: ISeriesApi<"Line">;
  openLine: IPriceLine | undefined;
}

const css = (name: string, fallback: string): string =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

export function PriceChart({ symbol, bars, openPrice }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<Chart | undefined>(undefined);
  const [ready, setReady] = useState(false);
  const [failed, setFailed] = useState<string | undefined>();
  const openRef = useRef(openPrice);
  openRef.current = openPrice;

  useEffect(() => {
    let disposed = false;
    import("lightweight-charts")
      .then(({ createChart, LineSeries, ColorType, LineStyle }) => {
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
        const series = api.addSeries(LineSeries, {
          color: css("--accent", "#58a6ff"),
          lineWidth: 2,
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

  useEffect(() => {
    const c = chart.current;
    if (!ready || !c) return;
    c.series.setData(bars.map((b) => ({ time: b.time as UTCTimestamp, value: b.close })));
    c.openLine?.applyOptions({ price: openPrice });
  }, [ready, bars, openPrice]);

  useEffect(() => {
    if (ready) chart.current?.chart.timeScale().fitContent();
  }, [ready, symbol]);

  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const b of bars) {
    low = Math.min(low, b.low);
    high = Math.max(high, b.high);
  }
  const first = bars[0];
  const last = bars[bars.length - 1];
  const summary =
    first && last
      ? `${symbol}, ${bars.length} one-second prices from ${formatTime(first.time * 1000)} to ${formatTime(last.time * 1000)}: ` +
        `low ${formatPrice(low)}, high ${formatPrice(high)}, last ${formatPrice(last.close)}; open ${formatPrice(openPrice)} (dashed line).`
      : `${symbol}: no prices yet.`;

  return (
    <figure className="price-chart">
      <div ref={host} className="price-chart-canvas" role="img" aria-label={summary} data-testid="price-chart" />
      <figcaption className="muted">{failed ? `The chart could not be drawn: ${failed}` : summary}</figcaption>
    </figure>
  );
}
