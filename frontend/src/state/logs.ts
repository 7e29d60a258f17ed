/**
 * The server-log tail: newest first (at most `maxLines`), only the selected levels, and the
 * error rate: the share of ERROR lines among the lines received in the last `rateWindowMs`.
 */
import { LogLevel, type LogEntry } from "../gen/streamweaver/v1/events_pb";
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

export interface LogRow {
  readonly seq: number;
  readonly level: LevelName | "UNSPECIFIED";
  readonly service: string;
  readonly host: string;
  readonly message: string;
  readonly endpoint: string;
  readonly statusCode: number;
  readonly latencyMs: number;
  readonly timeMs: number | undefined;
}

export interface LogsOptions {
  maxLines: number;
  rateWindowMs: number;
  /** Cap on the samples kept for the error rate, whatever the rate of lines. */
  maxRateSamples: number;
}

export const DEFAULT_LOGS_OPTIONS: LogsOptions = {
  maxLines: 50,
  rateWindowMs: 10_000,
  maxRateSamples: 20_000,
};

export interface ErrorRate {
  /** Lines in the window. */
  readonly lines: number;
  readonly errors: number;
  /** Percent of ERROR among them; 0 with no lines. */
  readonly percent: number;
}

export class LogsState {
  private lines: readonly LogRow[] = [];
  private seq = 0;
  private selected: ReadonlySet<LevelName> = new Set(LEVELS);
  /** (arrival time, is error) of recent lines, oldest first, as a ring with a head index. */
  private samples: { t: number; error: boolean }[] = [];
  private head = 0;
  private errorsInWindow = 0;
  /** Lines received that the selected levels exclude: the server should not send them. */
  filteredOut = 0;

  constructor(private readonly options: LogsOptions = DEFAULT_LOGS_OPTIONS) {}

  /** Changes the selection; lines already shown that it excludes disappear at once. */
  setLevels(selected: ReadonlySet<LevelName>): void {
    this.selected = new Set(selected);
    this.lines = this.lines.filter((l) => this.shows(l.level));
  }

  levels(): ReadonlySet<LevelName> {
    return this.selected;
  }

  apply(entries: readonly LogEntry[], nowMs: number): void {
    const fresh: LogRow[] = [];
    for (const e of entries) {
      const level = levelName(e.level);
      this.sample(nowMs, level === "ERROR");
      if (!this.shows(level)) {
        this.filteredOut++; // in flight before a filter change reached the server
        continue;
      }
      fresh.push({
        seq: ++this.seq,
        level,
        service: e.service,
        host: e.host,
        message: e.message,
        endpoint: e.endpoint,
        statusCode: e.statusCode,
        latencyMs: e.latencyMs,
        timeMs: timestampMs(e.timestamp),
      });
    }
    this.expire(nowMs);
    if (fresh.length === 0) return;
    const newest = fresh.slice(-this.options.maxLines).reverse();
    this.lines = [...newest, ...this.lines].slice(0, this.options.maxLines);
  }

  /** Newest first. */
  list(): readonly LogRow[] {
    return this.lines;
  }

  errorRate(nowMs: number): ErrorRate {
    this.expire(nowMs);
    const lines = this.samples.length - this.head;
    return {
      lines,
      errors: this.errorsInWindow,
      percent: lines === 0 ? 0 : (this.errorsInWindow / lines) * 100,
    };
  }

  private shows(level: LevelName | "UNSPECIFIED"): boolean {
    return level === "UNSPECIFIED" ? this.selected.size === LEVELS.length : this.selected.has(level);
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
