import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../gen/streamweaver/v1/events_pb";
import { GapNoticeSchema, HeartbeatSchema, PositionsResetSchema } from "../gen/streamweaver/v1/stream_pb";
import { ResumeTracker } from "./resume";

const ev = (topic: string, partition: number, offset: bigint) => create(EventSchema, { topic, partition, offset });

describe("ResumeTracker", () => {
  it("keeps the last position seen per (topic, partition)", () => {
    const r = new ResumeTracker();
    r.observeEvent(ev("stock_trades", 0, 5n));
    r.observeEvent(ev("stock_trades", 0, 6n));
    r.observeEvent(ev("stock_trades", 1, 3n));
    r.observeEvent(ev("server_logs", 0, 100n));
    expect(r.positions().map((p) => [p.topic, p.partition, p.offset])).toEqual([
      ["server_logs", 0, 100n],
      ["stock_trades", 0, 6n],
      ["stock_trades", 1, 3n],
    ]);
  });

  it("moves forward on a gap notice, never backward", () => {
    const r = new ResumeTracker();
    r.observeEvent(ev("server_logs", 0, 50n));
    r.observeGap(
      create(GapNoticeSchema, {
        missedEvents: 10n,
        lastPositions: [
          { topic: "server_logs", partition: 0, offset: 60n },
          { topic: "social_feed", partition: 2, offset: 9n },
        ],
      }),
    );
    r.observeGap(create(GapNoticeSchema, { lastPositions: [{ topic: "server_logs", partition: 0, offset: 40n }] }));
    expect(r.positions().map((p) => [p.topic, p.partition, p.offset])).toEqual([
      ["server_logs", 0, 60n],
      ["social_feed", 2, 9n],
    ]);
  });

  it("follows the events when a partition's offsets start again", () => {
    const r = new ResumeTracker();
    r.observeEvent(ev("t", 0, 500n));
    r.observeEvent(ev("t", 0, 2n));
    expect(r.positions()[0]?.offset).toBe(2n);
  });

  it("ignores invalid positions", () => {
    const r = new ResumeTracker();
    r.observeEvent(ev("", 0, 1n));
    r.observeEvent(ev("t", -1, 1n));
    r.observeEvent(ev("t", 0, -1n));
    expect(r.size).toBe(0);
  });
});

describe("ResumeTracker and the gateway's position messages", () => {
  it("moves forward to a heartbeat's positions, including partitions with no event seen", () => {
    const r = new ResumeTracker();
    r.observeEvent(ev("server_logs", 0, 50n));
    r.observeHeartbeat(
      create(HeartbeatSchema, {
        positions: [
          { topic: "server_logs", partition: 0, offset: 900n },
          { topic: "server_logs", partition: 1, offset: 40n },
        ],
      }),
    );
    r.observeHeartbeat(create(HeartbeatSchema, { positions: [{ topic: "server_logs", partition: 0, offset: 10n }] }));
    expect(r.positions().map((p) => [p.partition, p.offset])).toEqual([
      [0, 900n],
      [1, 40n],
    ]);
  });

  it("replaces the positions of the partitions a reset names, even with lower offsets", () => {
    const r = new ResumeTracker();
    r.observeEvent(ev("stock_trades", 0, 500n));
    r.observeEvent(ev("stock_trades", 1, 700n));
    r.observeReset(
      create(PositionsResetSchema, { positions: [{ topic: "stock_trades", partition: 1, offset: 3n }], reason: "recreated" }),
    );
    expect(r.positions().map((p) => [p.partition, p.offset])).toEqual([
      [0, 500n],
      [1, 3n],
    ]);
  });
});
