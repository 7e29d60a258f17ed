/**
 * The header: the transport switch, the connection (a `role="status"` word, announced when it
 * changes) and the live figures, each under a visible label. A figure that cannot be known
 * right now (its stream is down) reads "–" rather than a stale value. Gaps and errors open the
 * stream notices, so their details are a click (or Enter) away, not in a hover tooltip.
 */
import { TRANSPORTS, type TransportName } from "../config";
import { formatInt, formatMs, formatRate, UNKNOWN } from "../format";
import { isDown } from "../state/connection";
import { STREAM_OF_TOPIC, TOPICS, type DashboardView } from "../state/store";
import { dataAttributes } from "./Panel";

const TRANSPORT_LABELS: Record<TransportName, string> = { ws: "WebSocket", "grpc-web": "grpc-web", sse: "SSE" };
const TOPIC_LABELS = { stock_trades: "trades/s", social_feed: "posts/s", server_logs: "logs/s" } as const;

interface Props {
  view: DashboardView;
  transport: TransportName;
  onTransport: (t: TransportName) => void;
  gatewayUrl: string;
  onShowNotices: () => void;
}

/** The word `data-status` carries for scripts: one of three, whatever the headline says. */
function statusToken(view: DashboardView): "connected" | "connecting" | "disconnected" {
  const state = view.summary.state;
  if (state === "connected") return "connected";
  if (state === "connecting") return "connecting";
  return "disconnected";
}

function Figure({
  label,
  value,
  testId,
  data,
}: {
  label: string;
  value: string;
  testId: string;
  data?: Record<string, string | number>;
}) {
  return (
    <div className="figure">
      <dt>{label}</dt>
      <dd className="num" data-testid={testId} {...dataAttributes(data)}>
        {value}
      </dd>
    </div>
  );
}

export function Header({ view, transport, onTransport, gatewayUrl, onShowNotices }: Props) {
  const status = statusToken(view);
  const allLive = view.summary.state === "connected";
  return (
    <header className="topbar">
      <div className="topbar-row">
        <div className="brand">
          <h1>StreamWeaver</h1>
          <span className="gateway">
            gateway <span className="mono">{gatewayUrl}</span>
          </span>
        </div>
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
        <span
          className={`status status-${status}`}
          role="status"
          data-testid="connection-status"
          data-status={status}
          data-transport={transport}
        >
          {view.summary.headline}
        </span>
      </div>
      <dl className="figures">
        {TOPICS.map((topic) => {
          const live = !isDown(view.connections[STREAM_OF_TOPIC[topic]], view.nowMs);
          return (
            <Figure
              key={topic}
              label={TOPIC_LABELS[topic]}
              value={live ? formatRate(view.eps[topic]) : UNKNOWN}
              testId={`eps-${topic}`}
              data={{ value: view.eps[topic].toFixed(2), total: view.received[topic] }}
            />
          );
        })}
        <Figure
          label="latency p50"
          value={allLive ? formatMs(view.latency.p50) : UNKNOWN}
          testId="latency-p50"
          data={{ samples: view.latency.samples }}
        />
        <Figure label="latency p95" value={allLive ? formatMs(view.latency.p95) : UNKNOWN} testId="latency-p95" />
        <Figure
          label="live events"
          value={formatInt(view.liveEvents)}
          testId="events-total"
          data={{ value: view.liveEvents }}
        />
        <Figure
          label="replayed"
          value={formatInt(view.replayedEvents)}
          testId="events-replayed"
          data={{ value: view.replayedEvents }}
        />
        <div className="figure">
          <dt>gaps</dt>
          <dd className={`num ${view.gaps.count > 0 ? "warn" : ""}`}>
            <button
              type="button"
              className="figure-button"
              data-testid="gap-count"
              data-value={view.gaps.count}
              aria-label={`${view.gaps.count} gaps: show stream notices`}
              onClick={onShowNotices}
            >
              {formatInt(view.gaps.count)}
            </button>
          </dd>
        </div>
        <div className="figure">
          <dt>errors</dt>
          <dd className={`num ${view.errors > 0 ? "bad" : ""}`}>
            <button
              type="button"
              className="figure-button"
              data-testid="stream-errors"
              data-value={view.errors}
              aria-label={`${view.errors} errors: show stream notices`}
              onClick={onShowNotices}
            >
              {formatInt(view.errors)}
            </button>
          </dd>
        </div>
      </dl>
    </header>
  );
}
