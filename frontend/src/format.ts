/**
 * Number and time formatting for the panels: pure, and the same whatever the browser's locale
 * (thousands separated by commas, a point for decimals), so figures read the same for everyone
 * and tests can assert on them. Numbers are set in tabular figures by the CSS, so a figure that
 * changes does not change width.
 */

const PRICE = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const INTEGER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** Shown for a figure that is not known right now (disconnected, no samples). */
export const UNKNOWN = "–";

/** A price: two decimals, thousands separated (`1,234.50`). */
export function formatPrice(value: number): string {
  return Number.isFinite(value) ? PRICE.format(value) : UNKNOWN;
}

/** A whole number, thousands separated (`12,345`). */
export function formatInt(value: number): string {
  return Number.isFinite(value) ? INTEGER.format(Math.round(value)) : UNKNOWN;
}

/** A signed change with a real minus sign; exactly 0 (after rounding) has no sign. */
export function formatSigned(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return UNKNOWN;
  const fixed = Math.abs(value).toFixed(digits);
  if (Number(fixed) === 0) return (0).toFixed(digits);
  const grouped = digits === 2 ? PRICE.format(Math.abs(value)) : fixed;
  return `${value > 0 ? "+" : "−"}${grouped}`;
}

export function formatPercent(value: number): string {
  return Number.isFinite(value) ? `${formatSigned(value)}%` : UNKNOWN;
}

/** Events per second: `12.5`, `340`, `1.2k`. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return UNKNOWN;
  if (perSecond >= 1000) return `${(perSecond / 1000).toFixed(1)}k`;
  return perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(1);
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return UNKNOWN;
  if (ms >= 10_000) return `${(ms / 1000).toFixed(0)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms)} ms`;
}

/** A duration for people, to the second: `3 s`, `2 min 5 s`, `1 h 4 min`. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return UNKNOWN;
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** Local wall-clock time with milliseconds, `14:03:27.120`. */
export function formatClock(ms: number | undefined): string {
  if (ms === undefined) return "--:--:--.---";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Local wall-clock time to the second, `14:03:27`. */
export function formatTime(ms: number | undefined): string {
  if (ms === undefined) return "--:--:--";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local date and time with milliseconds, `2026-11-29 14:03:27.120`, for detail views. */
export function formatDateTime(ms: number | undefined): string {
  if (ms === undefined) return UNKNOWN;
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatClock(ms)}`;
}

export function direction(value: number): "up" | "down" | "flat" {
  return value > 0 ? "up" : value < 0 ? "down" : "flat";
}
