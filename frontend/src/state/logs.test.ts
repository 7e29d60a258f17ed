import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LogEntrySchema, LogLevel } from "../gen/streamweaver/v1/events_pb";
import { arrival } from "../test/fixtures";
import { LEVELS, LogsState, levelsForRequest, type LevelName } from "./logs";

const line = (level: LogLevel, message = "m", service = "api", replayed = false) =>
  arrival(create(LogEntrySchema, { level, message, service, endpoint: "GET /x", statusCode: 200 }), { replayed });

const all = new Set(LEVELS);

describe("LogsState", () => {
  it("holds the newest maxLines lines, newest first", () => {
    const s = new LogsState({ maxLines: 50, rateWindowMs: 10_000, maxRateSamples: 1000 });
    for (let i = 0; i < 120; i++) s.apply([line(LogLevel.INFO, `n${i}`)], 0);
    expect(s.list()).toHaveLength(50);
    expect(s.list()[0]?.message).toBe("n119");
    expect(s.list()[49]?.message).toBe("n70");
    expect(s.oldestSeq()).toBe(71);
    s.apply(Array.from({ length: 80 }, (_, i) => line(LogLevel.WARN, `b${i}`)), 0);
    expect(s.list()).toHaveLength(50);
    expect(s.list()[0]?.message).toBe("b79");
  });

  it("drops held lines and in-flight lines that the level or service filter excludes", () => {
    const s = new LogsState();
    s.apply([line(LogLevel.INFO), line(LogLevel.ERROR), line(LogLevel.DEBUG), line(LogLevel.ERROR, "m", "auth")], 0);
    s.setFilter({ levels: new Set<LevelName>(["ERROR"]), services: [] });
    expect(s.list().map((l) => l.level)).toEqual(["ERROR", "ERROR"]);
    s.setFilter({ levels: new Set<LevelName>(["ERROR"]), services: ["auth"] });
    expect(s.list().map((l) => l.service)).toEqual(["auth"]);
    s.apply([line(LogLevel.WARN, "m", "auth"), line(LogLevel.ERROR, "m", "api"), line(LogLevel.ERROR, "m", "auth")], 1);
    expect(s.list().map((l) => `${l.level}/${l.service}`)).toEqual(["ERROR/auth", "ERROR/auth"]);
    expect(s.filteredOut).toBe(2);
  });

  it("computes the error rate over the live lines of the last window", () => {
    const s = new LogsState({ maxLines: 50, rateWindowMs: 10_000, maxRateSamples: 1000 });
    s.apply([line(LogLevel.ERROR), line(LogLevel.INFO), line(LogLevel.INFO), line(LogLevel.INFO)], 1_000);
    // Replayed lines are history: they are shown but do not move today's rate.
    s.apply([line(LogLevel.ERROR, "old", "api", true), line(LogLevel.ERROR, "old", "api", true)], 1_000);
    expect(s.errorRate(1_000)).toEqual({ lines: 4, errors: 1, percent: 25 });
    expect(s.list()).toHaveLength(6);
    s.apply([line(LogLevel.INFO)], 8_000);
    expect(s.errorRate(8_000).percent).toBeCloseTo(20);
    // The first four lines leave the window.
    expect(s.errorRate(11_500)).toEqual({ lines: 1, errors: 0, percent: 0 });
    expect(s.errorRate(30_000)).toEqual({ lines: 0, errors: 0, percent: Number.NaN });
  });

  it("bounds the error-rate samples whatever the rate", () => {
    const s = new LogsState({ maxLines: 50, rateWindowMs: 10_000, maxRateSamples: 100 });
    for (let i = 0; i < 1000; i++) s.apply([line(i % 2 === 0 ? LogLevel.ERROR : LogLevel.INFO)], 5);
    expect(s.errorRate(5)).toEqual({ lines: 100, errors: 50, percent: 50 });
  });

  it("keeps where each line came from and a haystack for the search", () => {
    const s = new LogsState();
    s.setFilter({ levels: all, services: [] });
    s.apply([arrival(create(LogEntrySchema, { level: LogLevel.WARN, message: "Slow Request", service: "api", host: "api-2", statusCode: 429 }), { partition: 2, offset: 77n, replayed: true })], 0);
    const [row] = s.list();
    expect(row).toMatchObject({ partition: 2, offset: "77", replayed: true, level: "WARN" });
    expect(row?.haystack).toBe("slow request\n\napi\napi-2\nwarn\n429");
  });
});

describe("levelsForRequest", () => {
  it("asks for every level with an empty list, else the selected ones", () => {
    expect(levelsForRequest(new Set(LEVELS))).toEqual([]);
    expect(levelsForRequest(new Set<LevelName>(["ERROR"]))).toEqual([LogLevel.ERROR]);
    expect(levelsForRequest(new Set<LevelName>(["WARN", "DEBUG"]))).toEqual([LogLevel.DEBUG, LogLevel.WARN]);
  });
});
