/**
 * What each panel subscribes to. One subscription per panel, so that a panel's filter narrows
 * only its own stream at the gateway, changing it restarts only that stream, and each stream
 * has the slow-client policy that suits it. Every narrowing the gateway can do goes into the
 * request; the rest (the text search) is applied by the page. When `SubscribeRequest.filter`
 * (a CEL expression, issue 8) exists, the text search moves to the gateway with one line per
 * builder: `filter: textFilterExpression("log_entry", LOG_TEXT_FIELDS, query)`.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  SlowClientPolicy,
  SubscribeRequestSchema,
  type SubscribeRequest,
} from "./gen/streamweaver/v1/stream_pb";
import { levelsForRequest, type LogsFilter } from "./state/logs";

/** How far back the trades board starts, so it is filled the moment the page opens. */
export const TRADES_BACKFILL_MS = 300_000;

/** The fields the log search looks in (proto names, for the CEL filter of issue 8). */
export const LOG_TEXT_FIELDS = ["message", "endpoint", "service", "host"] as const;
/** The fields the post search looks in. */
export const POST_TEXT_FIELDS = ["author", "text"] as const;

/**
 * Stock trades: the last five minutes first (`startAt`), then live; when the page falls
 * behind, the gateway keeps only the newest trade per symbol (a board shows the latest price,
 * not every tick). A gateway that ignores either field sends live trades only.
 */
export function tradesRequest(): SubscribeRequest {
  return create(SubscribeRequestSchema, {
    topics: ["stock_trades"],
    startAt: { point: { case: "last", value: durationFromMs(TRADES_BACKFILL_MS) } },
    slowClientPolicy: SlowClientPolicy.LATEST_PER_KEY,
  });
}

/** Social posts, by the given authors only (empty: everyone). */
export function feedRequest(authors: readonly string[]): SubscribeRequest {
  return create(SubscribeRequestSchema, { topics: ["social_feed"], authors: [...authors] });
}

/** Server logs of the selected levels and services. */
export function logsRequest(filter: LogsFilter): SubscribeRequest {
  return create(SubscribeRequestSchema, {
    topics: ["server_logs"],
    logLevels: levelsForRequest(filter.levels),
    services: [...filter.services],
  });
}
