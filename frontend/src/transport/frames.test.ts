import { create, fromJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LogLevel } from "../gen/streamweaver/v1/events_pb";
import { SubscribeRequestSchema } from "../gen/streamweaver/v1/stream_pb";
import { encodeRequest, frameToResponse, MALFORMED_FRAME_CODE, parseFrame } from "./frames";

describe("WebSocket frames (proto3 JSON)", () => {
  it("parses an event frame, ignoring unknown fields", () => {
    const text = JSON.stringify({
      event: {
        topic: "stock_trades",
        key: "AAPL",
        partition: 2,
        offset: "41",
        producedAt: "2024-05-01T12:00:00.250Z",
        stockTrade: { symbol: "AAPL", price: 189.5, quantity: 10, side: "TRADE_SIDE_SELL" },
        addedLater: true,
      },
    });
    const parsed = parseFrame(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok || parsed.response.kind.case !== "event") throw new Error("not an event");
    const event = parsed.response.kind.value;
    expect(event.offset).toBe(41n);
    expect(event.partition).toBe(2);
    expect(event.payload.case).toBe("stockTrade");
    if (event.payload.case === "stockTrade") expect(event.payload.value.price).toBe(189.5);
    expect(event.producedAt?.nanos).toBe(250_000_000);
  });

  it("parses gap, heartbeat and error frames", () => {
    const gap = parseFrame(
      '{"gap":{"missedEvents":"12","reason":"subscriber fell behind","lastPositions":[{"topic":"server_logs","partition":0,"offset":"99"}]}}',
    );
    expect(gap.ok && gap.response.kind.case === "gap" && gap.response.kind.value.missedEvents).toBe(12n);
    const hb = parseFrame('{"heartbeat":{"serverTime":"2024-05-01T12:00:00Z"}}');
    expect(hb.ok && hb.response.kind.case).toBe("heartbeat");
    const err = parseFrame('{"error":{"code":"INVALID_ARGUMENT","message":"unknown topic \\"x\\""}}');
    expect(err.ok && err.response.kind.case === "error" && err.response.kind.value.code).toBe("INVALID_ARGUMENT");
  });

  it("turns malformed text into a value, never an exception", () => {
    for (const bad of ["", "not json", "[]", "{}", '{"event":{"offset":"abc"}}', '{"event":1}', "null"]) {
      const parsed = parseFrame(bad);
      expect(parsed.ok).toBe(false);
      const response = frameToResponse(bad);
      expect(response.kind.case).toBe("error");
      if (response.kind.case === "error") expect(response.kind.value.code).toBe(MALFORMED_FRAME_CODE);
    }
  });

  it("encodes a request in proto3 JSON the server can read back", () => {
    const req = create(SubscribeRequestSchema, {
      logLevels: [LogLevel.ERROR],
      resumeFrom: [{ topic: "server_logs", partition: 1, offset: 7n }],
    });
    const text = encodeRequest(req);
    expect(JSON.parse(text)).toEqual({
      logLevels: ["LOG_LEVEL_ERROR"],
      resumeFrom: [{ topic: "server_logs", partition: 1, offset: "7" }],
    });
    expect(fromJsonString(SubscribeRequestSchema, text)).toEqual(req);
  });
});
