/**
 * What each panel subscribes to. One subscription per panel, so that a panel's filter narrows
 * only its own stream at the gateway, changing it restarts only that stream, and each stream
 * has the slow-client policy that suits it. Every narrowing the gateway can do goes into the
 * request — the text search too, as a CEL `filter` that keeps at least what the page's search
 * keeps (the page still applies the search to rows it held before).
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  SlowClientPolicy,
  SubscribeRequestSchema,
  type SubscribeRequest,
} from "./gen/streamweaver/v1/stream_pb";
import { LogLevel } from "./gen/streamweaver/v1/events_pb";
import { levelsForRequest, type LogsFilter } from "./state/logs";
import { celString, literalRegex, searchExpression, type SearchSpec } from "./state/search";

/** How far back the trades board starts, so it is filled the moment the page opens. */
export const TRADES_BACKFILL_MS = 300_000;

/** Level names as the log search sees them, and their numbers. */
const LOG_LEVEL_NAMES: readonly [string, LogLevel][] = [
  ["unspecified", LogLevel.UNSPECIFIED],
  ["debug", LogLevel.DEBUG],
  ["info", LogLevel.INFO],
  ["warn", LogLevel.WARN],
  ["error", LogLevel.ERROR],
];

/**
 * The log search in CEL: a word is in the message, endpoint, service or host (as on the page),
 * in the level's name, or in the status code (shown when not 0).
 */
export const LOG_SEARCH: SearchSpec = {
  operands: ["log_entry.message", "log_entry.endpoint", "log_entry.service", "log_entry.host"],
  extra: (word) => {
    const levels = LOG_LEVEL_NAMES.filter(([name]) => name.includes(word)).map(([, n]) => n);
    const alternatives = levels.length ? [`log_entry.level in [${levels.join(", ")}]`] : [];
    if (/^\d+$/.test(word)) {
      alternatives.push(`(log_entry.status_code != 0 && string(log_entry.status_code).contains(${celString(word)}))`);
    }
    return alternatives;
  },
  maxWords: 4,
};

/** The post search in CEL: a word is in `@author`, the text, or a `#hashtag` (as on the page). */
export const POST_SEARCH: SearchSpec = {
  operands: ['("@" + social_post.author)', "social_post.text"],
  extra: (word) => [`social_post.hashtags.exists(t, ("#" + t).matches(${celString(`(?i)${literalRegex(word)}`)}))`],
  // One loop per word, and the gateway allows four.
  maxWords: 4,
};

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

/**
 * One symbol's one-second bars from the trade-bars service (`trade_bars`), for its chart: the
 * same window as the board (`startAt`), then live. One bar a second is little, so the
 * gateway's default slow-client policy suits it.
 */
export function tradeBarsRequest(symbol: string): SubscribeRequest {
  return create(SubscribeRequestSchema, {
    topics: ["trade_bars"],
    symbols: [symbol],
    startAt: { point: { case: "last", value: durationFromMs(TRADES_BACKFILL_MS) } },
  });
}

/** Social posts, by the given authors only (empty: everyone), with a CEL `filter` (or ""). */
export function feedRequest(authors: readonly string[], filter = ""): SubscribeRequest {
  return create(SubscribeRequestSchema, { topics: ["social_feed"], authors: [...authors], filter });
}

/** Server logs of the selected levels and services, with a CEL `filter` (or ""). */
export function logsRequest(levelsAndServices: LogsFilter, filter = ""): SubscribeRequest {
  return create(SubscribeRequestSchema, {
    topics: ["server_logs"],
    logLevels: levelsForRequest(levelsAndServices.levels),
    services: [...levelsAndServices.services],
    filter,
  });
}

/** The log search as a CEL filter; "" for an empty query. */
export function logSearchFilter(query: string): string {
  return searchExpression(query, LOG_SEARCH) ?? "";
}

/** The post search as a CEL filter; "" for an empty query. */
export function postSearchFilter(query: string): string {
  return searchExpression(query, POST_SEARCH) ?? "";
}
