/**
 * ServerLogsPanel: a live tail of `server_logs`, newest first, that can be read: it pauses
 * (button, pointer, keyboard focus, scrolling down), narrows by level, service and text at
 * the gateway (the text as a CEL filter; on the page too, for lines held before), and opens any
 * line in full. It owns its filters and its subscription.
 */
import { memo, useCallback, useMemo, useState } from "react";
import { formatClock, formatDateTime, formatMs, formatRate, UNKNOWN } from "../format";
import { logSearchFilter, logsRequest } from "../requests";
import { LEVELS, type LevelName, type LogRow, type LogsFilter } from "../state/logs";
import type { LogsPanelView } from "../state/store";
import { parseNames } from "../state/search";
import { LiveListBody, RowOrigin } from "./LiveListBody";
import { NamesField, PauseButton, SearchField, SearchRefused, useSeenNames } from "./LiveListControls";
import { Panel, PanelFigure, type PanelProps } from "./Panel";
import { useLiveList } from "./useLiveList";
import { useServerSearch } from "./useServerSearch";
import { useStream } from "./useStream";

/** Below this list width a line takes two rows: time, level, service; then the message. */
const NARROW_LIST_PX = 520;
const rowHeight = (width: number): number => (width > 0 && width < NARROW_LIST_PX ? 40 : 24);

const Line = memo(function Line({ line, onOpen }: { line: LogRow; onOpen: (line: LogRow) => void }) {
  const text = line.message.includes(line.endpoint) ? line.message : `${line.endpoint} ${line.message}`;
  return (
    <button
      type="button"
      className={`log level-${line.level}`}
      data-testid="log-row"
      data-level={line.level}
      data-seq={line.seq}
      onClick={() => onOpen(line)}
    >
      <span className="time">{formatClock(line.timeMs)}</span>
      <span className="level">{line.level}</span>
      <span className="service">{line.service}</span>
      <span className="num latency">{line.latencyMs ? formatMs(line.latencyMs) : ""}</span>
      <span className="message">
        {line.statusCode ? <span className="status-code">{line.statusCode} </span> : null}
        {text}
      </span>
    </button>
  );
});

function LogDetail({ line }: { line: LogRow }) {
  return (
    <dl className="detail" data-testid="log-detail">
      <dt>Message</dt>
      <dd className="detail-text">{line.message || UNKNOWN}</dd>
      <dt>Time</dt>
      <dd className="num">{formatDateTime(line.timeMs)}</dd>
      <dt>Level</dt>
      <dd className={`level-${line.level}`}>
        <span className="level">{line.level}</span>
      </dd>
      <dt>Service</dt>
      <dd>{line.service || UNKNOWN}</dd>
      <dt>Host</dt>
      <dd>{line.host || UNKNOWN}</dd>
      <dt>Endpoint</dt>
      <dd>{line.endpoint || UNKNOWN}</dd>
      <dt>Status</dt>
      <dd className="num">{line.statusCode || UNKNOWN}</dd>
      <dt>Latency</dt>
      <dd className="num">{line.latencyMs ? formatMs(line.latencyMs) : UNKNOWN}</dd>
      <dt>Log id</dt>
      <dd className="mono">{line.logId || UNKNOWN}</dd>
      <dt>Trace id</dt>
      <dd className="mono">{line.traceId || UNKNOWN}</dd>
      <RowOrigin topic="server_logs" row={line} />
    </dl>
  );
}

export const ServerLogsPanel = memo(function ServerLogsPanel({
  live,
  data,
  transport,
  heartbeatMs,
  hiddenOnNarrow,
}: PanelProps<LogsPanelView>) {
  const [filter, setFilter] = useState<LogsFilter>(() => ({ levels: new Set(LEVELS), services: [] }));
  const [query, setQuery] = useState("");
  const search = useServerSearch(query, logSearchFilter);
  const request = useMemo(() => logsRequest(filter, search.filter), [filter, search.filter]);
  useStream(live, "logs", transport, request, heartbeatMs, search.onRefused);

  const applyFilter = useCallback(
    (next: LogsFilter) => {
      live.setLogsFilter(next); // hide excluded lines at once, before the gateway applies it
      setFilter(next);
    },
    [live],
  );
  const onToggleLevel = (level: LevelName, on: boolean): void => {
    const levels = new Set(filter.levels);
    if (on) levels.add(level);
    else levels.delete(level);
    if (levels.size === 0) return; // at least one level stays selected
    applyFilter({ ...filter, levels });
  };
  const servicesText = filter.services.join(", ");
  const onServices = useCallback(
    (text: string) => applyFilter({ ...filter, services: parseNames(text) }),
    [applyFilter, filter],
  );

  const keep = useCallback(
    (row: LogRow) =>
      (row.level === "UNSPECIFIED" || filter.levels.has(row.level)) &&
      (filter.services.length === 0 || filter.services.includes(row.service)),
    [filter],
  );
  const list = useLiveList(data.rows, data.oldestSeq, keep, query, setQuery);
  const services = useSeenNames(data.rows, (row) => row.service);

  const stale = data.stale;
  const allLevels = filter.levels.size === LEVELS.length;
  const rate = data.errorRate;
  const errorRate = stale || !allLevels || Number.isNaN(rate.percent) ? UNKNOWN : `${rate.percent.toFixed(1)}%`;
  return (
    <Panel
      id="logs"
      title="Server logs"
      className="panel-logs"
      testId="panel-server-logs"
      stale={stale}
      hiddenOnNarrow={hiddenOnNarrow}
      extraData={{ "client-filtered": data.filteredOut, "server-filter": search.filter }}
      figures={
        <>
          <PanelFigure
            label={allLevels ? "errors, last 10 s" : "errors (needs every level)"}
            value={errorRate}
            testId="error-rate"
            hot={!stale && allLevels && rate.percent >= 5}
          />
          <PanelFigure label="lines/s" value={stale ? UNKNOWN : formatRate(data.eps)} />
        </>
      }
    >
      <div className="toolbar">
        <SearchField
          label="Search"
          value={list.query}
          onChange={list.setQuery}
          placeholder="words"
          testId="search-logs"
        />
        <NamesField
          label="Services"
          applied={servicesText}
          onApply={onServices}
          placeholder="all"
          suggestions={services}
          testId="service-filter"
        />
        <fieldset className="level-filter">
          <legend>Levels</legend>
          {LEVELS.map((level) => {
            const checked = filter.levels.has(level);
            const onlyOne = checked && filter.levels.size === 1;
            return (
              <label key={level} className={`toggle level-${level}`}>
                <input
                  type="checkbox"
                  data-testid={`level-filter-${level}`}
                  checked={checked}
                  disabled={onlyOne}
                  aria-describedby={onlyOne ? "logs-one-level" : undefined}
                  onChange={(e) => onToggleLevel(level, e.currentTarget.checked)}
                />
                {level}
              </label>
            );
          })}
          <span id="logs-one-level" className="visually-hidden">
            At least one level stays selected
          </span>
        </fieldset>
        <PauseButton list={list} what="logs" testId="pause-logs" />
      </div>
      <SearchRefused message={search.refused} testId="logs-search-refused" />
      <LiveListBody
        list={list}
        stale={stale}
        noun="lines"
        label="Log lines"
        testIds={{ status: "logs-status", list: "log-list", dialog: "log-dialog" }}
        rowHeight={rowHeight}
        renderRow={(line, open) => <Line line={line} onOpen={open} />}
        detail={(line) => ({
          title: `${line.level} · ${line.service} · ${formatClock(line.timeMs)}`,
          body: <LogDetail line={line} />,
        })}
      />
    </Panel>
  );
});
