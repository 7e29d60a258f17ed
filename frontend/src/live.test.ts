import { describe, expect, it } from "vitest";
import { LogLevel } from "./gen/streamweaver/v1/events_pb";
import { LiveDashboard, type Timer } from "./live";
import { asResponse, logEvent } from "./test/fixtures";

/** A manual clock and timer. */
function manual() {
  let now = 0;
  const pending: { at: number; fn: () => void; live: boolean }[] = [];
  const timer: Timer = (fn, ms) => {
    const t = { at: now + ms, fn, live: true };
    pending.push(t);
    return () => {
      t.live = false;
    };
  };
  const advance = (ms: number): void => {
    now += ms;
    for (const t of pending.splice(0)) {
      if (!t.live) continue;
      if (t.at <= now) t.fn();
      else pending.push(t);
    }
  };
  return { timer, now: () => now, advance, scheduled: () => pending.filter((t) => t.live).length };
}

describe("LiveDashboard", () => {
  it("redraws at most every publishEveryMs however fast responses arrive", () => {
    const clock = manual();
    const live = new LiveDashboard({ gatewayUrl: "http://gw", publishEveryMs: 250, timer: clock.timer, now: clock.now });
    let renders = 0;
    live.subscribe(() => renders++);
    for (let ms = 0; ms < 1_000; ms += 10) {
      live.push("logs", asResponse(logEvent(LogLevel.INFO, clock.now())), 0);
      clock.advance(10);
    }
    expect(renders).toBeGreaterThanOrEqual(3);
    expect(renders).toBeLessThanOrEqual(5);
    expect(clock.scheduled()).toBeLessThanOrEqual(1);
    // What arrived after the last redraw is drawn by the next one.
    clock.advance(250);
    expect(live.getSnapshot().logsPanel.rows).toHaveLength(100);
    expect(clock.scheduled()).toBe(0);
  });

  it("draws a connection change at once", () => {
    const clock = manual();
    const live = new LiveDashboard({ gatewayUrl: "http://gw", timer: clock.timer, now: clock.now });
    let renders = 0;
    live.subscribe(() => renders++);
    live.status("feed", { status: "disconnected", detail: "x", retryInMs: 500 });
    expect(renders).toBe(1);
    expect(live.getSnapshot().connections.feed.status).toBe("disconnected");
  });
});
