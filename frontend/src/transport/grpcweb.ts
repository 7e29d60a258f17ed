/**
 * The grpc-web transport: `StreamService.Subscribe` over HTTP/1.1 or HTTP/2 via `fetch`.
 * The Connect client is made once, at module scope, for the configured gateway.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { StreamService, type SubscribeRequest } from "../gen/streamweaver/v1/stream_pb";
import { config } from "../config";
import type { OpenHooks, StreamTransport } from "./types";

const transport = createGrpcWebTransport({ baseUrl: config.gatewayUrl });

/** The one StreamService client of this page. */
export const streamClient = createClient(StreamService, transport);

export const grpcWebTransport: StreamTransport = {
  name: "grpc-web",
  open(request: SubscribeRequest, signal: AbortSignal, hooks?: OpenHooks) {
    return streamClient.subscribe(request, {
      signal,
      onHeader: () => hooks?.onOpen?.(),
    });
  },
};
