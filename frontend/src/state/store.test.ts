import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LogLevel } from "../gen/streamweaver/v1/events_pb";
import { SubscribeResponseSchema, type SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import { asResponse, logEvent, postEvent, tradeEvent } from "../test/fixtures";
import { FrameBatcher } from "./batcher";
import { DashboardStore } from "./store";

describe("DashboardStore", () => {
  it("routes events to the panels and computes the header figures", () => {
    const s = new DashboardStore();
    const now = 50_000;
    s.applyBatch(
      [
        asResponse(tradeEvent("AAPL", 10, now - 40)),
        asResponse(postEvent("ann", ["x"], now - 20)),
        asResponse(logEvent(LogLevel.ERROR, now - 10)),
        create(SubscribeResponseSchema, { kind: { case: "gap", value: { missedEvents: 7n, reason: "lagged" } } }),
        create(SubscribeResponseSchema, { kind: { case: "error", value: { code: "INVALID_ARGUMENT", message: "bad" } } }),
        create(SubscribeResponseSchema, { kind: { case: "heartbeat", value: {} } }),
      ],
      now,
    );
    const v = s.view(now);
    expect(v.trades).toHaveLength(1);
    expect(v.posts).toHaveLength(1);
    expect(v.logs).toHaveLength(1);
    expect(v.totals).toEqual({ stock_trades: 1, social_feed: 1, server_logs: 1 });
    expect(v.totalEvents).toBe(3);
    expect(v.eps.stock_trades).toBeGreaterThan(0);
    expect(v.latency).toEqual({ p50: 20, p95: 40, samples: 3 });
    expect(v.gaps).toEqual({ count: 1, missedEvents: 7, lastReason: "lagged" });
    expect(v.errors).toEqual({ count: 1, last: "INVALID_ARGUMENT: bad" });
    expect(v.heartbeats).toBe(1);
    expect(s.view(now)).toBe(v); // same object until something changes
  });
});

describe("FrameBatcher", () => {
  it("flushes once per frame, in order", () => {
    const frames: (() => void)[] = [];
    const flushed: [number[], boolean][] = [];
    const b = new FrameBatcher<number>((batch, render) => flushed.push([batch, render]), (cb) => frames.push(cb));
    for (let i = 0; i < 1000; i++) b.push(i);
    expect(frames).toHaveLength(1);
    expect(flushed).toHaveLength(0);
    frames.shift()?.();
    expect(flushed).toHaveLength(1);
    expect(flushed[0]?.[0]).toHaveLength(1000);
    expect(flushed[0]?.[1]).toBe(true);
    b.push(1);
    expect(frames).toHaveLength(1);
  });

  it("drains without rendering when frames stop coming (hidden tab)", () => {
    const flushed: number[] = [];
    const b = new FrameBatcher<SubscribeResponse>((batch) => flushed.push(batch.length), () => undefined, 100);
    for (let i = 0; i < 1050; i++) b.push(asResponse(tradeEvent("A", 1)));
    expect(flushed).toEqual(Array(10).fill(100));
    expect(b.pending).toBe(50);
  });
});
