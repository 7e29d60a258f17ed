/**
 * The controls every live list has: a search box, a Pause button, and a status line of fixed
 * height that says whether the list is live or paused (and why), with "N new — resume" while
 * paused. The line never appears or disappears, so pausing does not move the rows under the
 * pointer that paused them.
 */
import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import { formatInt } from "../format";
import type { LiveList } from "./useLiveList";

/** A labelled search input; the label stays visible. */
function LabelledInput({
  label,
  value,
  onChange,
  placeholder,
  testId,
  list,
  onKeyDown,
  onBlur,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  placeholder: string;
  testId: string;
  list?: string;
  onKeyDown?: (e: KeyboardEvent<HTMLInputElement>) => void;
  onBlur?: () => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="search"
        value={value}
        placeholder={placeholder}
        autoComplete="off"
        spellCheck={false}
        list={list}
        data-testid={testId}
        onChange={(e) => onChange(e.currentTarget.value)}
        onKeyDown={onKeyDown}
        onBlur={onBlur}
      />
    </div>
  );
}

/** The text search of a list: applied on the page as you type. */
export function SearchField(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  placeholder: string;
  testId: string;
}) {
  return <LabelledInput {...props} />;
}

/**
 * A names box whose value is applied (to the gateway) after typing stops for `delayMs`, on
 * Enter, or when it loses focus — not on every keystroke, each of which would re-subscribe.
 */
export function NamesField({
  label,
  applied,
  onApply,
  placeholder,
  suggestions,
  testId,
  delayMs = 600,
}: {
  label: string;
  applied: string;
  onApply: (value: string) => void;
  placeholder: string;
  suggestions: readonly string[];
  testId: string;
  delayMs?: number;
}) {
  const listId = useId();
  const [text, setText] = useState(applied);
  useEffect(() => {
    if (text === applied) return;
    const t = setTimeout(() => onApply(text), delayMs);
    return () => clearTimeout(t);
  }, [text, applied, onApply, delayMs]);
  return (
    <>
      <LabelledInput
        label={label}
        value={text}
        onChange={setText}
        placeholder={placeholder}
        testId={testId}
        list={listId}
        onKeyDown={(e) => {
          if (e.key === "Enter") onApply(text);
        }}
        onBlur={() => {
          if (text !== applied) onApply(text);
        }}
      />
      <datalist id={listId}>
        {suggestions.map((s) => (
          <option key={s} value={s} />
        ))}
      </datalist>
    </>
  );
}

/** The distinct names (services, authors) seen in recent rows, sorted: suggestions for a names box. */
export function useSeenNames<T>(rows: readonly T[], pick: (row: T) => string, max = 64): readonly string[] {
  const seen = useRef(new Set<string>());
  const before = seen.current.size;
  for (const row of rows.slice(0, 200)) {
    if (seen.current.size >= max) break;
    const name = pick(row);
    if (name) seen.current.add(name);
  }
  const sorted = useRef<readonly string[]>([]);
  if (seen.current.size !== before || sorted.current.length !== seen.current.size) {
    sorted.current = [...seen.current].sort();
  }
  return sorted.current;
}

/**
 * Said under a list's controls when the gateway refused its search as a filter: the search
 * goes on, on the page alone.
 */
export function SearchRefused({ message, testId }: { message: string | undefined; testId: string }) {
  if (message === undefined) return null;
  return (
    <p className="search-refused" role="status" data-testid={testId}>
      The gateway refused this search as a filter ({message}); it applies to the rows on this page only.
    </p>
  );
}

export function PauseButton<T>({ list, what, testId }: { list: LiveList<T>; what: string; testId: string }) {
  return (
    <button
      type="button"
      className="pause-button"
      aria-pressed={list.pausedByButton}
      data-testid={testId}
      onClick={list.toggleButton}
    >
      {list.pausedByButton ? `Resume ${what}` : `Pause ${what}`}
    </button>
  );
}

export function LiveListStatus<T>({
  list,
  total,
  noun,
  stale,
  testId,
}: {
  list: LiveList<T>;
  /** Rows shown. */
  total: number;
  noun: string;
  /** The list's subscription is down: what it shows is from before. */
  stale: boolean;
  testId: string;
}) {
  const fresh = list.fresh;
  const count = `${formatInt(fresh.count)}${fresh.atLeast ? "+" : ""}`;
  return (
    <div className="list-status" data-testid={testId} data-paused={list.paused} data-new-count={fresh.count}>
      {list.paused ? (
        <>
          <span className="paused-tag">Paused</span>
          <span className="list-status-text">({list.reasons})</span>
          <button type="button" className="resume" data-testid={`${testId}-resume`} onClick={list.resume}>
            {count} new — resume
          </button>
        </>
      ) : (
        <span className="list-status-text">
          {stale ? <span className="stale-tag">Not live</span> : <span className="live-tag">Live</span>} newest first ·{" "}
          {formatInt(total)} {noun}
          {list.query ? " match" : ""}
        </span>
      )}
    </div>
  );
}
