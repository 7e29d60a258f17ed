/**
 * A modal dialog on the native `<dialog>`: the browser moves focus into it, keeps Tab inside,
 * closes it on Escape and makes the rest of the page inert. Closing it (Escape, the Close
 * button, a click on the backdrop) returns focus to what had it before.
 */
import { useEffect, useId, useRef, type ReactNode } from "react";

interface Props {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
  testId?: string;
  size?: "normal" | "wide";
}

export function Dialog({ open, title, onClose, children, testId, size = "normal" }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  const titleId = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      opener.current = document.activeElement;
      dialog.showModal();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);

  useEffect(
    () => () => {
      // Unmounted while open: give focus back all the same.
      const back = opener.current;
      if (back instanceof HTMLElement && back.isConnected) back.focus();
    },
    [],
  );

  return (
    <dialog
      ref={ref}
      className={`dialog dialog-${size}`}
      aria-labelledby={titleId}
      data-testid={testId}
      onClose={() => {
        const back = opener.current;
        opener.current = null;
        if (back instanceof HTMLElement && back.isConnected) back.focus();
        onClose();
      }}
      onClick={(e) => {
        if (e.target === ref.current) ref.current?.close(); // the backdrop
      }}
    >
      <div className="dialog-box">
        <header className="dialog-head">
          <h2 id={titleId}>{title}</h2>
          <button type="button" className="dialog-close" onClick={() => ref.current?.close()}>
            Close
          </button>
        </header>
        <div className="dialog-body">{open ? children : null}</div>
      </div>
    </dialog>
  );
}
