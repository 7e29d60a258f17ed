/**
 * The dashboard: a header that sizes itself, a connection banner when something is down, and
 * three panels that fill the rest of the screen, each with its own subscription over the chosen
 * transport. On narrow screens the panels take turns (a switch under the header), so nothing
 * scrolls twice.
 */
import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { ConnectionBanner } from "./components/ConnectionBanner";
import { Header } from "./components/Header";
import { NoticesDialog } from "./components/NoticesDialog";
import { ServerLogsPanel } from "./components/ServerLogsPanel";
import { SocialFeedPanel } from "./components/SocialFeedPanel";
import { StockTradesPanel } from "./components/StockTradesPanel";
import { config, type TransportName } from "./config";
import { LiveDashboard } from "./live";
import { STREAM_LABELS, STREAMS, type StreamName } from "./state/connection";
import { grpcWebTransport } from "./transport/grpcweb";
import { sseTransport } from "./transport/sse";
import type { StreamTransport } from "./transport/types";
import { webSocketTransport } from "./transport/ws";

const transports: Record<TransportName, StreamTransport> = {
  ws: webSocketTransport(config.gatewayUrl),
  "grpc-web": grpcWebTransport,
  sse: sseTransport(config.gatewayUrl),
};

/** One live state per page: it outlives re-renders, effects and transport switches. */
const live = new LiveDashboard({ gatewayUrl: config.gatewayUrl });

function rememberTransport(transport: TransportName): void {
  const url = new URL(window.location.href);
  url.searchParams.set("transport", transport);
  window.history.replaceState(window.history.state, "", url);
}

export function App() {
  const [transport, setTransport] = useState<TransportName>(config.transport);
  const [narrowShown, setNarrowShown] = useState<StreamName>("trades");
  const [noticesOpen, setNoticesOpen] = useState(false);
  const view = useSyncExternalStore(live.subscribe, live.getSnapshot);

  useEffect(() => {
    const timer = setInterval(() => live.tick(), 1000);
    return () => clearInterval(timer);
  }, []);

  const onTransport = useCallback((next: TransportName) => {
    setTransport(next);
    rememberTransport(next);
  }, []);
  const showNotices = useCallback(() => setNoticesOpen(true), []);

  const panel = { live, transport: transports[transport], heartbeatMs: config.heartbeatMs };
  return (
    <div className="app" data-transport={transport} data-connection={view.summary.state}>
      <Header
        view={view}
        transport={transport}
        onTransport={onTransport}
        gatewayUrl={config.gatewayUrl}
        onShowNotices={showNotices}
      />
      <ConnectionBanner summary={view.summary} onShowNotices={showNotices} />
      <nav className="panel-switch" aria-label="Panels">
        {STREAMS.map((s) => (
          <button
            key={s}
            type="button"
            aria-pressed={narrowShown === s}
            data-testid={`show-${s}`}
            onClick={() => setNarrowShown(s)}
          >
            {STREAM_LABELS[s]}
          </button>
        ))}
      </nav>
      <main className="grid">
        <StockTradesPanel {...panel} data={view.tradesPanel} hiddenOnNarrow={narrowShown !== "trades"} />
        <SocialFeedPanel {...panel} data={view.feedPanel} hiddenOnNarrow={narrowShown !== "feed"} />
        <ServerLogsPanel {...panel} data={view.logsPanel} hiddenOnNarrow={narrowShown !== "logs"} />
      </main>
      <NoticesDialog open={noticesOpen} notices={view.notices} onClose={() => setNoticesOpen(false)} />
    </div>
  );
}
