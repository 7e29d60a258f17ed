/**
 * The body every live list panel shares: the status line, the virtual list wired to the
 * list's pause (pointer, keyboard focus, scrolling), and the dialog that shows one row in
 * full — which holds the list paused while it is open, so closing it returns to the same rows.
 */
import { useCallback, useState, type ReactNode } from "react";
import type { Sequenced } from "../state/pause";
import { Dialog } from "./Dialog";
import { LiveListStatus } from "./LiveListControls";
import type { LiveList } from "./useLiveList";
import { VirtualList } from "./VirtualList";

interface Props<T> {
  list: LiveList<T>;
  /** The list's subscription is down. */
  stale: boolean;
  /** Plural noun for the rows, e.g. "lines". */
  noun: string;
  /** The scroll region's accessible name, e.g. "Log lines". */
  label: string;
  testIds: { status: string; list: string; dialog: string };
  rowHeight: (width: number) => number;
  renderRow: (row: T, open: (row: T) => void) => ReactNode;
  /** The dialog's title and content for a row. */
  detail: (row: T) => { title: string; body: ReactNode };
}

export function LiveListBody<T extends Sequenced>(props: Props<T>) {
  const { list, stale, noun } = props;
  const [open, setOpen] = useState<T | undefined>();
  const setReason = list.setReason;
  const openRow = useCallback(
    (row: T) => {
      setReason("dialog", true);
      setOpen(row);
    },
    [setReason],
  );
  const shown = open === undefined ? undefined : props.detail(open);
  const empty = stale ? `No ${noun}: not connected.` : list.query ? `No ${noun} match the search.` : `Waiting for ${noun}…`;
  return (
    <>
      <LiveListStatus list={list} total={list.rows.length} noun={noun} stale={stale} testId={props.testIds.status} />
      <div className="panel-data">
        <VirtualList
          label={props.label}
          testId={props.testIds.list}
          items={list.rows}
          rowHeight={props.rowHeight}
          itemKey={(row) => row.seq}
          renderItem={(row) => props.renderRow(row, openRow)}
          empty={<p className="empty">{empty}</p>}
          scrollToTopSignal={list.scrollToTopSignal}
          onPointerInside={(on) => setReason("pointer", on)}
          onFocusInside={(on) => setReason("focus", on)}
          onScrolledAway={(on) => setReason("scroll", on)}
        />
      </div>
      <Dialog
        open={shown !== undefined}
        title={shown?.title ?? ""}
        testId={props.testIds.dialog}
        onClose={() => {
          setOpen(undefined);
          setReason("dialog", false);
        }}
      >
        {shown?.body}
      </Dialog>
    </>
  );
}

/** The end of every row's details: where in Kafka the event is, and how it reached the page. */
export function RowOrigin({
  topic,
  row,
}: {
  topic: string;
  row: { readonly partition: number; readonly offset: string; readonly replayed: boolean };
}) {
  return (
    <>
      <dt>Kafka position</dt>
      <dd className="num">
        {topic} · partition {row.partition} · offset {row.offset}
      </dd>
      <dt>Delivered</dt>
      <dd>{row.replayed ? "replayed (produced before this subscription began)" : "live"}</dd>
    </>
  );
}
