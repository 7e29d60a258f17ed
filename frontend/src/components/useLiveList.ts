/**
 * A live list's own state: its pause (see `state/pause.ts`), and its text search applied to the
 * rows held. Given the live rows from the store, it returns the rows to show (frozen while
 * paused, searched), how many newer rows wait, and the handlers the list and its controls call.
 */
import { useCallback, useMemo, useRef, useState } from "react";
import {
  isPaused,
  livePause,
  newRows,
  pauseReasonText,
  resumeLive,
  setPauseReason,
  shownRows,
  type NewRows,
  type PauseReason,
  type PauseState,
  type Sequenced,
} from "../state/pause";
import { filterByText } from "../state/search";

export interface LiveList<T> {
  readonly rows: readonly T[];
  readonly paused: boolean;
  readonly pausedByButton: boolean;
  readonly reasons: string;
  readonly fresh: NewRows;
  readonly query: string;
  readonly setQuery: (q: string) => void;
  readonly setReason: (reason: PauseReason, on: boolean) => void;
  readonly toggleButton: () => void;
  readonly resume: () => void;
  /** Incremented on resume: the list scrolls back to the newest rows. */
  readonly scrollToTopSignal: number;
}

export function useLiveList<T extends Sequenced & { readonly haystack: string }>(
  liveRows: readonly T[],
  oldestHeldSeq: number | undefined,
  /** Narrowing applied to shown rows as well (server filters, for rows frozen before a change). */
  keep: ((row: T) => boolean) | undefined,
  /** The text search: the caller owns it, to send it to the gateway too. */
  query: string,
  setQuery: (q: string) => void,
): LiveList<T> {
  const [pause, setPause] = useState<PauseState<T>>(livePause);
  const [scrollToTopSignal, setScrollSignal] = useState(0);
  const live = useRef(liveRows);
  live.current = liveRows;

  const setReason = useCallback((reason: PauseReason, on: boolean) => {
    setPause((s) => setPauseReason(s, reason, on, live.current));
  }, []);
  const resume = useCallback(() => {
    setPause(resumeLive);
    setScrollSignal((n) => n + 1);
  }, []);
  const pausedByButton = pause.reasons.has("button");
  const toggleButton = useCallback(() => {
    if (pausedByButton) resume();
    else setReason("button", true);
  }, [pausedByButton, resume, setReason]);

  const source = shownRows(pause, liveRows);
  const rows = useMemo(() => {
    const searched = filterByText(source, query);
    return keep ? searched.filter(keep) : searched;
  }, [source, query, keep]);
  const liveSearched = useMemo(
    () => (pause.frozen ? filterByText(liveRows, query) : rows),
    [pause.frozen, liveRows, query, rows],
  );

  return {
    rows,
    paused: isPaused(pause),
    pausedByButton,
    reasons: pauseReasonText(pause),
    fresh: newRows(pause, liveSearched, oldestHeldSeq),
    query,
    setQuery,
    setReason,
    toggleButton,
    resume,
    scrollToTopSignal,
  };
}
