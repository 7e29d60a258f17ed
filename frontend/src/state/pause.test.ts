import { describe, expect, it } from "vitest";
import {
  isPaused,
  livePause,
  newRows,
  pauseReasonText,
  resumeLive,
  setPauseReason,
  shownRows,
  type PauseState,
} from "./pause";

type Row = { seq: number };
const rows = (...seqs: number[]): Row[] => seqs.map((seq) => ({ seq }));

describe("pausing a live list", () => {
  it("freezes the rows on screen when the first reason starts, and holds them while events arrive", () => {
    const onScreen = rows(3, 2, 1);
    let s: PauseState<Row> = livePause();
    expect(shownRows(s, onScreen)).toBe(onScreen);
    s = setPauseReason(s, "pointer", true, onScreen);
    expect(isPaused(s)).toBe(true);
    const later = rows(6, 5, 4, 3, 2, 1);
    expect(shownRows(s, later)).toBe(onScreen);
    expect(newRows(s, later, 1)).toEqual({ count: 3, atLeast: false });
    // A second reason keeps the first frozen rows.
    s = setPauseReason(s, "button", true, later);
    expect(shownRows(s, later)).toBe(onScreen);
    expect(pauseReasonText(s)).toBe("pause button, pointer over list");
  });

  it("shows the live rows again only when the last reason ends", () => {
    const onScreen = rows(2, 1);
    let s = setPauseReason(livePause<Row>(), "button", true, onScreen);
    s = setPauseReason(s, "scroll", true, onScreen);
    s = setPauseReason(s, "button", false, onScreen);
    expect(isPaused(s)).toBe(true);
    const later = rows(4, 3, 2, 1);
    s = setPauseReason(s, "scroll", false, later);
    expect(isPaused(s)).toBe(false);
    expect(shownRows(s, later)).toBe(later);
    expect(newRows(s, later, 1)).toEqual({ count: 0, atLeast: false });
  });

  it("resume drops every reason; a change that changes nothing returns the same state", () => {
    let s = setPauseReason(livePause<Row>(), "focus", true, rows(1));
    expect(setPauseReason(s, "focus", true, rows(1))).toBe(s);
    s = setPauseReason(s, "dialog", true, rows(1));
    s = resumeLive(s);
    expect(isPaused(s)).toBe(false);
    expect(resumeLive(s)).toBe(s);
  });

  it("says there are more new rows than the list still holds when some were pushed out", () => {
    const s = setPauseReason(livePause<Row>(), "button", true, rows(10, 9));
    // The list now holds 13..20: 11 and 12 arrived after the pause but are gone.
    const live = rows(20, 19, 18, 17, 16, 15, 14, 13);
    expect(newRows(s, live, 13)).toEqual({ count: 8, atLeast: true });
    // Counting only the rows a search keeps.
    expect(newRows(s, rows(19, 15), 13)).toEqual({ count: 2, atLeast: true });
  });

  it("counts every row as new when paused before any arrived", () => {
    const s = setPauseReason(livePause<Row>(), "button", true, []);
    expect(newRows(s, rows(2, 1), 1)).toEqual({ count: 2, atLeast: false });
  });
});
