/** Builders of typed messages for the unit tests. */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  EventSchema,
  LogLevel,
  TradeSide,
  type Event,
} from "../gen/streamweaver/v1/events_pb";
import { SubscribeResponseSchema, type SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";

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
