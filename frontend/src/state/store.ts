/**
 * The whole dashboard state, outside React: the three panels' reducers plus the header figures.
 * It takes batches of SubscribeResponse and produces an immutable `DashboardView`; React only
 * ever sees views (through `useSyncExternalStore`), one per animation frame at most.
 */
import type { LogEntry, SocialPost, StockTrade } from "../gen/streamweaver/v1/events_pb";
import type { SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import { FeedState, type HashtagCount, type PostRow } from "./feed";
import { LogsState, type ErrorRate, type LevelName, type LogRow } from "./logs";
import { LatencyWindow, RateMeter, type LatencySummary } from "./metrics";
import { timestampMs } from "./time";
import { TradesState, type TradeRow } from "./trades";

export const TOPICS = ["stock_trades", "social_feed", "server_logs"] as const;
export type Topic = (typeof TOPICS)[number];

export type PerTopic<T> = Readonly<Record<Topic, T>>;

export interface GapSummary {
  readonly count: number;
  readonly missedEvents: number;
  readonly lastReason: string;
}

export interface ErrorSummary {
  readonly count: number;
  readonly last: string;
}

export interface DashboardView {
  readonly trades: readonly TradeRow[];
  readonly posts: readonly PostRow[];
  readonly hashtags: readonly HashtagCount[];
  readonly logs: readonly LogRow[];
  readonly logLevels: ReadonlySet<LevelName>;
  readonly errorRate: ErrorRate;
  /** Log lines received but excluded by the level filter (in flight before a change). */
  readonly logsFilteredOut: number;
  readonly eps: PerTopic<number>;
  readonly totals: PerTopic<number>;
  readonly totalEvents: number;
  readonly latency: LatencySummary;
  readonly gaps: GapSummary;
  readonly errors: ErrorSummary;
  readonly heartbeats: number;
}

function isTopic(t: string): t is Topic {
  return (TOPICS as readonly string[]).includes(t);
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
  private readonly totals: Record<Topic, number> = { stock_trades: 0, social_feed: 0, server_logs: 0 };
  private totalEvents = 0;
  private readonly latency = new LatencyWindow();
  private gaps: GapSummary = { count: 0, missedEvents: 0, lastReason: "" };
  private errors: ErrorSummary = { count: 0, last: "" };
  private heartbeats = 0;
  private current: DashboardView | undefined;

  /** Folds a batch of responses in, in arrival order. */
  applyBatch(batch: readonly SubscribeResponse[], nowMs: number): void {
    const trades: StockTrade[] = [];
    const posts: SocialPost[] = [];
    const lines: LogEntry[] = [];
    const counts: Record<Topic, number> = { stock_trades: 0, social_feed: 0, server_logs: 0 };
    for (const response of batch) {
      const kind = response.kind;
      switch (kind.case) {
        case "event": {
          const event = kind.value;
          this.totalEvents++;
          if (isTopic(event.topic)) counts[event.topic]++;
          const produced = timestampMs(event.producedAt);
          if (produced !== undefined) this.latency.add(nowMs - produced, nowMs);
          const payload = event.payload;
          if (payload.case === "stockTrade") trades.push(payload.value);
          else if (payload.case === "socialPost") posts.push(payload.value);
          else if (payload.case === "logEntry") lines.push(payload.value);
          break;
        }
        case "gap":
          this.gaps = {
            count: this.gaps.count + 1,
            missedEvents: this.gaps.missedEvents + Number(kind.value.missedEvents),
            lastReason: kind.value.reason,
          };
          break;
        case "error":
          this.errors = {
            count: this.errors.count + 1,
            last: `${kind.value.code}: ${kind.value.message}`,
          };
          break;
        case "heartbeat":
          this.heartbeats++;
          break;
        default:
          break;
      }
    }
    for (const topic of TOPICS) {
      this.totals[topic] += counts[topic];
      this.rates[topic].add(counts[topic], nowMs);
    }
    this.trades.apply(trades);
    this.feed.apply(posts);
    this.logs.apply(lines, nowMs);
    this.current = undefined;
  }

  /** Records a transport-level failure (not a server StreamError) for the header. */
  noteError(message: string): void {
    this.errors = { count: this.errors.count + 1, last: message };
    this.current = undefined;
  }

  setLogLevels(levels: ReadonlySet<LevelName>): void {
    this.logs.setLevels(levels);
    this.current = undefined;
  }

  /** Recomputes the time-dependent figures (rates decay to 0 when nothing arrives). */
  refresh(): void {
    this.current = undefined;
  }

  /** The current view; the same object until something changes. */
  view(nowMs: number): DashboardView {
    this.current ??= {
      trades: this.trades.list(),
      posts: this.feed.list(),
      hashtags: this.feed.top(),
      logs: this.logs.list(),
      logLevels: this.logs.levels(),
      errorRate: this.logs.errorRate(nowMs),
      logsFilteredOut: this.logs.filteredOut,
      eps: {
        stock_trades: this.rates.stock_trades.perSecond(nowMs),
        social_feed: this.rates.social_feed.perSecond(nowMs),
        server_logs: this.rates.server_logs.perSecond(nowMs),
      },
      totals: { ...this.totals },
      totalEvents: this.totalEvents,
      latency: this.latency.summary(nowMs),
      gaps: this.gaps,
      errors: this.errors,
      heartbeats: this.heartbeats,
    };
    return this.current;
  }
}
