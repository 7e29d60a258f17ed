/**
 * The dashboard: one subscription (over the chosen transport) feeding three panels. The stream
 * is consumed inside an effect and cancelled with an AbortController on cleanup, so switching
 * transport or changing the log-level filter replaces the subscription cleanly.
 */
import { create } from "@bufbuild/protobuf";
import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import { Header } from "./components/Header";
import { ServerLogsPanel } from "./components/ServerLogsPanel";
import { SocialFeedPanel } from "./components/SocialFeedPanel";
import { StockTradesPanel } from "./components/StockTradesPanel";
import { config, type TransportName } from "./config";
import { formatRate } from "./format";
import { SubscribeRequestSchema } from "./gen/streamweaver/v1/stream_pb";
import { LiveDashboard } from "./live";
import { LEVELS, levelsForRequest, type LevelName } from "./state/logs";
import { grpcWebTransport } from "./transport/grpcweb";
import { runSubscription } from "./transport/subscription";
import type { ConnectionStatus, StreamTransport } from "./transport/types";
import { webSocketTransport } from "./transport/ws";

const transports: Record<TransportName, StreamTransport> = {
  ws: webSocketTransport(config.gatewayUrl),
  "grpc-web": grpcWebTransport,
};

/** One live state per page: it outlives re-renders, effects and transport switches. */
const live = new LiveDashboard();

function rememberTransport(transport: TransportName): void {
  const url = new URL(window.location.href);
  url.searchParams.set("transport", transport);
  window.history.replaceState(window.history.state, "", url);
}

export function App() {
  const [transport, setTransport] = useState<TransportName>(config.transport);
  const [levels, setLevels] = useState<ReadonlySet<LevelName>>(() => new Set(LEVELS));
  const [connection, setConnection] = useState<{ status: ConnectionStatus; detail: string }>({
    status: "connecting",
    detail: "",
  });
  const view = useSyncExternalStore(live.subscribe, live.getSnapshot);

  const request = useMemo(
    () => create(SubscribeRequestSchema, { logLevels: levelsForRequest(levels) }),
    [levels],
  );

  useEffect(() => {
    const controller = new AbortController();
    void runSubscription({
      transport: transports[transport],
      request,
      resume: live.resume,
      signal: controller.signal,
      onResponse: live.push,
      onStatus: (status, detail) => {
        if (controller.signal.aborted) return;
        setConnection({ status, detail: detail ?? "" });
      },
    });
    return () => controller.abort();
  }, [transport, request]);

  useEffect(() => {
    const timer = setInterval(() => live.tick(), 1000);
    return () => clearInterval(timer);
  }, []);

  const onTransport = useCallback((next: TransportName) => {
    setTransport(next);
    rememberTransport(next);
  }, []);

  const onToggleLevel = useCallback(
    (level: LevelName, on: boolean) => {
      const next = new Set(levels);
      if (on) next.add(level);
      else next.delete(level);
      if (next.size === 0) return; // at least one level stays selected
      live.setLogLevels(next); // hide excluded lines at once, before the server applies it
      setLevels(next);
    },
    [levels],
  );

  return (
    <div className="app" data-transport={transport}>
      <Header
        view={view}
        transport={transport}
        onTransport={onTransport}
        status={connection.status}
        statusDetail={connection.detail}
        gatewayUrl={config.gatewayUrl}
      />
      <main className="grid">
        <StockTradesPanel rows={view.trades} eps={formatRate(view.eps.stock_trades)} />
        <SocialFeedPanel
          posts={view.posts}
          hashtags={view.hashtags}
          eps={formatRate(view.eps.social_feed)}
        />
        <ServerLogsPanel
          lines={view.logs}
          levels={levels}
          errorRate={view.errorRate}
          eps={formatRate(view.eps.server_logs)}
          filteredOut={view.logsFilteredOut}
          onToggleLevel={onToggleLevel}
        />
      </main>
    </div>
  );
}
