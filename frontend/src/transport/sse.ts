/**
 * The Server-Sent Events transport: `GET <gateway>/sse?…` with the SubscribeRequest as query
 * parameters, read by the browser's own `EventSource`; each message's data is one
 * SubscribeResponse in proto3 JSON. For networks whose proxies break WebSocket.
 *
 * The shared reconnect loop (`subscription.ts`) owns reconnecting and resuming, as for the other
 * transports: when the stream fails, this transport closes its `EventSource` (which would
 * otherwise reconnect on its own) and the loop opens a new one with `resumeFrom` positions.
 *
 * An `EventSource` does not say why a request was refused; when one fails before it opened,
 * the transport asks once more with `fetch` to read the gateway's answer (e.g. "filter error
 * at 1:19: …"), and fails with it as a `ConnectError` of the matching code, as grpc-web would.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { SubscribeRequest, SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import { frameToResponse } from "./frames";
import { AsyncQueue } from "./queue";
import type { OpenHooks, StreamTransport } from "./types";

/** Thrown when the stream fails or the server ends it; the loop reconnects. */
export class EventStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EventStreamError";
  }
}

function durationParam(duration: { seconds: bigint; nanos: number } | undefined): string | undefined {
  if (!duration) return undefined;
  const millis = Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1_000_000);
  return `${millis}ms`;
}

/** The `/sse` URL of `request` on the gateway at `gatewayUrl` (http(s)). */
export function sseUrl(gatewayUrl: string, request: SubscribeRequest): string {
  const url = new URL(gatewayUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/sse`;
  url.hash = "";
  const params = new URLSearchParams();
  const list = (name: string, values: readonly (string | number)[]) => {
    if (values.length > 0) params.set(name, values.join(","));
  };
  list("topics", request.topics);
  list("symbols", request.symbols);
  list("authors", request.authors);
  list("hashtags", request.hashtags);
  list("services", request.services);
  list("logLevels", request.logLevels);
  if (request.filter) params.set("filter", request.filter);
  if (request.slowClientPolicy) params.set("slowClientPolicy", String(request.slowClientPolicy));
  const interval = durationParam(request.sampleInterval);
  if (interval) params.set("sampleInterval", interval);
  const point = request.startAt?.point;
  if (point?.case === "last") params.set("startLast", durationParam(point.value) ?? "0ms");
  if (point?.case === "earliest" && point.value) params.set("startEarliest", "true");
  if (point?.case === "time") {
    const millis = Number(point.value.seconds) * 1000 + Math.floor(point.value.nanos / 1_000_000);
    params.set("startTime", new Date(millis).toISOString());
  }
  list(
    "resumeFrom",
    request.resumeFrom.map((p) => `${p.topic}:${p.partition}:${p.offset}`),
  );
  url.search = params.toString();
  return url.toString();
}

/** The gRPC code an HTTP refusal of `/sse` stands for. */
export function codeOfStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.InvalidArgument;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 429:
      return Code.ResourceExhausted;
    case 503:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/**
 * Why `url` fails before it opens: asks it once with `fetch` and reads the gateway's answer.
 * A stream that opens after all is closed at once (the reconnect loop tries again).
 */
export async function explainRefusal(url: string, signal: AbortSignal, fetchFn: typeof fetch = fetch): Promise<Error> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  signal.addEventListener("abort", stop, { once: true });
  try {
    const response = await fetchFn(url, { signal: controller.signal, headers: { accept: "text/event-stream" } });
    if (response.ok) return new EventStreamError("event stream closed before it opened");
    const text = (await response.text()).trim();
    return new ConnectError(text || `HTTP ${response.status}`, codeOfStatus(response.status));
  } catch {
    return new EventStreamError("event stream refused or unreachable");
  } finally {
    controller.abort();
    signal.removeEventListener("abort", stop);
  }
}

/** An SSE transport for the gateway at `gatewayUrl` (http(s) URL). */
export function sseTransport(
  gatewayUrl: string,
  makeEventSource: (url: string) => EventSource = (url) => new EventSource(url),
  fetchFn?: typeof fetch,
): StreamTransport {
  return {
    name: "sse",
    open(request: SubscribeRequest, signal: AbortSignal, hooks?: OpenHooks) {
      return openEventSource(sseUrl(gatewayUrl, request), signal, hooks, makeEventSource, fetchFn);
    },
  };
}

async function* openEventSource(
  url: string,
  signal: AbortSignal,
  hooks: OpenHooks | undefined,
  makeEventSource: (url: string) => EventSource,
  fetchFn: typeof fetch | undefined,
): AsyncGenerator<SubscribeResponse> {
  if (signal.aborted) return;
  const queue = new AsyncQueue<SubscribeResponse>();
  const source = makeEventSource(url);
  let opened = false;
  source.onopen = () => {
    opened = true;
    hooks?.onOpen?.();
  };
  source.onmessage = (ev: MessageEvent<unknown>) => {
    queue.push(frameToResponse(typeof ev.data === "string" ? ev.data : ""));
  };
  source.onerror = () => {
    // A refused request (4xx) or a dropped stream: either way this attempt is over.
    source.close();
    if (signal.aborted) queue.end();
    else if (opened) queue.fail(new EventStreamError("event stream closed"));
    else void explainRefusal(url, signal, fetchFn).then((error) => queue.fail(error));
  };
  const onAbort = (): void => {
    queue.end();
    source.close();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    yield* queue;
  } finally {
    signal.removeEventListener("abort", onAbort);
    source.onopen = null;
    source.onmessage = null;
    source.onerror = null;
    source.close();
  }
}
