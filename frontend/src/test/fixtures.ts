/** Builders of typed messages for the unit tests. */
import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  EventSchema,
  LogLevel,
  TradeSide,
  type Event,
} from "../gen/streamweaver/v1/events_pb";
import {
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../gen/streamweaver/v1/stream_pb";
import type { Arrival } from "../state/arrival";

let offset = 0n;

export function tradeEvent(symbol: string, price: number, producedMs = 1_000, partition = 0): Event {
  return create(EventSchema, {
    topic: "stock_trades",
    key: symbol,
    partition,
    offset: offset++,
    producedAt: timestampFromMs(producedMs),
    payload: {
      case: "stockTrade",
      value: { tradeId: `t${offset}`, symbol, price, quantity: 10, side: TradeSide.BUY, exchange: "NASDAQ" },
    },
  });
}

export function postEvent(author: string, hashtags: string[], producedMs = 1_000): Event {
  return create(EventSchema, {
    topic: "social_feed",
    key: author,
    partition: 0,
    offset: offset++,
    producedAt: timestampFromMs(producedMs),
    payload: { case: "socialPost", value: { postId: `p${offset}`, author, text: "hello", hashtags, likes: 3 } },
  });
}

export function logEvent(level: LogLevel, producedMs = 1_000, service = "api"): Event {
  return create(EventSchema, {
    topic: "server_logs",
    key: service,
    partition: 0,
    offset: offset++,
    producedAt: timestampFromMs(producedMs),
    payload: { case: "logEntry", value: { logId: `l${offset}`, service, level, message: "m" } },
  });
}

export function asResponse(event: Event): SubscribeResponse {
  return create(SubscribeResponseSchema, { kind: { case: "event", value: event } });
}

/** A payload as the panels receive it (see `state/arrival.ts`). */
export function arrival<T>(
  payload: T,
  at: { offset?: bigint; partition?: number; producedMs?: number; replayed?: boolean; receivedMs?: number } = {},
): Arrival<T> {
  return {
    payload,
    partition: at.partition ?? 0,
    offset: at.offset ?? offset++,
    producedMs: at.producedMs,
    replayed: at.replayed ?? false,
    receivedMs: at.receivedMs ?? 0,
  };
}

/** Whether two requests are the same message (compared in their JSON form). */
export function requestsEqual(a: SubscribeRequest, b: SubscribeRequest): boolean {
  return toJsonString(SubscribeRequestSchema, a) === toJsonString(SubscribeRequestSchema, b);
}
