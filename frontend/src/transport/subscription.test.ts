import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LogLevel } from "../gen/streamweaver/v1/events_pb";
import { requestsEqual } from "../test/fixtures";
import {
  HeartbeatSchema,
  SlowClientPolicy,
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../gen/streamweaver/v1/stream_pb";
import { asResponse, logEvent } from "../test/fixtures";
import { ResumeTracker } from "./resume";
import { requestWithResume, runSubscription, silenceLimitMs } from "./subscription";
import type { ConnectionStatus, OpenHooks, StatusReport, StreamTransport } from "./types";

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
    const refusals: (string | undefined)[] = [];
    await runSubscription({
      transport,
      request: create(SubscribeRequestSchema),
      resume: new ResumeTracker(),
      signal: controller.signal,
      onResponse: () => undefined,
      onStatus: (report) => {
        if (report.status === "disconnected") refusals.push(report.refused);
      },
      wait: async () => {
        if (++waits === 3) controller.abort();
      },
    });
    expect(requests.map((r) => r.resumeFrom.length)).toEqual([0, 1, 0]);
    // Only the refusal carries the server's words, for the page to show where the request was made.
    expect(refusals.slice(0, 2)).toEqual([undefined, "unknown position"]);
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
      onStatus: (r: StatusReport) => statuses.push(r.detail ? `${r.status}:${r.detail}:${r.retryInMs}` : r.status),
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
      "disconnected:connection reset:250",
      "connecting",
      "disconnected:refused:500",
      "connecting",
      "disconnected:refused:1000",
      "connecting",
      "connected",
      "disconnected:stream ended by the server:250",
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
      onStatus: (r) => statuses.push(r.status),
    });
    controller.abort();
    await run;
    expect(statuses).toEqual(["connecting"]);
  });

  it("ends a silent attempt as dead after 2 × the heartbeat interval + slack, and resumes", async () => {
    vi.useFakeTimers();
    const attempts: SubscribeRequest[] = [];
    const heartbeat = create(SubscribeResponseSchema, {
      kind: { case: "heartbeat", value: { positions: [{ topic: "server_logs", partition: 2, offset: 41n }] } },
    });
    const transport: StreamTransport = {
      name: "ws",
      async *open(request, signal, hooks) {
        attempts.push(request);
        hooks?.onOpen?.();
        yield heartbeat;
        // Then silence: the connection is open but nothing ever comes (a vanished peer).
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
      },
    };
    const controller = new AbortController();
    const statuses: string[] = [];
    const run = runSubscription({
      transport,
      request: create(SubscribeRequestSchema, { topics: ["server_logs"] }),
      resume: new ResumeTracker(),
      signal: controller.signal,
      silenceLimitMs: silenceLimitMs(2_000, 1_000),
      onResponse: () => undefined,
      onStatus: (r) => statuses.push(r.detail ? `${r.status}: ${r.detail}` : r.status),
      wait: async () => {
        if (attempts.length === 2) controller.abort();
      },
    });
    await vi.advanceTimersByTimeAsync(4_500);
    expect(statuses).toEqual(["connecting", "connected"]);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(statuses.slice(2)).toEqual(["disconnected: no message for 5 s: connection presumed dead", "connecting", "connected"]);
    await vi.advanceTimersByTimeAsync(6_000);
    await run;
    // The heartbeat's positions are where the second attempt resumes from.
    expect(attempts[1]?.resumeFrom.map((p) => [p.topic, p.partition, p.offset])).toEqual([["server_logs", 2, 41n]]);
  });

  it("follows the heartbeat interval the gateway states, unless the limit is fixed", async () => {
    vi.useFakeTimers();
    const heartbeat = create(SubscribeResponseSchema, {
      kind: { case: "heartbeat", value: { interval: { seconds: 1n }, caughtUp: true } },
    });
    const silentAfterHeartbeat = (attempts: number[]): StreamTransport => ({
      name: "ws",
      async *open(_request, signal, hooks) {
        attempts.push(Date.now());
        hooks?.onOpen?.();
        yield heartbeat;
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
      },
    });
    const run = async (fixed: number | undefined): Promise<string[]> => {
      const attempts: number[] = [];
      const controller = new AbortController();
      const details: string[] = [];
      const done = runSubscription({
        transport: silentAfterHeartbeat(attempts),
        request: create(SubscribeRequestSchema),
        resume: new ResumeTracker(),
        signal: controller.signal,
        silenceLimitMs: fixed,
        onResponse: () => undefined,
        onStatus: (r) => {
          if (r.detail) details.push(r.detail);
        },
        wait: async () => controller.abort(),
      });
      // 2 × 1 s + 5 s of slack: dead after 7 s, far sooner than the default's 35 s.
      await vi.advanceTimersByTimeAsync(8_500);
      controller.abort();
      await done;
      return details;
    };
    expect(await run(undefined)).toEqual(["no message for 7 s: connection presumed dead"]);
    expect(await run(silenceLimitMs(15_000))).toEqual([]);
  });

  it("reports every event as replayed until the gateway says the backfill is delivered", async () => {
    const heartbeat = (caughtUp: boolean) =>
      create(SubscribeResponseSchema, { kind: { case: "heartbeat", value: { interval: { seconds: 15n }, caughtUp } } });
    const { transport } = scripted([
      {
        responses: [
          heartbeat(false),
          asResponse(logEvent(LogLevel.INFO)),
          heartbeat(true),
          asResponse(logEvent(LogLevel.INFO)),
          // A heartbeat from a gateway that does not say (no interval) changes nothing.
          create(SubscribeResponseSchema, { kind: { case: "heartbeat", value: {} } }),
          asResponse(logEvent(LogLevel.INFO)),
        ],
      },
    ]);
    const controller = new AbortController();
    const cutoffs: [string | undefined, number][] = [];
    await runSubscription({
      transport,
      request: create(SubscribeRequestSchema),
      resume: new ResumeTracker(),
      signal: controller.signal,
      now: () => 5_000,
      onResponse: (r, at) => cutoffs.push([r.kind.case, at]),
      onStatus: () => undefined,
      wait: async () => controller.abort(),
    });
    expect(cutoffs).toEqual([
      ["heartbeat", Infinity],
      ["event", Infinity],
      ["heartbeat", 5_000],
      ["event", 5_000],
      ["heartbeat", 5_000],
      ["event", 5_000],
    ]);
  });

  it("passes each response on with the time its attempt was opened", async () => {
    const { transport } = scripted([{ responses: [asResponse(logEvent(LogLevel.INFO))] }]);
    const controller = new AbortController();
    const opened: number[] = [];
    let clock = 5_000;
    await runSubscription({
      transport,
      request: create(SubscribeRequestSchema),
      resume: new ResumeTracker(),
      signal: controller.signal,
      now: () => clock++,
      onResponse: (_r, at) => opened.push(at),
      onStatus: () => undefined,
      wait: async () => controller.abort(),
    });
    expect(opened).toEqual([5_000]);
  });
});

describe("runSubscription and start points", () => {
  it("goes on live only when the gateway accepts a start point and fails it before any event", async () => {
    const unavailable = create(SubscribeResponseSchema, {
      kind: { case: "error", value: { code: "UNAVAILABLE", message: "cannot read Kafka for this subscription's backfill" } },
    });
    const { transport, requests } = scripted([
      { responses: [], fail: "connection refused", open: false },
      { responses: [unavailable] },
      { responses: [asResponse(logEvent(LogLevel.INFO))], fail: "reset" },
      { responses: [] },
    ]);
    const controller = new AbortController();
    const details: string[] = [];
    let waits = 0;
    const resume = new ResumeTracker();
    await runSubscription({
      transport,
      request: create(SubscribeRequestSchema, { startAt: { point: { case: "last", value: { seconds: 300n } } } }),
      resume,
      signal: controller.signal,
      onResponse: () => undefined,
      onStatus: (r) => {
        if (r.detail) details.push(r.detail);
      },
      wait: async () => {
        if (++waits === 4) controller.abort();
      },
    });
    // A refused connection says nothing about the start point; a failure after the gateway
    // accepted the request does.
    expect(requests.map((r) => r.startAt?.point.case)).toEqual(["last", "last", undefined, undefined]);
    expect(details[1]).toBe(
      "UNAVAILABLE: cannot read Kafka for this subscription's backfill — continuing with live events only",
    );
    // UNAVAILABLE is not about the positions: they are kept.
    expect(requests[3]?.resumeFrom).toHaveLength(1);
  });
});

describe("requestWithResume", () => {
  it("keeps every field of the wanted subscription and adds the positions", () => {
    const wanted = create(SubscribeRequestSchema, {
      topics: ["stock_trades"],
      symbols: ["AAPL"],
      startAt: { point: { case: "last", value: { seconds: 300n } } },
      slowClientPolicy: SlowClientPolicy.LATEST_PER_KEY,
    });
    const resume = new ResumeTracker();
    resume.observeHeartbeat(create(HeartbeatSchema, { positions: [{ topic: "stock_trades", partition: 0, offset: 9n }] }));
    const attempt = requestWithResume(wanted, resume);
    expect(requestsEqual(attempt, { ...wanted, resumeFrom: resume.positions() })).toBe(true);
    expect(wanted.resumeFrom).toEqual([]);
  });
});

afterEach(() => {
  vi.useRealTimers();
});
