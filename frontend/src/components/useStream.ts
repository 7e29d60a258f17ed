/**
 * Runs one panel's subscription for as long as the component is mounted and its request and
 * transport stay the same: consumed with `for await` inside an effect (`runSubscription`) and
 * cancelled with an AbortController on cleanup, so a new request or transport replaces the
 * subscription cleanly — resuming from the positions the panel had. `onRefused` hears when the
 * gateway refuses the request itself as invalid (e.g. its filter expression).
 */
import { useEffect, useRef } from "react";
import type { SubscribeRequest } from "../gen/streamweaver/v1/stream_pb";
import type { LiveDashboard } from "../live";
import type { StreamName } from "../state/connection";
import { runSubscription, silenceLimitMs } from "../transport/subscription";
import type { StreamTransport } from "../transport/types";

export function useStream(
  live: LiveDashboard,
  stream: StreamName,
  transport: StreamTransport,
  request: SubscribeRequest,
  /** `?heartbeat=`: a fixed interval instead of the one the gateway states. */
  heartbeatMs: number | undefined,
  onRefused?: (message: string, request: SubscribeRequest) => void,
): void {
  // Read when called, so a new callback does not restart the subscription.
  const refusedRef = useRef(onRefused);
  refusedRef.current = onRefused;
  useEffect(() => {
    const controller = new AbortController();
    void runSubscription({
      transport,
      request,
      resume: live.resume[stream],
      signal: controller.signal,
      silenceLimitMs: heartbeatMs === undefined ? undefined : silenceLimitMs(heartbeatMs),
      onResponse: (response, openedMs) => live.push(stream, response, openedMs),
      onStatus: (report) => {
        if (controller.signal.aborted) return;
        live.status(stream, report);
        if (report.refused !== undefined) refusedRef.current?.(report.refused, request);
      },
    });
    return () => controller.abort();
  }, [live, stream, transport, request, heartbeatMs]);
}
