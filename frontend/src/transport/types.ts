/**
 * The one abstraction both browser transports implement, so that reconnecting, resuming and
 * status reporting are written once (in `subscription.ts`) rather than per transport.
 */
import type { SubscribeRequest, SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import type { TransportName } from "../config";

/** One subscription's transport state. */
export type ConnectionStatus = "connecting" | "connected" | "disconnected";

/** What the reconnect loop reports when a subscription's state changes. */
export interface StatusReport {
  readonly status: ConnectionStatus;
  /** Why it is disconnected, for a person. */
  readonly detail?: string;
  /** With `disconnected`: how long until the next attempt. */
  readonly retryInMs?: number;
  /**
   * With `disconnected`: the server's words when it refused the request itself as invalid
   * (`INVALID_ARGUMENT`, e.g. a filter expression it cannot check), so the page can say so
   * where the request was made.
   */
  readonly refused?: string;
}

/** Callbacks a transport makes while a stream is being set up. */
export interface OpenHooks {
  /** The server accepted the subscription (socket open / response headers received). */
  onOpen?: () => void;
}

/**
 * A way to receive a subscription: given a request and an abort signal, an async iterable of
 * responses. The iterable ends when the server ends the stream and throws when the connection
 * fails; aborting the signal closes the connection and ends the iteration.
 */
export interface StreamTransport {
  readonly name: TransportName;
  open(
    request: SubscribeRequest,
    signal: AbortSignal,
    hooks?: OpenHooks,
  ): AsyncIterable<SubscribeResponse>;
}
