/**
 * The WebSocket transport: `ws(s)://<gateway>/ws`, one SubscribeRequest sent as a text frame
 * when the socket opens, then one SubscribeResponse per text frame, all in proto3 JSON.
 */
import type { SubscribeRequest, SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import { webSocketUrl } from "../config";
import {
  BATCH_PROTOCOL,
  batchFrameToResponses,
  encodeRequest,
  frameToResponse,
  malformedFrameResponse,
} from "./frames";
import { AsyncQueue } from "./queue";
import type { OpenHooks, StreamTransport } from "./types";

// WebSocket.CONNECTING / OPEN, spelled out so this module also loads where there is no WebSocket.
const CONNECTING = 0;
const OPEN = 1;

/** Thrown when the socket closes; `code` is the WebSocket close code. */
export class WebSocketClosedError extends Error {
  constructor(readonly code: number, reason: string) {
    super(`WebSocket closed (code ${code}${reason ? `: ${reason}` : ""})`);
    this.name = "WebSocketClosedError";
  }
}

/** A WebSocket transport for the gateway at `gatewayUrl` (http(s) URL). */
export function webSocketTransport(
  gatewayUrl: string,
  makeSocket: (url: string, protocols: string[]) => WebSocket = (url, protocols) =>
    new WebSocket(url, protocols),
): StreamTransport {
  const url = webSocketUrl(gatewayUrl);
  return {
    name: "ws",
    open(request: SubscribeRequest, signal: AbortSignal, hooks?: OpenHooks) {
      return openWebSocket(url, request, signal, hooks, makeSocket);
    },
  };
}

async function* openWebSocket(
  url: string,
  request: SubscribeRequest,
  signal: AbortSignal,
  hooks: OpenHooks | undefined,
  makeSocket: (url: string, protocols: string[]) => WebSocket,
): AsyncGenerator<SubscribeResponse> {
  if (signal.aborted) return;
  const queue = new AsyncQueue<SubscribeResponse>();
  // Ask for batched frames; a gateway that does not offer them answers one response per frame.
  const socket = makeSocket(url, [BATCH_PROTOCOL]);
  socket.onopen = () => {
    socket.send(encodeRequest(request));
    hooks?.onOpen?.();
  };
  socket.onmessage = (ev: MessageEvent<unknown>) => {
    if (typeof ev.data !== "string") {
      queue.push(malformedFrameResponse("binary frame; the gateway sends proto3 JSON text"));
    } else if (socket.protocol === BATCH_PROTOCOL) {
      for (const response of batchFrameToResponses(ev.data)) queue.push(response);
    } else {
      queue.push(frameToResponse(ev.data));
    }
  };
  socket.onclose = (ev: CloseEvent) => {
    if (signal.aborted) queue.end();
    else queue.fail(new WebSocketClosedError(ev.code, ev.reason));
  };
  const onAbort = (): void => {
    queue.end();
    socket.close(1000, "unsubscribed");
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    yield* queue;
  } finally {
    signal.removeEventListener("abort", onAbort);
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    if (socket.readyState === CONNECTING || socket.readyState === OPEN) {
      socket.close(1000, "unsubscribed");
    }
  }
}
