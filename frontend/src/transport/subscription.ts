/**
 * The reconnect loop shared by both transports: open, pump responses out, and when the stream
 * fails or ends, report `disconnected`, wait (exponential backoff with jitter) and open again,
 * asking to resume from the last positions seen. Runs until its signal aborts.
 */
import { create } from "@bufbuild/protobuf";
import {
  SubscribeRequestSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../gen/streamweaver/v1/stream_pb";
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffOptions } from "./backoff";
import { ConnectError, Code } from "@connectrpc/connect";
import { MALFORMED_FRAME_CODE } from "./frames";
import type { ResumeTracker } from "./resume";
import type { ConnectionStatus, StreamTransport } from "./types";

export interface SubscriptionOptions {
  transport: StreamTransport;
  /** The subscription wanted, without resume positions (they are added per attempt). */
  request: SubscribeRequest;
  resume: ResumeTracker;
  signal: AbortSignal;
  onResponse: (response: SubscribeResponse) => void;
  onStatus: (status: ConnectionStatus, detail?: string) => void;
  backoff?: BackoffOptions;
  random?: () => number;
  wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** The request of one attempt: the wanted subscription plus where to resume. */
export function requestWithResume(request: SubscribeRequest, resume: ResumeTracker): SubscribeRequest {
  return create(SubscribeRequestSchema, {
    topics: request.topics,
    symbols: request.symbols,
    authors: request.authors,
    hashtags: request.hashtags,
    logLevels: request.logLevels,
    services: request.services,
    resumeFrom: resume.positions(),
  });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Refusals that may be about the resume positions (e.g. from before a gateway reset). */
const REFUSED_CODES = new Set([Code.InvalidArgument, Code.OutOfRange, Code.FailedPrecondition]);

/** Thrown to end an attempt the server refused with a StreamError frame (WebSocket). */
class RefusedError extends Error {}

/** Runs the subscription until `signal` aborts; never rejects. */
export async function runSubscription(options: SubscriptionOptions): Promise<void> {
  const { transport, request, resume, signal, onResponse, onStatus } = options;
  const wait = options.wait ?? sleep;
  let attempt = 0;
  while (!signal.aborted) {
    onStatus("connecting");
    let opened = false;
    const markOpen = (): void => {
      if (opened || signal.aborted) return;
      opened = true;
      attempt = 0;
      onStatus("connected");
    };
    // One controller per attempt, so an attempt can be ended without ending the subscription.
    const attemptController = new AbortController();
    const stopAttempt = (): void => attemptController.abort();
    signal.addEventListener("abort", stopAttempt, { once: true });
    const resuming = resume.size > 0;
    let events = 0;
    let detail = "stream ended by the server";
    try {
      const responses = transport.open(requestWithResume(request, resume), attemptController.signal, {
        onOpen: markOpen,
      });
      for await (const response of responses) {
        markOpen();
        const kind = response.kind;
        if (kind.case === "event") {
          events++;
          resume.observeEvent(kind.value);
        } else if (kind.case === "gap") resume.observeGap(kind.value);
        onResponse(response);
        if (kind.case === "error" && kind.value.code !== MALFORMED_FRAME_CODE && events === 0) {
          // The server refused the subscription and keeps the socket open: start again.
          throw new RefusedError(`${kind.value.code}: ${kind.value.message}`);
        }
      }
    } catch (err) {
      detail = describe(err);
      const refused =
        err instanceof RefusedError || (err instanceof ConnectError && REFUSED_CODES.has(err.code));
      // If a request with resume positions was refused before any event, the positions may be
      // the reason (history reset): the next attempt subscribes from live instead.
      if (refused && resuming && events === 0) resume.clear();
    } finally {
      signal.removeEventListener("abort", stopAttempt);
      attemptController.abort();
    }
    if (signal.aborted) return;
    onStatus("disconnected", detail);
    await wait(backoffDelay(attempt, options.backoff ?? DEFAULT_BACKOFF, options.random), signal);
    attempt++;
  }
}
