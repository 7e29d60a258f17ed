import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LogLevel } from "../gen/streamweaver/v1/events_pb";
import {
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../gen/streamweaver/v1/stream_pb";
import { asResponse, logEvent } from "../test/fixtures";
import { ResumeTracker } from "./resume";
import { runSubscription } from "./subscription";
import type { ConnectionStatus, OpenHooks, StreamTransport } from "./types";

/** A transport whose n-th attempt plays script[n]: responses then an optional failure. */
function scripted(script: { responses: SubscribeResponse[]; fail?: string; open?: boolean }[]) {
  const requests: SubscribeRequest[] = [];
  const transport: StreamTransport = {
    name: "ws",
    async *open(request: SubscribeRequest, _signal: AbortSignal, hooks?: OpenHooks) {
      requests.push(request);
      const step = script[requests.length - 1];
      if (!step) throw new Error("no more attempts");
      if (step.open !== false) hooks?.onOpen?.();
      for (const r of step.responses) yield r;
      if (step.fail) throw new Error(step.fail);
    },
  };
  return { transport, requests };
}

describe("runSubscription", () => {
  it("drops the resume positions when a resuming request is refused", async () => {
    const refusal = create(SubscribeResponseSchema, {
      kind: { case: "error", value: { code: "INVALID_ARGUMENT", message: "unknown position" } },
    });
    const { transport, requests } = scripted([
      { responses: [asResponse(logEvent(LogLevel.INFO))], fail: "reset" },
      { responses: [refusal] },
      { responses: [asResponse(logEvent(LogLevel.INFO))] },
    ]);
    const controller = new AbortController();
    let waits = 0;
    await runSubscription({
      transport,
      request: create(SubscribeRequestSchema),
      resume: new ResumeTracker(),
      signal: controller.signal,
      onResponse: () => undefined,
      onStatus: () => undefined,
      wait: async () => {
        if (++waits === 3) controller.abort();
      },
    });
    expect(requests.map((r) => r.resumeFrom.length)).toEqual([0, 1, 0]);
  });

  it("reconnects with backoff, resuming from the last positions seen, and reports status", async () => {
    const e1 = logEvent(LogLevel.INFO);
    const e2 = logEvent(LogLevel.ERROR);
    const { transport, requests } = scripted([
      { responses: [asResponse(e1), asResponse(e2)], fail: "connection reset" },
      { responses: [], fail: "refused", open: false },
      { responses: [], fail: "refused", open: false },
      { responses: [asResponse(logEvent(LogLevel.WARN))] },
    ]);
    const controller = new AbortController();
    const statuses: string[] = [];
    const waits: number[] = [];
    const received: SubscribeResponse[] = [];
    await runSubscription({
      transport,
      request: create(SubscribeRequestSchema, { logLevels: [LogLevel.ERROR, LogLevel.INFO] }),
      resume: new ResumeTracker(),
      signal: controller.signal,
      onResponse: (r) => received.push(r),
      onStatus: (s: ConnectionStatus, detail?: string) => statuses.push(detail ? `${s}:${detail}` : s),
      random: () => 1 - Number.EPSILON,
      wait: async (ms) => {
        waits.push(ms);
        if (waits.length === 4) controller.abort();
      },
    });
    expect(received).toHaveLength(3);
    expect(statuses).toEqual([
      "connecting",
      "connected",
      "disconnected:connection reset",
      "connecting",
      "disconnected:refused",
      "connecting",
      "disconnected:refused",
      "connecting",
      "connected",
      "disconnected:stream ended by the server",
    ]);
    // Backoff grows while failing and starts again after a successful connection.
    expect(waits).toEqual([250, 500, 1000, 250]);
    expect(requests[0]?.resumeFrom).toEqual([]);
    expect(requests[1]?.logLevels).toEqual([LogLevel.ERROR, LogLevel.INFO]);
    expect(requests[1]?.resumeFrom.map((p) => [p.topic, p.partition, p.offset])).toEqual([
      ["server_logs", 0, e2.offset],
    ]);
  });

  it("stops at once when aborted and reports nothing afterwards", async () => {
    const controller = new AbortController();
    const statuses: ConnectionStatus[] = [];
    const transport: StreamTransport = {
      name: "grpc-web",
      async *open(_req, signal) {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
        throw new Error("aborted");
      },
    };
    const run = runSubscription({
      transport,
      request: create(SubscribeRequestSchema),
      resume: new ResumeTracker(),
      signal: controller.signal,
      onResponse: () => undefined,
      onStatus: (s) => statuses.push(s),
    });
    controller.abort();
    await run;
    expect(statuses).toEqual(["connecting"]);
  });
});
