import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LogLevel } from "../gen/streamweaver/v1/events_pb";
import { SubscribeResponseSchema } from "../gen/streamweaver/v1/stream_pb";
import { asResponse, logEvent, postEvent, tradeEvent } from "../test/fixtures";
import { isReplayed } from "./replay";
import { DashboardStore, ListPace } from "./store";

const GW = "http://gw:8080";

describe("DashboardStore", () => {
  it("routes events to the panels and computes the header figures", () => {
    const s = new DashboardStore({ gatewayUrl: GW, figuresEveryMs: 0 });
    const now = 50_000;
    const opened = 10_000;
    s.ingest("trades", asResponse(tradeEvent("AAPL", 10, now - 40)), opened, now);
    s.ingest("feed", asResponse(postEvent("ann", ["x"], now - 20)), opened, now);
    s.ingest("logs", asResponse(logEvent(LogLevel.ERROR, now - 10)), opened, now);
    s.ingest(
      "logs",
      create(SubscribeResponseSchema, {
        kind: {
          case: "gap",
          value: {
            missedEvents: 7n,
            reason: "subscriber fell behind",
            missed: [{ topic: "server_logs", partition: 1, firstOffset: 10n, lastOffset: 16n }],
          },
        },
      }),
      opened,
      now,
    );
    s.ingest("feed", create(SubscribeResponseSchema, { kind: { case: "error", value: { code: "INVALID_ARGUMENT", message: "bad" } } }), opened, now);
    s.ingest("logs", create(SubscribeResponseSchema, { kind: { case: "heartbeat", value: {} } }), opened, now);
    // Nothing reaches the panels before a flush; the figures that need arrival times are in.
    expect(s.view(now).logsPanel.rows).toHaveLength(0);
    s.flush(now);
    const v = s.view(now);
    expect(v.tradesPanel.rows).toHaveLength(1);
    expect(v.feedPanel.rows).toHaveLength(1);
    expect(v.logsPanel.rows).toHaveLength(1);
    expect(v.received).toEqual({ stock_trades: 1, social_feed: 1, server_logs: 1 });
    expect(v.liveEvents).toBe(3);
    expect(v.replayedEvents).toBe(0);
    expect(v.eps.stock_trades).toBeGreaterThan(0);
    expect(v.latency).toEqual({ p50: 20, p95: 40, samples: 3 });
    expect(v.gaps).toEqual({ count: 1, missedEvents: 7 });
    expect(v.errors).toBe(1);
    expect(v.heartbeats).toBe(1);
    expect(v.notices.map((n) => [n.kind, n.text])).toEqual([
      ["error", "Social feed: INVALID_ARGUMENT: bad"],
      ["gap", "Server logs: 7 events not delivered: subscriber fell behind (server_logs/1 offsets 10–16)"],
    ]);
    expect(v.connections.logs.lastMessageAt).toBe(now);
    expect(v.connections.trades.lastMessageAt).toBe(now);
  });

  it("shows replayed events but leaves them out of rates, latency and the live count", () => {
    const s = new DashboardStore({ gatewayUrl: GW, figuresEveryMs: 0 });
    const opened = 100_000;
    const now = 100_050;
    // A five-minute backfill and a resume: produced before the attempt opened.
    s.ingest("trades", asResponse(tradeEvent("AAPL", 10, opened - 300_000)), opened, now);
    s.ingest("logs", asResponse(logEvent(LogLevel.INFO, opened - 1)), opened, now);
    // Live: produced after.
    s.ingest("logs", asResponse(logEvent(LogLevel.WARN, opened + 20)), opened, now);
    s.flush(now);
    const v = s.view(now);
    expect(v.replayedEvents).toBe(2);
    expect(v.liveEvents).toBe(1);
    expect(v.received).toEqual({ stock_trades: 1, social_feed: 0, server_logs: 2 });
    expect(v.eps.stock_trades).toBe(0);
    expect(v.latency).toEqual({ p50: 30, p95: 30, samples: 1 });
    expect(v.tradesPanel.rows).toHaveLength(1);
    expect(v.logsPanel.rows.map((l) => l.replayed)).toEqual([false, true]);
  });

  it("counts lost connections as errors and tells the connection state", () => {
    const s = new DashboardStore({ gatewayUrl: GW, figuresEveryMs: 0 });
    for (const stream of ["trades", "feed", "logs"] as const) s.setStatus(stream, { status: "connected" }, 0);
    expect(s.view(0).summary.state).toBe("connected");
    s.setStatus("logs", { status: "disconnected", detail: "WebSocket closed (code 1006)", retryInMs: 1_000 }, 5_000);
    const v = s.view(5_000);
    expect(v.errors).toBe(1);
    expect(v.summary).toMatchObject({ state: "reconnecting", down: ["logs"] });
    expect(v.notices[0]?.text).toBe("Server logs: connection lost: WebSocket closed (code 1006)");
    // Retries of the same outage are not new errors.
    s.setStatus("logs", { status: "connecting" }, 6_000);
    s.setStatus("logs", { status: "disconnected", detail: "refused", retryInMs: 2_000 }, 6_010);
    expect(s.view(6_010).errors).toBe(1);
    s.setStatus("logs", { status: "connected" }, 9_000);
    s.setStatus("logs", { status: "disconnected", detail: "again", retryInMs: 2_000 }, 9_500);
    expect(s.view(9_500).errors).toBe(2);
  });

  it("applies what it holds once too much waits for a flush (a hidden tab)", () => {
    const s = new DashboardStore({ gatewayUrl: GW, maxPending: 10 });
    for (let i = 0; i < 25; i++) s.ingest("logs", asResponse(logEvent(LogLevel.INFO, 1)), 0, 5);
    expect(s.view(5).logsPanel.rows).toHaveLength(20);
  });
});

describe("isReplayed", () => {
  it("is true exactly for events produced before the attempt opened", () => {
    expect(isReplayed(999, 1_000)).toBe(true);
    expect(isReplayed(1_000, 1_000)).toBe(false);
    expect(isReplayed(1_500, 1_000)).toBe(false);
    expect(isReplayed(undefined, 1_000)).toBe(false);
  });
});

describe("DashboardStore figures", () => {
  it("recomputes the figures at most once a second, the lists at every view", () => {
    const s = new DashboardStore({ gatewayUrl: GW });
    s.ingest("logs", asResponse(logEvent(LogLevel.INFO, 1_000)), 0, 1_000);
    s.flush(1_000);
    const first = s.view(1_000);
    s.ingest("logs", asResponse(logEvent(LogLevel.INFO, 1_200)), 0, 1_200);
    s.flush(1_250);
    const soon = s.view(1_250);
    expect(soon.logsPanel.rows).toHaveLength(2);
    expect(soon.liveEvents).toBe(1);
    expect(soon.latency).toBe(first.latency);
    expect(s.view(2_000).liveEvents).toBe(2);
  });
});

describe("ListPace", () => {
  const rows = (top: number) => Array.from({ length: 5 }, (_, i) => ({ seq: top - i }));
  it("shows a slow list at every redraw, a flood at most every floodEveryMs", () => {
    const pace = new ListPace<{ seq: number }>(50, 500);
    const a = rows(10);
    expect(pace.rows(a, 0)).toBe(a);
    const b = rows(30); // 20 new rows: a reader can follow
    expect(pace.rows(b, 250)).toBe(b);
    const c = rows(200); // 170 new rows in 250 ms: a flood
    expect(pace.rows(c, 500)).toBe(b);
    expect(pace.rows(c, 750)).toBe(c);
    const d = rows(150); // fewer (a filter narrowed the list): shown at once
    expect(pace.rows(d, 800)).toBe(d);
  });
});

describe("DashboardStore turns", () => {
  it("takes one panel's new rows per view, in turn, and keeps the others' objects", () => {
    const s = new DashboardStore({ gatewayUrl: GW, figuresEveryMs: 60_000 });
    const first = s.view(0);
    s.ingest("logs", asResponse(logEvent(LogLevel.INFO, 1)), 0, 1);
    s.ingest("feed", asResponse(postEvent("ann", [], 1)), 0, 1);
    s.flush(1);
    expect(s.nextUnshown(undefined)).toBe("feed");
    const v1 = s.view(2, "feed");
    expect(v1.feedPanel.rows).toHaveLength(1);
    expect(v1.logsPanel).toBe(first.logsPanel); // not its turn: the same object, no redraw
    expect(v1.tradesPanel).toBe(first.tradesPanel);
    expect(s.nextUnshown("feed")).toBe("logs");
    const v2 = s.view(3, "logs");
    expect(v2.logsPanel.rows).toHaveLength(1);
    expect(v2.feedPanel).toBe(v1.feedPanel);
    expect(s.nextUnshown("logs")).toBeUndefined();
  });
});
