/**
 * Glue between the subscriptions and React. Responses are taken by the store as they arrive
 * (cheap), and the page is redrawn at most `publishEveryMs` apart, one panel per redraw in
 * turn (84 ms: each panel four times a second, as fast as the eye reads a changing figure, and
 * no frame lays out all three), with one immutable view that components read with
 * `useSyncExternalStore`. A connection change is drawn at once. Nothing here holds more than a
 * bounded amount of data.
 */
import type { SubscribeResponse } from "./gen/streamweaver/v1/stream_pb";
import type { StreamName } from "./state/connection";
import type { LogsFilter } from "./state/logs";
import { DashboardStore, type DashboardView } from "./state/store";
import type { StatusReport } from "./transport/types";
import { ResumeTracker } from "./transport/resume";

/** Schedules a callback after `ms`; returns a function that cancels it. */
export type Timer = (callback: () => void, ms: number) => () => void;

const browserTimer: Timer = (callback, ms) => {
  const id = setTimeout(callback, ms);
  return () => clearTimeout(id);
};

export interface LiveOptions {
  gatewayUrl: string;
  publishEveryMs?: number;
  timer?: Timer;
  now?: () => number;
}

export class LiveDashboard {
  /** Resume positions per subscription: they outlive transport switches and filter changes. */
  readonly resume: Record<StreamName, ResumeTracker> = {
    trades: new ResumeTracker(),
    feed: new ResumeTracker(),
    logs: new ResumeTracker(),
  };
  private readonly store: DashboardStore;
  private readonly listeners = new Set<() => void>();
  private readonly publishEveryMs: number;
  private readonly timer: Timer;
  private readonly now: () => number;
  private cancelScheduled: (() => void) | undefined;
  private lastPublishMs = Number.NEGATIVE_INFINITY;
  private lastTurn: StreamName | undefined;
  private view: DashboardView;

  constructor(options: LiveOptions) {
    this.store = new DashboardStore({ gatewayUrl: options.gatewayUrl });
    this.publishEveryMs = options.publishEveryMs ?? 84;
    this.timer = options.timer ?? browserTimer;
    this.now = options.now ?? Date.now;
    this.view = this.store.view(this.now());
  }

  /** Takes one response of `stream` (from an attempt opened at `openedMs`); never renders. */
  readonly push = (stream: StreamName, response: SubscribeResponse, openedMs: number): void => {
    this.store.ingest(stream, response, openedMs, this.now());
    this.schedule();
  };

  /** A subscription's state changed: drawn at once. */
  readonly status = (stream: StreamName, report: StatusReport): void => {
    this.store.setStatus(stream, report, this.now());
    this.publish();
  };

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): DashboardView => this.view;

  setLogsFilter(filter: LogsFilter): void {
    this.store.setLogsFilter(filter, this.now());
    this.publish();
  }

  setAuthors(authors: readonly string[]): void {
    this.store.setAuthors(authors, this.now());
    this.publish();
  }

  /** Called every second so rates, ages and countdowns move on even when nothing arrives. */
  tick(): void {
    this.publish();
  }

  private schedule(): void {
    if (this.cancelScheduled) return;
    const wait = Math.max(0, this.lastPublishMs + this.publishEveryMs - this.now());
    this.cancelScheduled = this.timer(() => {
      this.cancelScheduled = undefined;
      this.publish();
    }, wait);
  }

  private publish(): void {
    this.cancelScheduled?.();
    this.cancelScheduled = undefined;
    const now = this.now();
    this.store.flush(now);
    this.lastPublishMs = now;
    const turn = this.store.nextUnshown(this.lastTurn);
    if (turn) this.lastTurn = turn;
    this.view = this.store.view(now, turn ?? "all");
    for (const listener of this.listeners) listener();
    // Another panel waits for its turn.
    if (this.store.nextUnshown(this.lastTurn)) this.schedule();
  }
}
