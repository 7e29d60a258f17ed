/** The stream notices: the last gaps, server errors, position resets and lost connections. */
import { formatDateTime } from "../format";
import type { Notice, NoticeKind } from "../state/store";
import { Dialog } from "./Dialog";

const KIND_LABELS: Record<NoticeKind, string> = {
  gap: "gap",
  error: "error",
  reset: "reset",
  connection: "connection",
};

export function NoticesDialog({
  open,
  notices,
  onClose,
}: {
  open: boolean;
  notices: readonly Notice[];
  onClose: () => void;
}) {
  return (
    <Dialog open={open} title="Stream notices" onClose={onClose} testId="notices-dialog" size="wide">
      {notices.length === 0 ? (
        <p className="empty">No gaps, errors, resets or lost connections since the page opened.</p>
      ) : (
        <ol className="notices">
          {notices.map((n) => (
            <li key={n.seq} className={`notice notice-${n.kind}`}>
              <span className="num time">{formatDateTime(n.timeMs)}</span>
              <span className="notice-kind">{KIND_LABELS[n.kind]}</span>
              <span className="notice-text">{n.text}</span>
            </li>
          ))}
        </ol>
      )}
    </Dialog>
  );
}
