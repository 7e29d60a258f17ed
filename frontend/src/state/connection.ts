/**
 * The state of each of the page's subscriptions, and the one honest sentence the page shows
 * about them: connected; connecting; disconnected and when it retries, with the age of the
 * last data; or, for a page opened while the gateway is down, that it cannot connect at all.
 * Pure: every function takes the current time, so the sentences are tested without timers.
 */
import { formatAge } from "../format";
import type { ConnectionStatus, StatusReport } from "../transport/types";

/** The page's subscriptions, one per panel: each has its own request, resume and state. */
export const STREAMS = ["trades", "feed", "logs"] as const;
export type StreamName = (typeof STREAMS)[number];

export const STREAM_LABELS: Record<StreamName, string> = {
  trades: "Stock trades",
  feed: "Social feed",
  logs: "Server logs",
};

export interface StreamConnection {
  readonly status: ConnectionStatus;
  /** Whether this subscription was ever accepted by a gateway since the page opened. */
  readonly everConnected: boolean;
  /** Attempts that failed since the last successful one. */
  readonly failures: number;
  readonly detail: string;
  /** When the next attempt starts (while `disconnected`). */
  readonly retryAt: number | undefined;
  /** When the current state began. */
  readonly since: number;
  /** When the last message of any kind (event, heartbeat, …) arrived. */
  readonly lastMessageAt: number | undefined;
}

export const INITIAL_CONNECTION: StreamConnection = {
  status: "connecting",
  everConnected: false,
  failures: 0,
  detail: "",
  retryAt: undefined,
  since: 0,
  lastMessageAt: undefined,
};

/**
 * A subscription restarted on purpose (a new filter, another transport) reconnects within
 * milliseconds; for this long it still counts as up, so the page does not flash a banner.
 */
export const RESTART_GRACE_MS = 3_000;

/** Whether the page should show this subscription as down at `nowMs`. */
export function isDown(conn: StreamConnection, nowMs: number): boolean {
  switch (conn.status) {
    case "connected":
      return false;
    case "disconnected":
      return true;
    case "connecting":
      return !conn.everConnected || conn.failures > 0 || nowMs - conn.since > RESTART_GRACE_MS;
  }
}

/** The next state of a subscription after a report at `nowMs`. */
export function reduceConnection(
  prev: StreamConnection,
  report: StatusReport,
  nowMs: number,
): StreamConnection {
  switch (report.status) {
    case "connected":
      return { ...prev, status: "connected", everConnected: true, failures: 0, detail: "", retryAt: undefined, since: nowMs };
    case "connecting":
      return { ...prev, status: "connecting", retryAt: undefined, since: nowMs };
    case "disconnected":
      return {
        ...prev,
        status: "disconnected",
        failures: prev.failures + 1,
        detail: report.detail ?? "",
        retryAt: report.retryInMs === undefined ? undefined : nowMs + report.retryInMs,
        since: nowMs,
      };
  }
}

/** How the page as a whole is doing. */
export type OverallState = "connected" | "connecting" | "reconnecting" | "unreachable";

export interface ConnectionSummary {
  readonly state: OverallState;
  /** A short word for the status pill (and `role="status"`): announced when it changes. */
  readonly headline: string;
  /** The banner's sentence, with a countdown and the age of the last data; none when connected. */
  readonly banner: string | undefined;
  /** The subscriptions that are not connected. */
  readonly down: readonly StreamName[];
}

const HEADLINES: Record<OverallState, string> = {
  connected: "connected",
  connecting: "connecting",
  reconnecting: "reconnecting",
  unreachable: "cannot connect",
};

function retryPhrase(conns: readonly StreamConnection[], nowMs: number): string {
  const waits = conns
    .filter((c) => c.status === "disconnected" && c.retryAt !== undefined)
    .map((c) => (c.retryAt as number) - nowMs)
    .filter((ms) => ms > 0);
  if (waits.length === 0) return "trying again now";
  return `retrying in ${Math.ceil(Math.min(...waits) / 1000)} s`;
}

/** The summary of all subscriptions at `nowMs`, for a gateway at `gatewayUrl`. */
export function summarize(
  conns: Readonly<Record<StreamName, StreamConnection>>,
  nowMs: number,
  gatewayUrl: string,
): ConnectionSummary {
  const down = STREAMS.filter((s) => isDown(conns[s], nowMs));
  if (down.length === 0) {
    return { state: "connected", headline: HEADLINES.connected, banner: undefined, down };
  }
  const downConns = down.map((s) => conns[s]);
  const everConnected = STREAMS.some((s) => conns[s].everConnected);
  const failed = downConns.some((c) => c.failures > 0);
  if (!failed) {
    const state: OverallState = everConnected ? "reconnecting" : "connecting";
    const banner = everConnected
      ? `${whoIsDown(down)} reconnecting · ${lastData(downConns, nowMs)}`
      : `Connecting to the gateway at ${gatewayUrl}…`;
    return { state, headline: HEADLINES[state], banner, down };
  }
  const retry = retryPhrase(downConns, nowMs);
  const reason = downConns.find((c) => c.detail)?.detail;
  if (!everConnected) {
    return {
      state: "unreachable",
      headline: HEADLINES.unreachable,
      banner: `Cannot connect to the gateway at ${gatewayUrl} — ${retry}${reason ? ` (${reason})` : ""}`,
      down,
    };
  }
  return {
    state: "reconnecting",
    headline: HEADLINES.reconnecting,
    banner: `${whoIsDown(down)} disconnected — ${retry} · ${lastData(downConns, nowMs)}`,
    down,
  };
}

function whoIsDown(down: readonly StreamName[]): string {
  if (down.length === STREAMS.length) return "Gateway";
  return down.map((s) => STREAM_LABELS[s]).join(", ");
}

function lastData(conns: readonly StreamConnection[], nowMs: number): string {
  const times = conns.map((c) => c.lastMessageAt).filter((t): t is number => t !== undefined);
  if (times.length === 0) return "no data received yet";
  return `last data ${formatAge(nowMs - Math.max(...times))} ago`;
}
