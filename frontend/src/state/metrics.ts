/**
 * Live figures for the header: events per second per topic over a sliding window (fixed-size
 * buckets, so memory is constant at any rate) and end-to-end latency percentiles (now minus the
 * producer's timestamp) over the most recent samples.
 */

/** Events per second over the last `windowMs`, counted in `bucketMs` buckets. */
export class RateMeter {
  private readonly buckets: Float64Array;
  private readonly stamps: Float64Array;
  private firstMs: number | undefined;

  constructor(
    private readonly windowMs = 5_000,
    private readonly bucketMs = 250,
  ) {
    const n = Math.ceil(windowMs / bucketMs);
    this.buckets = new Float64Array(n);
    this.stamps = new Float64Array(n).fill(-1);
  }

  add(count: number, nowMs: number): void {
    if (count <= 0) return;
    this.firstMs ??= nowMs;
    const slot = Math.floor(nowMs / this.bucketMs);
    const i = slot % this.buckets.length;
    if (this.stamps[i] !== slot) {
      this.stamps[i] = slot;
      this.buckets[i] = 0;
    }
    this.buckets[i] = (this.buckets[i] ?? 0) + count;
  }

  /** Events per second; over less than the window while the meter is young. */
  perSecond(nowMs: number): number {
    if (this.firstMs === undefined) return 0;
    const slot = Math.floor(nowMs / this.bucketMs);
    const oldest = slot - this.buckets.length + 1;
    let total = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      const s = this.stamps[i] ?? -1;
      if (s >= oldest && s <= slot) total += this.buckets[i] ?? 0;
    }
    const span = Math.min(this.windowMs, Math.max(this.bucketMs, nowMs - this.firstMs + this.bucketMs));
    return (total * 1000) / span;
  }
}

/** The `p`-th percentile (0–100) of `sorted` (ascending), nearest-rank; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  readonly samples: number;
}

/** The last `capacity` latency samples no older than `windowMs`, in a ring. */
export class LatencyWindow {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(
    private readonly capacity = 2_000,
    private readonly windowMs = 10_000,
  ) {
    this.values = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
  }

  add(latencyMs: number, nowMs: number): void {
    if (!Number.isFinite(latencyMs)) return;
    this.values[this.next] = latencyMs;
    this.times[this.next] = nowMs;
    this.next = (this.next + 1) % this.capacity;
    this.filled = Math.min(this.capacity, this.filled + 1);
  }

  summary(nowMs: number): LatencySummary {
    const cutoff = nowMs - this.windowMs;
    const recent: number[] = [];
    for (let i = 0; i < this.filled; i++) {
      if ((this.times[i] ?? 0) > cutoff) recent.push(this.values[i] ?? 0);
    }
    const sorted = Float64Array.from(recent).sort();
    return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), samples: sorted.length };
  }
}
