/**
 * The banner under the header whenever a subscription is not connected: what is wrong, when the
 * page tries again and how old the data on screen is. It is not a live region (its countdown
 * changes every second); the header's `role="status"` word announces the change itself.
 */
import type { ConnectionSummary } from "../state/connection";

export function ConnectionBanner({ summary, onShowNotices }: { summary: ConnectionSummary; onShowNotices: () => void }) {
  if (!summary.banner) return null;
  return (
    <div className={`banner banner-${summary.state}`} data-testid="connection-banner" data-state={summary.state}>
      <span className="banner-text">{summary.banner}</span>
      {summary.state === "connecting" ? null : (
        <button type="button" className="banner-button" onClick={onShowNotices}>
          Details
        </button>
      )}
    </div>
  );
}
