/** The header: transport switch, connection status and the live figures. */
import { TRANSPORTS, type TransportName } from "../config";
import { formatMs, formatRate } from "../format";
import { TOPICS, type DashboardView } from "../state/store";
import type { ConnectionStatus } from "../transport/types";

const TRANSPORT_LABELS: Record<TransportName, string> = { ws: "WebSocket", "grpc-web": "grpc-web" };
const TOPIC_LABELS = { stock_trades: "trades", social_feed: "posts", server_logs: "logs" } as const;

interface Props {
  view: DashboardView;
  transport: TransportName;
  onTransport: (t: TransportName) => void;
  status: ConnectionStatus;
  statusDetail: string;
  gatewayUrl: string;
}

export function Header({ view, transport, onTransport, status, statusDetail, gatewayUrl }: Props) {
  return (
    <header className="topbar">
      <div className="brand">
        <h1>StreamWeaver</h1>
        <span className="gateway" title="gateway">
          {gatewayUrl}
        </span>
      </div>
      <div className="transport">
        <div className="switch" role="group" aria-label="Transport">
          {TRANSPORTS.map((t) => (
            <button
              key={t}
              type="button"
              data-testid={`transport-${t}`}
              aria-pressed={t === transport}
              className={t === transport ? "active" : ""}
              onClick={() => onTransport(t)}
            >
              {TRANSPORT_LABELS[t]}
            </button>
          ))}
        </div>
        <span className="transport-label" data-testid="transport-label">
          {transport}
        </span>
        <span
          className={`status status-${status}`}
          data-testid="connection-status"
          title={statusDetail || status}
        >
          {status}
        </span>
      </div>
      <dl className="figures">
        {TOPICS.map((topic) => (
          <div key={topic} className="figure">
            <dt>{TOPIC_LABELS[topic]}/s</dt>
            <dd className="num" data-testid={`eps-${topic}`}
              data-value={view.eps[topic].toFixed(2)}
              data-total={view.totals[topic]}
            >
              {formatRate(view.eps[topic])}
            </dd>
          </div>
        ))}
        <div className="figure">
          <dt>latency p50</dt>
          <dd className="num" data-testid="latency-p50">
            {formatMs(view.latency.p50)}
          </dd>
        </div>
        <div className="figure">
          <dt>p95</dt>
          <dd className="num" data-testid="latency-p95">
            {formatMs(view.latency.p95)}
          </dd>
        </div>
        <div className="figure">
          <dt>events</dt>
          <dd className="num" data-testid="events-total">
            {view.totalEvents}
          </dd>
        </div>
        <div className="figure" title={view.gaps.lastReason || "no gaps"}>
          <dt>gaps</dt>
          <dd className={`num ${view.gaps.count > 0 ? "warn" : ""}`} data-testid="gap-count">
            {view.gaps.count}
          </dd>
        </div>
        <div className="figure" title={view.errors.last || "no errors"}>
          <dt>errors</dt>
          <dd className={`num ${view.errors.count > 0 ? "bad" : ""}`} data-testid="stream-errors">
            {view.errors.count}
          </dd>
        </div>
      </dl>
    </header>
  );
}
