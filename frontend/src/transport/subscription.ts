/**
 * The reconnect loop shared by both transports: open, pump responses out, and when the stream
 * fails, ends, or falls silent, report `disconnected` (with the delay before the next attempt),
 * wait (exponential backoff with jitter) and open again, asking to resume from the last
 * positions seen. Runs until its signal aborts.
 *
 * Silence is failure: the gateway sends a heartbeat whenever it has sent nothing for its
 * heartbeat interval, so an attempt that receives no message at all for twice that interval
 * plus some slack is on a dead connection (a peer that vanished without closing it, a proxy
 * holding it open) and is ended and resumed like any other failure. The interval is the one the
 * gateway states in its heartbeats (it sends one as soon as a subscription starts), unless the
 * caller fixes the limit.
 *
 * The gateway's heartbeats also say whether the subscription has caught up: until one says so,
 * a resume's or start point's backfill is still being delivered, and every event is reported as
 * replayed (see `replay.ts`).
 */
import { clone } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { ConnectError, Code } from "@connectrpc/connect";
import {
  SubscribeRequestSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../gen/streamweaver/v1/stream_pb";
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffOptions } from "./backoff";
import { MALFORMED_FRAME_CODE } from "./frames";
import type { ResumeTracker } from "./resume";
import type { StatusReport, StreamTransport } from "./types";

/** The gateway's default `--heartbeat`. */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** How long without any message means a dead connection: 2 × the heartbeat interval + slack. */
export function silenceLimitMs(heartbeatMs: number, slackMs = 5_000): number {
  return 2 * heartbeatMs + slackMs;
}

export interface SubscriptionOptions {
  transport: StreamTransport;
  /** The subscription wanted, without resume positions (they are added per attempt). */
  request: SubscribeRequest;
  resume: ResumeTracker;
  signal: AbortSignal;
  /**
   * Each response, with the time before which its events count as replayed (see `replay.ts`):
   * when the attempt that delivered it was opened, or `Infinity` while the gateway says that
   * attempt's backfill is still being delivered.
   */
  onResponse: (response: SubscribeResponse, openedMs: number) => void;
  onStatus: (report: StatusReport) => void;
  /**
   * No message for this long ends the attempt. Default: `silenceLimitMs` of the interval the
   * gateway states in its heartbeats (`DEFAULT_HEARTBEAT_MS` until the first).
   */
  silenceLimitMs?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  wait?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
}

/**
 * The request of one attempt: the wanted subscription (every field) plus where to resume;
 * without its start point once the gateway could not serve it (`liveOnly`).
 */
export function requestWithResume(
  request: SubscribeRequest,
  resume: ResumeTracker,
  liveOnly = false,
): SubscribeRequest {
  const attempt = clone(SubscribeRequestSchema, request);
  attempt.resumeFrom = resume.positions();
  if (liveOnly) attempt.startAt = undefined;
  return attempt;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Refusals that may be about the resume positions (e.g. from before a gateway reset). */
const REFUSED_CODES = new Set(["INVALID_ARGUMENT", "OUT_OF_RANGE", "FAILED_PRECONDITION"]);

/** Thrown to end an attempt the server refused with a StreamError frame (WebSocket). */
class RefusedError extends Error {
  constructor(
    readonly code: string,
    readonly serverMessage: string,
  ) {
    super(`${code}: ${serverMessage}`);
  }
}

/** The server's own words about a failure, without the code. */
function serverMessage(err: unknown): string {
  if (err instanceof RefusedError) return err.serverMessage;
  if (err instanceof ConnectError) return err.rawMessage;
  return describe(err);
}

/** The gRPC status name of a failure, e.g. "INVALID_ARGUMENT"; "" when it has none. */
function statusName(err: unknown): string {
  if (err instanceof RefusedError) return err.code;
  if (err instanceof ConnectError) return Code[err.code].replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c).toUpperCase();
  return "";
}

/** Runs the subscription until `signal` aborts; never rejects. */
export async function runSubscription(options: SubscriptionOptions): Promise<void> {
  const { transport, request, resume, signal, onResponse, onStatus } = options;
  const wait = options.wait ?? sleep;
  const now = options.now ?? Date.now;
  let silenceLimit = options.silenceLimitMs ?? silenceLimitMs(DEFAULT_HEARTBEAT_MS);
  let attempt = 0;
  // Once the gateway accepted a request with a start point and then failed it before any event
  // (it could not read that far back), the subscription goes on live only, rather than never.
  let liveOnly = false;
  while (!signal.aborted) {
    onStatus({ status: "connecting" });
    let opened = false;
    const markOpen = (): void => {
      if (opened || signal.aborted) return;
      opened = true;
      attempt = 0;
      onStatus({ status: "connected" });
    };
    // One controller per attempt, so an attempt can be ended without ending the subscription.
    const attemptController = new AbortController();
    const stopAttempt = (): void => attemptController.abort();
    signal.addEventListener("abort", stopAttempt, { once: true });
    const openedMs = now();
    let lastMessageMs = openedMs;
    let silent = false;
    const watchdog = setInterval(
      () => {
        if (now() - lastMessageMs <= silenceLimit) return;
        silent = true;
        attemptController.abort();
      },
      Math.min(1_000, Math.max(10, silenceLimit / 4)),
    );
    const resuming = resume.size > 0;
    // The gateway said this attempt's backfill is still being delivered.
    let backfilling = false;
    let events = 0;
    let detail = "stream ended by the server";
    let refused: string | undefined;
    try {
      const responses = transport.open(requestWithResume(request, resume, liveOnly), attemptController.signal, {
        onOpen: markOpen,
      });
      for await (const response of responses) {
        lastMessageMs = now();
        markOpen();
        const kind = response.kind;
        switch (kind.case) {
          case "event":
            events++;
            resume.observeEvent(kind.value);
            break;
          case "gap":
            resume.observeGap(kind.value);
            break;
          case "heartbeat":
            resume.observeHeartbeat(kind.value);
            // A gateway that states its interval also says whether the backfill is done.
            if (kind.value.interval) {
              backfilling = !kind.value.caughtUp;
              const intervalMs = durationMs(kind.value.interval);
              if (options.silenceLimitMs === undefined && intervalMs > 0) silenceLimit = silenceLimitMs(intervalMs);
            }
            break;
          case "reset":
            resume.observeReset(kind.value);
            break;
          default:
            break;
        }
        onResponse(response, backfilling ? Number.POSITIVE_INFINITY : openedMs);
        if (kind.case === "error" && kind.value.code !== MALFORMED_FRAME_CODE && events === 0) {
          // The server refused the subscription and keeps the socket open: start again.
          throw new RefusedError(kind.value.code, kind.value.message);
        }
      }
    } catch (err) {
      detail = describe(err);
      if (statusName(err) === "INVALID_ARGUMENT") refused = serverMessage(err);
      // If a request with resume positions was refused before any event, the positions may be
      // the reason (history reset): the next attempt subscribes from live instead.
      if (REFUSED_CODES.has(statusName(err)) && resuming && events === 0) resume.clear();
      if (opened && events === 0 && request.startAt !== undefined && !liveOnly) {
        liveOnly = true;
        detail = `${detail} — continuing with live events only`;
      }
    } finally {
      clearInterval(watchdog);
      signal.removeEventListener("abort", stopAttempt);
      attemptController.abort();
    }
    if (signal.aborted) return;
    if (silent) detail = `no message for ${Math.round(silenceLimit / 1000)} s: connection presumed dead`;
    const delay = backoffDelay(attempt, options.backoff ?? DEFAULT_BACKOFF, options.random);
    onStatus({ status: "disconnected", detail, retryInMs: delay, ...(refused === undefined ? {} : { refused }) });
    await wait(delay, signal);
    attempt++;
  }
}
