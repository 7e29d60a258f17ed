/**
 * A tiny inline SVG line of recent prices: a glance, not a chart (the chart is a click away).
 * It stretches to the width of its cell; the line keeps its thickness.
 */
import { memo } from "react";
import { formatPrice } from "../format";

interface Props {
  values: readonly number[];
  width?: number;
  height?: number;
}

export const Sparkline = memo(function Sparkline({ values, width = 88, height = 22 }: Props) {
  if (values.length < 2) {
    return <svg className="sparkline" width="100%" height={height} aria-hidden="true" />;
  }
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min || 1;
  const step = width / (values.length - 1);
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`)
    .join(" ");
  const first = values[0] ?? 0;
  const last = values[values.length - 1] ?? 0;
  const trend = last > first ? "up" : last < first ? "down" : "flat";
  return (
    <svg
      className={`sparkline ${trend}`}
      width="100%"
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`last minute from ${formatPrice(first)} to ${formatPrice(last)}`}
    >
      <polyline points={points} fill="none" strokeWidth="1.5" strokeLinejoin="round" vectorEffect="non-scaling-stroke" />
    </svg>
  );
});
