/**
 * The candles of one symbol while its chart is open: a subscription of its own to `trade_bars`
 * (the trade-bars service's one-second bars), from the board's window start, then live. Opened
 * when the chart opens and closed with it, so a page that never opens a chart never asks for
 * bars; reconnects resume from its own positions, like every panel's subscription.
 */
import { useEffect, useState } from "react";
import { tradeBarsRequest } from "../requests";
import { Candles } from "../state/candles";
import type { PriceBar } from "../state/trades";
import { ResumeTracker } from "../transport/resume";
import { runSubscription, silenceLimitMs } from "../transport/subscription";
import type { ConnectionStatus, StreamTransport } from "../transport/types";

/** Redraws at most this often: the backfill brings minutes of bars at once. */
const REDRAW_MS = 250;

export interface TradeBarsView {
  readonly candles: readonly PriceBar[];
  readonly status: ConnectionStatus;
}

const NONE: TradeBarsView = { candles: [], status: "connecting" };

export function useTradeBars(
  symbol: string | undefined,
  transport: StreamTransport,
  /** `?heartbeat=`: a fixed interval instead of the one the gateway states. */
  heartbeatMs: number | undefined,
): TradeBarsView {
  const [view, setView] = useState<TradeBarsView>(NONE);
  useEffect(() => {
    setView(NONE);
    if (symbol === undefined) return;
    const controller = new AbortController();
    const candles = new Candles();
    let status: ConnectionStatus = "connecting";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const redraw = (): void => {
      timer = undefined;
      if (!controller.signal.aborted) setView({ candles: candles.list(), status });
    };
    const later = (): void => {
      timer ??= setTimeout(redraw, REDRAW_MS);
    };
    void runSubscription({
      transport,
      request: tradeBarsRequest(symbol),
      resume: new ResumeTracker(),
      signal: controller.signal,
      silenceLimitMs: heartbeatMs === undefined ? undefined : silenceLimitMs(heartbeatMs),
      onResponse: (response) => {
        if (response.kind.case !== "event") return;
        const payload = response.kind.value.payload;
        if (payload.case === "tradeBar" && payload.value.symbol === symbol && candles.add(payload.value)) later();
      },
      onStatus: (report) => {
        status = report.status;
        later();
      },
    });
    return () => {
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [symbol, transport, heartbeatMs]);
  return view;
}
