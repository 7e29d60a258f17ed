/**
 * What every panel shares: its frame (a named region with a heading and labelled figures), how
 * it looks when its subscription is down (its data dimmed, its figures "–"), and the props the
 * app gives each panel.
 */
import type { ReactNode } from "react";
import type { LiveDashboard } from "../live";
import type { StreamTransport } from "../transport/types";

/** What the app gives a panel: its own slice of the view (`data`), so an unchanged panel is not re-rendered. */
export interface PanelProps<Data> {
  live: LiveDashboard;
  data: Data;
  transport: StreamTransport;
  heartbeatMs: number | undefined;
  /** On narrow screens only one panel shows at a time. */
  hiddenOnNarrow: boolean;
}

/** `{ value: 3 }` as `{ "data-value": 3 }`: figures carry their raw values for scripts and tests. */
export function dataAttributes(data: Record<string, string | number> | undefined): Record<string, string | number> {
  const attrs: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(data ?? {})) attrs[`data-${k}`] = v;
  return attrs;
}

/** A labelled figure in a panel's heading: the label is always visible. */
export function PanelFigure({ label, value, testId, hot }: { label: string; value: string; testId?: string; hot?: boolean }) {
  return (
    <span className="panel-figure">
      <span className="panel-figure-label">{label}</span>{" "}
      <b className={`num${hot ? " hot" : ""}`} data-testid={testId}>
        {value}
      </b>
    </span>
  );
}

export function Panel({
  id,
  title,
  testId,
  stale,
  hiddenOnNarrow,
  figures,
  className,
  children,
  extraData,
}: {
  id: string;
  title: string;
  testId: string;
  stale: boolean;
  hiddenOnNarrow: boolean;
  figures: ReactNode;
  className: string;
  children: ReactNode;
  extraData?: Record<string, string | number>;
}) {
  return (
    <section
      className={`panel ${className}${hiddenOnNarrow ? " narrow-hidden" : ""}`}
      data-testid={testId}
      data-stale={stale}
      aria-labelledby={`${id}-title`}
      {...dataAttributes(extraData)}
    >
      <header className="panel-head">
        <h2 id={`${id}-title`}>{title}</h2>
        <span className="panel-meta">
          {stale ? <span className="stale-tag">not live</span> : null}
          {figures}
        </span>
      </header>
      {children}
    </section>
  );
}
