/**
 * A named, focusable scroll region that renders only the rows in view (plus a few either side),
 * all of one height, so a list of thousands of rows costs a few dozen DOM nodes and a scroll
 * or an update lays out only those. It reports what pauses a live list: the mouse over it,
 * keyboard focus inside it, and being scrolled away from the top (the newest rows).
 */
import { useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";

const OVERSCAN = 6;

interface Props<T> {
  /** The accessible name of the scroll region, e.g. "Log lines". */
  label: string;
  items: readonly T[];
  /** Row height in px for a list this wide (rows may wrap to two lines on narrow screens). */
  rowHeight: (width: number) => number;
  itemKey: (item: T) => string | number;
  renderItem: (item: T) => ReactNode;
  /** Shown instead of rows when there are none. */
  empty: ReactNode;
  /** Incremented to bring the list back to the newest rows. */
  scrollToTopSignal: number;
  onPointerInside: (inside: boolean) => void;
  onFocusInside: (inside: boolean) => void;
  onScrolledAway: (away: boolean) => void;
  testId?: string;
}

export function VirtualList<T>(props: Props<T>) {
  const { items, rowHeight, itemKey, renderItem, onScrolledAway } = props;
  const ref = useRef<HTMLDivElement>(null);
  const [box, setBox] = useState({ top: 0, height: 0, width: 0 });
  const away = useRef(false);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = (): void =>
      setBox((b) =>
        b.height === el.clientHeight && b.width === el.clientWidth
          ? b
          : { ...b, height: el.clientHeight, width: el.clientWidth },
      );
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    const el = ref.current;
    if (el && props.scrollToTopSignal > 0) el.scrollTop = 0;
  }, [props.scrollToTopSignal]);

  const h = rowHeight(box.width);
  const onScroll = (): void => {
    const el = ref.current;
    if (!el) return;
    setBox((b) => (b.top === el.scrollTop ? b : { ...b, top: el.scrollTop }));
    const isAway = el.scrollTop > h / 2;
    if (isAway !== away.current) {
      away.current = isAway;
      onScrolledAway(isAway);
    }
  };

  const first = Math.max(0, Math.floor(box.top / h) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((box.top + Math.max(box.height, h)) / h) + OVERSCAN);
  const rows: ReactNode[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i] as T;
    rows.push(
      <li
        key={itemKey(item)}
        className="vrow"
        style={{ transform: `translateY(${i * h}px)`, height: h }}
        aria-setsize={items.length}
        aria-posinset={i + 1}
      >
        {renderItem(item)}
      </li>,
    );
  }

  return (
    <div
      ref={ref}
      className="scroller"
      role="region"
      aria-label={props.label}
      tabIndex={0}
      data-testid={props.testId}
      onScroll={onScroll}
      onPointerEnter={(e) => {
        if (e.pointerType === "mouse") props.onPointerInside(true);
      }}
      onPointerLeave={(e) => {
        if (e.pointerType === "mouse") props.onPointerInside(false);
      }}
      // Only keyboard focus pauses: a mouse click on a row leaves focus behind, and the list
      // would stay paused after the pointer has gone.
      onFocus={(e) => props.onFocusInside(e.target.matches(":focus-visible"))}
      onBlur={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) props.onFocusInside(false);
      }}
    >
      {items.length === 0 ? (
        props.empty
      ) : (
        <ul className="vlist" style={{ height: items.length * h }}>
          {rows}
        </ul>
      )}
    </div>
  );
}
