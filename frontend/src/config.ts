/**
 * Where the gateway is and which transport to use, decided once at start-up.
 *
 * Precedence for the gateway URL: `?gateway=` query parameter, then the build-time
 * `VITE_GATEWAY_URL`, then port 8080 on the host that served the page (the dashboard and the
 * gateway normally run side by side). The transport comes from `?transport=` (default `ws`) and
 * can be switched live from the header. `?heartbeat=` overrides, in seconds, the heartbeat interval
 * from which the page decides that a silent connection is dead; without it the page uses the
 * interval the gateway states in its heartbeats (15 s until the first one arrives).
 */
/** The ways the browser can receive the stream: WebSocket, grpc-web, Server-Sent Events. */
export type TransportName = "ws" | "grpc-web" | "sse";

export const TRANSPORTS: readonly TransportName[] = ["ws", "grpc-web", "sse"];

export interface DashboardConfig {
  gatewayUrl: string;
  transport: TransportName;
  /** The gateway's `--heartbeat` in milliseconds, when `?heartbeat=` sets it; otherwise the
   * page follows the interval the gateway states in its heartbeats. */
  heartbeatMs?: number;
}

/** Seconds as `15` or `15s`, within 1 s – 1 h; `undefined` for anything else. */
function parseHeartbeat(value: string | null): number | undefined {
  const m = /^(\d+(?:\.\d+)?)s?$/.exec(value?.trim() ?? "");
  if (!m) return undefined;
  const ms = Number(m[1]) * 1000;
  return ms >= 1000 && ms <= 3_600_000 ? ms : undefined;
}

/** Parses a transport name, `undefined` for anything else. */
export function parseTransport(value: string | null | undefined): TransportName | undefined {
  return TRANSPORTS.find((t) => t === value);
}

/** Accepts only absolute http(s) URLs and drops a trailing slash. */
function normaliseGatewayUrl(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return url.toString().replace(/\/+$/, "");
  } catch {
    return undefined;
  }
}

/** Pure: the configuration for a page at `search` on `hostname`, given the build-time URL. */
export function resolveConfig(
  search: string,
  hostname: string,
  buildTimeGatewayUrl: string | undefined,
): DashboardConfig {
  const params = new URLSearchParams(search);
  const host = hostname.includes(":") ? `[${hostname}]` : hostname || "localhost";
  const gatewayUrl =
    normaliseGatewayUrl(params.get("gateway")) ??
    normaliseGatewayUrl(buildTimeGatewayUrl) ??
    `http://${host}:8080`;
  const transport = parseTransport(params.get("transport")) ?? "ws";
  const heartbeatMs = parseHeartbeat(params.get("heartbeat"));
  return heartbeatMs === undefined ? { gatewayUrl, transport } : { gatewayUrl, transport, heartbeatMs };
}

/** The WebSocket endpoint of a gateway: same host and port, `ws(s)` scheme, path `/ws`. */
export function webSocketUrl(gatewayUrl: string): string {
  const url = new URL(gatewayUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/ws`;
  url.search = "";
  url.hash = "";
  return url.toString();
}

/** The configuration of this page (browser only). */
export const config: DashboardConfig =
  typeof location === "undefined"
    ? resolveConfig("", "localhost", undefined)
    : resolveConfig(
        location.search,
        location.hostname,
        import.meta.env.VITE_GATEWAY_URL as string | undefined,
      );
