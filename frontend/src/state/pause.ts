/**
 * Pausing a live list so it can be read (WCAG 2.2.2: content that moves by itself can be
 * paused). A list is paused while any reason holds: the Pause button, the pointer over the
 * list, focus inside it, the user scrolled away from the newest rows, or a row's details open.
 * While paused it shows the rows it had when the pause began (nothing moves under the reader);
 * events keep arriving into the store, and the list counts how many newer rows wait. Resuming
 * shows the live rows again. Pure: the component keeps a `PauseState` and calls these.
 */

export type PauseReason = "button" | "pointer" | "focus" | "scroll" | "dialog";

/** Words for each reason, most deliberate first, for "Paused (…)". */
const REASON_WORDS: Record<PauseReason, string> = {
  button: "pause button",
  dialog: "details open",
  scroll: "scrolled down",
  focus: "focus in list",
  pointer: "pointer over list",
};
const REASON_ORDER: readonly PauseReason[] = ["button", "dialog", "scroll", "focus", "pointer"];

/** A row of a live list: `seq` grows with arrival. */
export interface Sequenced {
  readonly seq: number;
}

export interface PauseState<T extends Sequenced> {
  readonly reasons: ReadonlySet<PauseReason>;
  /** The rows shown while paused (newest first), taken when the pause began. */
  readonly frozen: readonly T[] | undefined;
}

export function livePause<T extends Sequenced>(): PauseState<T> {
  return { reasons: new Set(), frozen: undefined };
}

export function isPaused<T extends Sequenced>(state: PauseState<T>): boolean {
  return state.reasons.size > 0;
}

/**
 * Turns one reason on or off. The first reason freezes `liveRows` (the rows on screen now);
 * removing the last shows live rows again. Returns `state` itself when nothing changes.
 */
export function setPauseReason<T extends Sequenced>(
  state: PauseState<T>,
  reason: PauseReason,
  on: boolean,
  liveRows: readonly T[],
): PauseState<T> {
  if (state.reasons.has(reason) === on) return state;
  const reasons = new Set(state.reasons);
  if (on) reasons.add(reason);
  else reasons.delete(reason);
  if (reasons.size === 0) return livePause();
  return { reasons, frozen: state.frozen ?? liveRows };
}

/** Resume: every reason is dropped (the list scrolls back to the newest). */
export function resumeLive<T extends Sequenced>(state: PauseState<T>): PauseState<T> {
  return isPaused(state) ? livePause() : state;
}

/** The rows to show: the frozen ones while paused, else the live ones. */
export function shownRows<T extends Sequenced>(state: PauseState<T>, liveRows: readonly T[]): readonly T[] {
  return state.frozen ?? liveRows;
}

export interface NewRows {
  /** Live rows newer than the newest frozen one. */
  readonly count: number;
  /** True when some rows that arrived since were already pushed out of the list: there are more. */
  readonly atLeast: boolean;
}

/**
 * How many of `liveRows` (newest first, as shown: after any search) arrived after the frozen
 * rows. `oldestHeldSeq` is the oldest `seq` the list still holds (before any search): rows are
 * numbered consecutively as they arrive, so a hole between it and the frozen rows means that
 * newer rows were evicted.
 */
export function newRows<T extends Sequenced>(
  state: PauseState<T>,
  liveRows: readonly T[],
  oldestHeldSeq: number | undefined,
): NewRows {
  if (!state.frozen) return { count: 0, atLeast: false };
  const since = state.frozen[0]?.seq ?? 0;
  let count = 0;
  while (count < liveRows.length && (liveRows[count] as T).seq > since) count++;
  return { count, atLeast: oldestHeldSeq !== undefined && oldestHeldSeq > since + 1 };
}

/** "paused", "pointer over list", … the reasons that hold, for the pause bar. */
export function pauseReasonText<T extends Sequenced>(state: PauseState<T>): string {
  return REASON_ORDER.filter((r) => state.reasons.has(r))
    .map((r) => REASON_WORDS[r])
    .join(", ");
}
