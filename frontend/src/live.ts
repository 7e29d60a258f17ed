/**
 * Glue between the transports and React: responses are buffered (FrameBatcher), folded into the
 * DashboardStore once per animation frame, and published as one immutable view that components
 * read with `useSyncExternalStore`. Nothing here holds more than a bounded amount of data.
 */
import type { SubscribeResponse } from "./gen/streamweaver/v1/stream_pb";
import { FrameBatcher, type Scheduler } from "./state/batcher";
import type { LevelName } from "./state/logs";
import { DashboardStore, type DashboardView } from "./state/store";
import { ResumeTracker } from "./transport/resume";

const animationFrame: Scheduler = (callback) => {
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(() => callback());
  else setTimeout(callback, 16);
};

export class LiveDashboard {
  readonly resume = new ResumeTracker();
  private readonly store = new DashboardStore();
  private readonly listeners = new Set<() => void>();
  private readonly batcher: FrameBatcher<SubscribeResponse>;
  private view: DashboardView;

  constructor(
    schedule: Scheduler = animationFrame,
    private readonly now: () => number = Date.now,
  ) {
    this.batcher = new FrameBatcher<SubscribeResponse>((batch, render) => {
      this.store.applyBatch(batch, this.now());
      if (render) this.publish();
    }, schedule);
    this.view = this.store.view(this.now());
  }

  /** Takes one response from a transport; cheap, never renders. */
  readonly push = (response: SubscribeResponse): void => {
    this.batcher.push(response);
  };

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): DashboardView => this.view;

  setLogLevels(levels: ReadonlySet<LevelName>): void {
    this.batcher.drain(false);
    this.store.setLogLevels(levels);
    this.publish();
  }

  noteError(message: string): void {
    this.store.noteError(message);
    this.publish();
  }

  /** Called every second so rates and percentiles move on even when nothing arrives. */
  tick(): void {
    this.store.refresh();
    this.publish();
  }

  private publish(): void {
    this.view = this.store.view(this.now());
    for (const listener of this.listeners) listener();
  }
}
