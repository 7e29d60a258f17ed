import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LogEntrySchema, LogLevel, type LogEntry } from "../gen/streamweaver/v1/events_pb";
import { LEVELS, LogsState, levelsForRequest, type LevelName } from "./logs";

const line = (level: LogLevel, message = "m"): LogEntry => create(LogEntrySchema, { level, message, service: "api" });

describe("LogsState", () => {
  it("keeps the newest maxLines lines, newest first", () => {
    const s = new LogsState({ maxLines: 50, rateWindowMs: 10_000, maxRateSamples: 1000 });
    for (let i = 0; i < 120; i++) s.apply([line(LogLevel.INFO, `n${i}`)], 0);
    expect(s.list()).toHaveLength(50);
    expect(s.list()[0]?.message).toBe("n119");
    expect(s.list()[49]?.message).toBe("n70");
    s.apply(Array.from({ length: 80 }, (_, i) => line(LogLevel.WARN, `b${i}`)), 0);
    expect(s.list()).toHaveLength(50);
    expect(s.list()[0]?.message).toBe("b79");
  });

  it("drops shown lines and in-flight lines excluded by the level filter", () => {
    const s = new LogsState();
    s.apply([line(LogLevel.INFO), line(LogLevel.ERROR), line(LogLevel.DEBUG)], 0);
    s.setLevels(new Set<LevelName>(["ERROR"]));
    expect(s.list().map((l) => l.level)).toEqual(["ERROR"]);
    s.apply([line(LogLevel.WARN), line(LogLevel.ERROR)], 1);
    expect(s.list().map((l) => l.level)).toEqual(["ERROR", "ERROR"]);
    expect(s.filteredOut).toBe(1);
  });

  it("computes the error rate over the lines of the last window", () => {
    const s = new LogsState({ maxLines: 50, rateWindowMs: 10_000, maxRateSamples: 1000 });
    s.apply([line(LogLevel.ERROR), line(LogLevel.INFO), line(LogLevel.INFO), line(LogLevel.INFO)], 1_000);
    expect(s.errorRate(1_000)).toEqual({ lines: 4, errors: 1, percent: 25 });
    s.apply([line(LogLevel.INFO)], 8_000);
    expect(s.errorRate(8_000).percent).toBeCloseTo(20);
    // The first four lines leave the window.
    expect(s.errorRate(11_500)).toEqual({ lines: 1, errors: 0, percent: 0 });
    expect(s.errorRate(30_000)).toEqual({ lines: 0, errors: 0, percent: 0 });
  });

  it("bounds the error-rate samples whatever the rate", () => {
    const s = new LogsState({ maxLines: 50, rateWindowMs: 10_000, maxRateSamples: 100 });
    for (let i = 0; i < 1000; i++) s.apply([line(i % 2 === 0 ? LogLevel.ERROR : LogLevel.INFO)], 5);
    expect(s.errorRate(5)).toEqual({ lines: 100, errors: 50, percent: 50 });
  });
});

describe("levelsForRequest", () => {
  it("asks for every level with an empty list, else the selected ones", () => {
    expect(levelsForRequest(new Set(LEVELS))).toEqual([]);
    expect(levelsForRequest(new Set<LevelName>(["ERROR"]))).toEqual([LogLevel.ERROR]);
    expect(levelsForRequest(new Set<LevelName>(["WARN", "DEBUG"]))).toEqual([LogLevel.DEBUG, LogLevel.WARN]);
  });
});
