/**
 * The server-log tail: the newest `maxLines` lines that pass the filters (levels and services,
 * both also applied by the gateway), newest first, and the error rate: the share of ERROR lines
 * among the live lines received in the last `rateWindowMs`.
 */
import { LogLevel, type LogEntry } from "../gen/streamweaver/v1/events_pb";
import type { Arrival } from "./arrival";
import { Ring } from "./ring";
import { timestampMs } from "./time";

export type LevelName = "DEBUG" | "INFO" | "WARN" | "ERROR";

export const LEVELS: readonly LevelName[] = ["DEBUG", "INFO", "WARN", "ERROR"];

const LEVEL_VALUES: Record<LevelName, LogLevel> = {
  DEBUG: LogLevel.DEBUG,
  INFO: LogLevel.INFO,
  WARN: LogLevel.WARN,
  ERROR: LogLevel.ERROR,
};

export function levelName(level: LogLevel): LevelName | "UNSPECIFIED" {
  switch (level) {
    case LogLevel.DEBUG:
      return "DEBUG";
    case LogLevel.INFO:
      return "INFO";
    case LogLevel.WARN:
      return "WARN";
    case LogLevel.ERROR:
      return "ERROR";
    default:
      return "UNSPECIFIED";
  }
}

/**
 * The `logLevels` of a SubscribeRequest for a selection: empty (= every level, the server's
 * default) when all four are selected.
 */
export function levelsForRequest(selected: ReadonlySet<LevelName>): LogLevel[] {
  if (LEVELS.every((l) => selected.has(l))) return [];
  return LEVELS.filter((l) => selected.has(l)).map((l) => LEVEL_VALUES[l]);
}

/** What the log tail is narrowed to at the gateway (and, for lines in flight, here). */
export interface LogsFilter {
  readonly levels: ReadonlySet<LevelName>;
  /** Exact service names; empty means every service. */
  readonly services: readonly string[];
}

export const ALL_LOGS: LogsFilter = { levels: new Set(LEVELS), services: [] };

export interface LogRow {
  /** Consecutive per stored line: a unique React key, and how pausing counts new lines. */
  readonly seq: number;
  readonly level: LevelName | "UNSPECIFIED";
  readonly service: string;
  readonly host: string;
  readonly message: string;
  readonly endpoint: string;
  readonly statusCode: number;
  readonly latencyMs: number;
  readonly timeMs: number | undefined;
  readonly logId: string;
  readonly traceId: string;
  readonly partition: number;
  readonly offset: string;
  readonly replayed: boolean;
  /** Lower-cased searchable text: message, endpoint, service, host, level, status. */
  readonly haystack: string;
}

export interface LogsOptions {
  maxLines: number;
  rateWindowMs: number;
  /** Cap on the samples kept for the error rate, whatever the rate of lines. */
  maxRateSamples: number;
}

export const DEFAULT_LOGS_OPTIONS: LogsOptions = {
  maxLines: 2_000,
  rateWindowMs: 10_000,
  maxRateSamples: 20_000,
};

export interface ErrorRate {
  /** Live lines in the window. */
  readonly lines: number;
  readonly errors: number;
  /** Percent of ERROR among them; NaN with no lines. */
  readonly percent: number;
}

export class LogsState {
  private readonly ring: Ring<LogRow>;
  private seq = 0;
  private filter: LogsFilter = ALL_LOGS;
  private services: ReadonlySet<string> = new Set();
  /** (arrival time, is error) of recent live lines, oldest first, as a ring with a head index. */
  private samples: { t: number; error: boolean }[] = [];
  private head = 0;
  private errorsInWindow = 0;
  /** Lines received that the filters exclude: in flight before a filter change reached the server. */
  filteredOut = 0;

  constructor(private readonly options: LogsOptions = DEFAULT_LOGS_OPTIONS) {
    this.ring = new Ring(options.maxLines);
  }

  /** Changes the filters; lines already held that they exclude disappear at once. */
  setFilter(filter: LogsFilter): void {
    this.filter = { levels: new Set(filter.levels), services: [...filter.services] };
    this.services = new Set(filter.services);
    this.ring.retain((row) => this.shows(row.level, row.service));
  }

  apply(arrivals: readonly Arrival<LogEntry>[], nowMs: number): void {
    for (const a of arrivals) {
      const e = a.payload;
      const level = levelName(e.level);
      if (!a.replayed) this.sample(nowMs, level === "ERROR");
      if (!this.shows(level, e.service)) {
        this.filteredOut++;
        continue;
      }
      const status = e.statusCode ? String(e.statusCode) : "";
      this.ring.push({
        seq: ++this.seq,
        level,
        service: e.service,
        host: e.host,
        message: e.message,
        endpoint: e.endpoint,
        statusCode: e.statusCode,
        latencyMs: e.latencyMs,
        timeMs: timestampMs(e.timestamp) ?? a.producedMs,
        logId: e.logId,
        traceId: e.traceId,
        partition: a.partition,
        offset: a.offset.toString(),
        replayed: a.replayed,
        haystack: [e.message, e.endpoint, e.service, e.host, level, status].join("\n").toLowerCase(),
      });
    }
    this.expire(nowMs);
  }

  /** Newest first; the same array until a line arrives or the filter changes. */
  list(): readonly LogRow[] {
    return this.ring.newestFirst();
  }

  /** The `seq` of the oldest line held (see `pause.ts`). */
  oldestSeq(): number | undefined {
    const rows = this.ring.newestFirst();
    return rows[rows.length - 1]?.seq;
  }

  errorRate(nowMs: number): ErrorRate {
    this.expire(nowMs);
    const lines = this.samples.length - this.head;
    return {
      lines,
      errors: this.errorsInWindow,
      percent: lines === 0 ? Number.NaN : (this.errorsInWindow / lines) * 100,
    };
  }

  private shows(level: LevelName | "UNSPECIFIED", service: string): boolean {
    const levels = this.filter.levels;
    const levelOk = level === "UNSPECIFIED" ? levels.size === LEVELS.length : levels.has(level);
    return levelOk && (this.services.size === 0 || this.services.has(service));
  }

  private sample(t: number, error: boolean): void {
    this.samples.push({ t, error });
    if (error) this.errorsInWindow++;
    if (this.samples.length - this.head > this.options.maxRateSamples) this.dropOldest();
  }

  private expire(nowMs: number): void {
    const cutoff = nowMs - this.options.rateWindowMs;
    while (this.head < this.samples.length && (this.samples[this.head] as { t: number }).t <= cutoff) {
      this.dropOldest();
    }
    if (this.head > 4096 && this.head * 2 > this.samples.length) {
      this.samples = this.samples.slice(this.head);
      this.head = 0;
    }
  }

  private dropOldest(): void {
    const s = this.samples[this.head];
    if (!s) return;
    if (s.error) this.errorsInWindow--;
    this.head++;
  }
}
