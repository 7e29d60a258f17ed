/** ServerLogsPanel: a live tail of `server_logs`, newest first, with a level filter. */
import { memo } from "react";
import { formatClock, formatMs } from "../format";
import { LEVELS, type ErrorRate, type LevelName, type LogRow } from "../state/logs";

const Line = memo(function Line({ line }: { line: LogRow }) {
  return (
    <li className={`log level-${line.level}`} data-testid="log-row" data-level={line.level} data-seq={line.seq}>
      <span className="time">{formatClock(line.timeMs)}</span>
      <span className="level">{line.level}</span>
      <span className="service" title={line.host}>
        {line.service}
      </span>
      <span className="message">
        {line.endpoint ? <span className="endpoint">{line.endpoint} </span> : null}
        {line.statusCode ? <span className="status-code">{line.statusCode} </span> : null}
        {line.message}
      </span>
      <span className="num latency">{line.latencyMs ? formatMs(line.latencyMs) : ""}</span>
    </li>
  );
});

interface Props {
  lines: readonly LogRow[];
  levels: ReadonlySet<LevelName>;
  errorRate: ErrorRate;
  eps: string;
  /** Lines the server sent although the filter excludes them (dropped here). */
  filteredOut: number;
  onToggleLevel: (level: LevelName, on: boolean) => void;
}

export function ServerLogsPanel({ lines, levels, errorRate, eps, filteredOut, onToggleLevel }: Props) {
  return (
    <section
      className="panel"
      data-testid="panel-server-logs"
      data-client-filtered={filteredOut}
      aria-labelledby="logs-title"
    >
      <header className="panel-head">
        <h2 id="logs-title">Server logs</h2>
        <span className="panel-meta">
          {levels.size === LEVELS.length ? (
            <span
              className={`error-rate ${errorRate.percent >= 5 ? "hot" : ""}`}
              data-testid="error-rate"
              title={`${errorRate.errors} ERROR of ${errorRate.lines} lines received in the last 10 s`}
            >
              errors {errorRate.percent.toFixed(1)}%
            </span>
          ) : (
            // With some levels filtered out at the server, a rate over what arrives would mislead.
            <span
              className="error-rate"
              data-testid="error-rate"
              title="The error rate needs every level; select all levels to see it"
            >
              errors –
            </span>
          )}{" "}
          · {eps}/s
        </span>
      </header>
      <fieldset className="level-filter">
        <legend>Levels</legend>
        {LEVELS.map((level) => {
          const checked = levels.has(level);
          const onlyOne = checked && levels.size === 1;
          return (
            <label key={level} className={`toggle level-${level}`}>
              <input
                type="checkbox"
                data-testid={`level-filter-${level}`}
                checked={checked}
                disabled={onlyOne}
                title={onlyOne ? "At least one level stays selected" : undefined}
                onChange={(e) => onToggleLevel(level, e.currentTarget.checked)}
              />
              {level}
            </label>
          );
        })}
      </fieldset>
      <div className="panel-body">
        {lines.length === 0 ? (
          <p className="empty">Waiting for log lines…</p>
        ) : (
          <ul className="logs">
            {lines.map((line) => (
              <Line key={line.seq} line={line} />
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}
