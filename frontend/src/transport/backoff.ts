/**
 * Reconnect delays: exponential from `baseMs`, capped at `capMs`, with "equal jitter" (half the
 * delay fixed, half random) so that many dashboards do not reconnect to a restarted gateway in
 * lockstep, while the delay still grows predictably.
 */

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, capMs: 5000 };

/** The un-jittered delay before retry number `attempt` (0-based). */
export function backoffCeiling(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = Math.min(attempt, 30); // 2^30 * base is far past any cap; avoids Infinity
  return Math.min(options.capMs, options.baseMs * 2 ** exp);
}

/** The delay before retry number `attempt`, in [ceiling/2, ceiling]. `random` returns [0, 1). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeiling(attempt, options);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
