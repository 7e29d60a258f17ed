/**
 * The whole dashboard state, outside React: the three panels' reducers, the header figures,
 * the connection of each subscription, and the stream notices (gaps, errors, resets, lost
 * connections). Responses are taken one at a time as they arrive (`ingest`: cheap — the live
 * or replayed decision, rates and latency, which need the arrival time) and folded into the
 * panels in batches (`flush`), a few times a second; React only ever sees immutable
 * `DashboardView`s.
 */
import type { Event, LogEntry, SocialPost, StockTrade } from "../gen/streamweaver/v1/events_pb";
import type { GapNotice, SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import type { StatusReport } from "../transport/types";
import type { Arrival } from "./arrival";
import {
  INITIAL_CONNECTION,
  isDown,
  reduceConnection,
  STREAM_LABELS,
  STREAMS,
  summarize,
  type ConnectionSummary,
  type StreamConnection,
  type StreamName,
} from "./connection";
import { FeedState, type HashtagCount, type PostRow } from "./feed";
import { LogsState, type ErrorRate, type LogRow, type LogsFilter } from "./logs";
import { LatencyWindow, RateMeter, type LatencySummary } from "./metrics";
import { isReplayed } from "./replay";
import { timestampMs } from "./time";
import { TradesState, type PriceBar, type TradeRow } from "./trades";

export const TOPICS = ["stock_trades", "social_feed", "server_logs"] as const;
export type Topic = (typeof TOPICS)[number];

export type PerTopic<T> = Readonly<Record<Topic, T>>;

/** The subscription that carries each topic. */
export const STREAM_OF_TOPIC: Record<Topic, StreamName> = {
  stock_trades: "trades",
  social_feed: "feed",
  server_logs: "logs",
};

export type NoticeKind = "gap" | "error" | "reset" | "connection";

/** Something about the stream itself that a person may want to read later. */
export interface Notice {
  readonly seq: number;
  readonly timeMs: number;
  readonly stream: StreamName;
  readonly kind: NoticeKind;
  readonly text: string;
}

const MAX_NOTICES = 50;

/** The figures of the header and the panel headings. */
export interface Figures {
  readonly errorRate: ErrorRate;
  /** Live events per second per topic (replayed events are not counted). */
  readonly eps: PerTopic<number>;
  /** Every event received per topic, live or replayed. */
  readonly received: PerTopic<number>;
  readonly liveEvents: number;
  readonly replayedEvents: number;
  /** Producer → this page, over live events only. */
  readonly latency: LatencySummary;
  readonly gaps: { readonly count: number; readonly missedEvents: number };
  /** Server errors and outages (the first failure of each). */
  readonly errors: number;
}

/** What the trades panel shows; the same object until something in it changes. */
export interface TradesPanelView {
  readonly rows: readonly TradeRow[];
  /** When the trades window starts (the earliest open), for "change from the open". */
  readonly windowStartMs: number | undefined;
  /** One-second bars of a symbol, for the chart. */
  readonly bars: (symbol: string) => readonly PriceBar[];
  readonly eps: number;
  /** Its subscription is down: dim it, show "–". */
  readonly stale: boolean;
}

/** What the social feed panel shows; the same object until something in it changes. */
export interface FeedPanelView {
  readonly rows: readonly PostRow[];
  readonly oldestSeq: number | undefined;
  readonly hashtags: readonly HashtagCount[];
  /** Posts received but excluded by the author filter (in flight before a change). */
  readonly filteredOut: number;
  readonly eps: number;
  readonly stale: boolean;
}

/** What the server logs panel shows; the same object until something in it changes. */
export interface LogsPanelView {
  readonly rows: readonly LogRow[];
  readonly oldestSeq: number | undefined;
  readonly errorRate: ErrorRate;
  /** Log lines received but excluded by the filters (in flight before a change). */
  readonly filteredOut: number;
  readonly eps: number;
  readonly stale: boolean;
}

export interface DashboardView extends Figures {
  readonly nowMs: number;
  readonly tradesPanel: TradesPanelView;
  readonly feedPanel: FeedPanelView;
  readonly logsPanel: LogsPanelView;
  readonly notices: readonly Notice[];
  readonly heartbeats: number;
  readonly connections: Readonly<Record<StreamName, StreamConnection>>;
  readonly summary: ConnectionSummary;
}

/** `prev` when `next` holds the same values (shallowly), so an unchanged panel is not redrawn. */
function unlessSame<T extends object>(prev: T | undefined, next: T): T {
  if (!prev) return next;
  for (const key of Object.keys(next) as (keyof T)[]) if (prev[key] !== next[key]) return next;
  return prev;
}

function isTopic(t: string): t is Topic {
  return (TOPICS as readonly string[]).includes(t);
}

function describeGap(gap: GapNotice): string {
  const ranges = gap.missed
    .map((r) => `${r.topic}/${r.partition} offsets ${r.firstOffset}–${r.lastOffset}`)
    .join(", ");
  const what = `${gap.missedEvents} events not delivered${gap.reason ? `: ${gap.reason}` : ""}`;
  return ranges ? `${what} (${ranges})` : what;
}

export interface StoreOptions {
  /** The gateway, named in the connection sentences. */
  gatewayUrl: string;
  /** Arrivals held before a flush is forced (a hidden tab gets few timers). */
  maxPending?: number;
  /** How often the figures are recomputed (default 1 s). */
  figuresEveryMs?: number;
}

/**
 * How often a live list's rows change on screen. A list that gains more rows between two
 * redraws than a screen holds is a flood no eye can follow (it is read paused): it changes at
 * most every `floodEveryMs` (once a second), which cuts the page's layout work at a thousand
 * events a second to a quarter. A list that moves slower changes at every redraw.
 */
export class ListPace<T extends { readonly seq: number }> {
  private shown: readonly T[] | undefined;
  private shownAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly floodRows = 50,
    private readonly floodEveryMs = 1_000,
  ) {}

  rows(current: readonly T[], nowMs: number): readonly T[] {
    const shown = this.shown;
    if (shown && current !== shown && nowMs - this.shownAt < this.floodEveryMs) {
      const gained = (current[0]?.seq ?? 0) - (shown[0]?.seq ?? 0);
      if (gained > this.floodRows) return shown;
    }
    if (current !== shown) {
      this.shown = current;
      this.shownAt = nowMs;
    }
    return current;
  }
}

export class DashboardStore {
  private readonly trades = new TradesState();
  private readonly feed = new FeedState();
  private readonly logs = new LogsState();
  private readonly rates: Record<Topic, RateMeter> = {
    stock_trades: new RateMeter(),
    social_feed: new RateMeter(),
    server_logs: new RateMeter(),
  };
  private readonly received: Record<Topic, number> = { stock_trades: 0, social_feed: 0, server_logs: 0 };
  private liveEvents = 0;
  private replayedEvents = 0;
  private readonly latency = new LatencyWindow();
  private gaps = { count: 0, missedEvents: 0 };
  private errors = 0;
  private notices: readonly Notice[] = [];
  private noticeSeq = 0;
  private heartbeats = 0;
  private connections: Record<StreamName, StreamConnection> = {
    trades: INITIAL_CONNECTION,
    feed: INITIAL_CONNECTION,
    logs: INITIAL_CONNECTION,
  };
  private readonly lastMessageAt: Record<StreamName, number | undefined> = {
    trades: undefined,
    feed: undefined,
    logs: undefined,
  };
  private pendingTrades: Arrival<StockTrade>[] = [];
  private pendingPosts: Arrival<SocialPost>[] = [];
  private pendingLines: Arrival<LogEntry>[] = [];
  private readonly maxPending: number;
  private readonly figuresEveryMs: number;
  private readonly postsPace = new ListPace<PostRow>();
  private readonly logsPace = new ListPace<LogRow>();
  /** Panels whose rows changed since they were last drawn. */
  private readonly unshown = new Set<StreamName>();
  private panels: { trades?: TradesPanelView; feed?: FeedPanelView; logs?: LogsPanelView } = {};
  private readonly bars = (symbol: string): readonly PriceBar[] => this.trades.bars(symbol);
  private figuresCache: { at: number; figures: Figures } | undefined;

  constructor(private readonly options: StoreOptions) {
    this.maxPending = options.maxPending ?? 20_000;
    this.figuresEveryMs = options.figuresEveryMs ?? 1_000;
  }

  /** Takes one response of `stream`, delivered by an attempt opened at `openedMs`. */
  ingest(stream: StreamName, response: SubscribeResponse, openedMs: number, nowMs: number): void {
    this.lastMessageAt[stream] = nowMs;
    const kind = response.kind;
    switch (kind.case) {
      case "event":
        this.ingestEvent(kind.value, openedMs, nowMs);
        break;
      case "gap":
        this.gaps = {
          count: this.gaps.count + 1,
          missedEvents: this.gaps.missedEvents + Number(kind.value.missedEvents),
        };
        this.notice(stream, "gap", describeGap(kind.value), nowMs);
        break;
      case "error":
        this.errors++;
        this.notice(stream, "error", `${kind.value.code}: ${kind.value.message}`, nowMs);
        break;
      case "reset":
        this.notice(stream, "reset", `positions reset: ${kind.value.reason || "offsets started again"}`, nowMs);
        break;
      case "heartbeat":
        this.heartbeats++;
        break;
      default:
        break;
    }
    if (this.pendingTrades.length + this.pendingPosts.length + this.pendingLines.length >= this.maxPending) {
      this.flush(nowMs);
    }
  }

  /**
   * A subscription's state changed. The first failure of an outage (a lost connection, or the
   * first refused attempt) is an error and a notice; the retries that follow are not.
   */
  setStatus(stream: StreamName, report: StatusReport, nowMs: number): void {
    const prev = this.connections[stream];
    this.connections = { ...this.connections, [stream]: reduceConnection(prev, report, nowMs) };
    if (report.status === "disconnected" && prev.failures === 0) {
      this.errors++;
      const what = prev.everConnected ? "connection lost" : "cannot connect";
      this.notice(stream, "connection", `${what}: ${report.detail ?? "no reason given"}`, nowMs);
    }
  }

  /** Folds the arrivals taken since the last flush into the panels. */
  flush(nowMs: number): void {
    if (this.pendingTrades.length > 0) {
      this.trades.apply(this.pendingTrades);
      this.pendingTrades = [];
      this.unshown.add("trades");
    }
    if (this.pendingPosts.length > 0) {
      this.feed.apply(this.pendingPosts);
      this.pendingPosts = [];
      this.unshown.add("feed");
    }
    if (this.pendingLines.length > 0) {
      this.logs.apply(this.pendingLines, nowMs);
      this.pendingLines = [];
      this.unshown.add("logs");
    }
  }

  setLogsFilter(filter: LogsFilter, nowMs: number): void {
    this.flush(nowMs);
    this.logs.setFilter(filter);
    this.unshown.add("logs");
  }

  setAuthors(authors: readonly string[], nowMs: number): void {
    this.flush(nowMs);
    this.feed.setAuthors(authors);
    this.unshown.add("feed");
  }

  /** The panel whose rows changed and are not drawn yet, taking turns from `after`. */
  nextUnshown(after: StreamName | undefined): StreamName | undefined {
    const start = after === undefined ? 0 : STREAMS.indexOf(after) + 1;
    for (let i = 0; i < STREAMS.length; i++) {
      const s = STREAMS[(start + i) % STREAMS.length] as StreamName;
      if (this.unshown.has(s)) return s;
    }
    return undefined;
  }

  /**
   * A fresh view at `nowMs`. Only the rows of `refresh` (one panel, or all) are taken anew: the
   * page redraws one panel per turn, so no single frame lays out all three. A panel whose
   * values did not change keeps its object, and React leaves it alone.
   */
  view(nowMs: number, refresh: StreamName | "all" = "all"): DashboardView {
    const connections: Record<StreamName, StreamConnection> = { ...this.connections };
    for (const s of STREAMS) connections[s] = { ...connections[s], lastMessageAt: this.lastMessageAt[s] };
    const figures = this.figures(nowMs);
    const takes = (s: StreamName): boolean => {
      const yes = refresh === "all" || refresh === s;
      if (yes) this.unshown.delete(s);
      return yes;
    };
    const prev = this.panels;
    // A panel not taking its turn keeps what its rows say; its figures and state still move.
    const tradeRows =
      takes("trades") || !prev.trades
        ? { rows: this.trades.list(), windowStartMs: this.trades.windowStartMs() }
        : { rows: prev.trades.rows, windowStartMs: prev.trades.windowStartMs };
    const trades = unlessSame(prev.trades, {
      ...tradeRows,
      bars: this.bars,
      eps: figures.eps.stock_trades,
      stale: isDown(connections.trades, nowMs),
    });
    const postRows =
      takes("feed") || !prev.feed
        ? {
            rows: this.postsPace.rows(this.feed.list(), nowMs),
            oldestSeq: this.feed.oldestSeq(),
            hashtags: this.feed.top(),
            filteredOut: this.feed.filteredOut,
          }
        : { rows: prev.feed.rows, oldestSeq: prev.feed.oldestSeq, hashtags: prev.feed.hashtags, filteredOut: prev.feed.filteredOut };
    const feed = unlessSame(prev.feed, {
      ...postRows,
      eps: figures.eps.social_feed,
      stale: isDown(connections.feed, nowMs),
    });
    const lineRows =
      takes("logs") || !prev.logs
        ? {
            rows: this.logsPace.rows(this.logs.list(), nowMs),
            oldestSeq: this.logs.oldestSeq(),
            filteredOut: this.logs.filteredOut,
          }
        : { rows: prev.logs.rows, oldestSeq: prev.logs.oldestSeq, filteredOut: prev.logs.filteredOut };
    const logs = unlessSame(prev.logs, {
      ...lineRows,
      errorRate: figures.errorRate,
      eps: figures.eps.server_logs,
      stale: isDown(connections.logs, nowMs),
    });
    this.panels = { trades, feed, logs };
    return {
      nowMs,
      tradesPanel: trades,
      feedPanel: feed,
      logsPanel: logs,
      ...figures,
      notices: this.notices,
      heartbeats: this.heartbeats,
      connections,
      summary: summarize(connections, nowMs, this.options.gatewayUrl),
    };
  }

  /**
   * The figures, recomputed at most every `figuresEveryMs`: a rate or a percentile that changes
   * four times a second cannot be read, and an unchanged figure costs the page no layout.
   */
  private figures(nowMs: number): Figures {
    if (this.figuresCache && nowMs - this.figuresCache.at < this.figuresEveryMs) return this.figuresCache.figures;
    const figures: Figures = {
      errorRate: this.logs.errorRate(nowMs),
      eps: {
        stock_trades: this.rates.stock_trades.perSecond(nowMs),
        social_feed: this.rates.social_feed.perSecond(nowMs),
        server_logs: this.rates.server_logs.perSecond(nowMs),
      },
      received: { ...this.received },
      liveEvents: this.liveEvents,
      replayedEvents: this.replayedEvents,
      latency: this.latency.summary(nowMs),
      gaps: this.gaps,
      errors: this.errors,
    };
    this.figuresCache = { at: nowMs, figures };
    return figures;
  }

  private ingestEvent(event: Event, openedMs: number, nowMs: number): void {
    const producedMs = timestampMs(event.producedAt);
    const replayed = isReplayed(producedMs, openedMs);
    const topic = isTopic(event.topic) ? event.topic : undefined;
    if (topic) this.received[topic]++;
    if (replayed) {
      this.replayedEvents++;
    } else {
      this.liveEvents++;
      if (topic) this.rates[topic].add(1, nowMs);
      if (producedMs !== undefined) this.latency.add(nowMs - producedMs, nowMs);
    }
    const where = { partition: event.partition, offset: event.offset, producedMs, replayed, receivedMs: nowMs };
    const payload = event.payload;
    if (payload.case === "stockTrade") this.pendingTrades.push({ ...where, payload: payload.value });
    else if (payload.case === "socialPost") this.pendingPosts.push({ ...where, payload: payload.value });
    else if (payload.case === "logEntry") this.pendingLines.push({ ...where, payload: payload.value });
  }

  private notice(stream: StreamName, kind: NoticeKind, text: string, nowMs: number): void {
    const entry: Notice = { seq: ++this.noticeSeq, timeMs: nowMs, stream, kind, text: `${STREAM_LABELS[stream]}: ${text}` };
    this.notices = [entry, ...this.notices].slice(0, MAX_NOTICES);
  }
}
