// Small shared pieces: errors, loading, confirmation dialogs, tabs.
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { ApiError } from '../api/client';

/** An error answered by the API (or any other), said plainly. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError) {
    if (error.status === 409 || error.status === 412) {
      text = `Conflict: ${error.message}. Someone changed this since you loaded it; reload to see their change, then apply yours again.`;
    } else if (error.field) {
      text = `${error.field}: ${error.message}`;
    }
  }
  return (
    <div className="error" role="alert">
      {text}
    </div>
  );
}

/** A loading placeholder announced to screen readers. */
export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="hint" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

/** A query's data once it has come; until then its loading state, or its error. */
export function QueryView<T>({
  query,
  what,
  children,
}: {
  query: { isPending: boolean; error: unknown; data: T | undefined };
  what?: string;
  children: (data: T) => ReactNode;
}) {
  if (query.error) return <ErrorBox error={query.error} />;
  if (query.data === undefined) return <Loading what={what} />;
  return <>{children(query.data)}</>;
}

/** A button that asks for confirmation in a modal dialog before acting. */
export function ConfirmButton({
  label,
  title,
  children,
  onConfirm,
  danger,
  disabled,
  confirmLabel = 'Confirm',
  onOpen,
}: {
  label: string;
  title: string;
  children?: ReactNode;
  onConfirm: () => Promise<unknown>;
  danger?: boolean;
  disabled?: boolean;
  confirmLabel?: string;
  /** Called when the dialog opens (to remember what the user saw). */
  onOpen?: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <>
      <button
        type="button"
        className={danger ? 'danger' : undefined}
        disabled={disabled}
        onClick={() => {
          setError(null);
          onOpen?.();
          ref.current?.showModal();
        }}
      >
        {label}
      </button>
      <dialog ref={ref} aria-labelledby={titleId}>
        <h2 id={titleId}>{title}</h2>
        {children}
        <ErrorBox error={error} />
        <div className="row" style={{ justifyContent: 'flex-end', marginTop: 12 }}>
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button
            type="button"
            className={danger ? 'danger' : 'primary'}
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                await onConfirm();
                ref.current?.close();
              } catch (e) {
                setError(e);
              } finally {
                setBusy(false);
              }
            }}
          >
            {confirmLabel}
          </button>
        </div>
      </dialog>
    </>
  );
}

/** Accessible tabs (arrow keys move between them). */
export function Tabs<T extends string>({
  tabs,
  current,
  onChange,
  label,
}: {
  tabs: { id: T; label: string }[];
  current: T;
  onChange: (t: T) => void;
  label: string;
}) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  return (
    <div className="tabs" role="tablist" aria-label={label}>
      {tabs.map((t, i) => (
        <button
          key={t.id}
          ref={(el) => {
            refs.current[i] = el;
          }}
          role="tab"
          id={`tab-${t.id}`}
          aria-selected={t.id === current}
          aria-controls={`panel-${t.id}`}
          tabIndex={t.id === current ? 0 : -1}
          onClick={() => onChange(t.id)}
          onKeyDown={(e) => {
            const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
            if (!d) return;
            const next = (i + d + tabs.length) % tabs.length;
            const nt = tabs[next];
            if (!nt) return;
            onChange(nt.id);
            refs.current[next]?.focus();
          }}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

/** Set the document title for a screen. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · Prompt Registry`;
  }, [title]);
}

/** A number of US dollars, to the cent or finer when small. */
export function money(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '—';
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) return String(v);
  return n === 0 ? '$0' : n < 0.01 ? `$${n.toPrecision(2)}` : `$${n.toFixed(4)}`;
}

/** The language dates and numbers follow: the user's preference (set on <html lang>). */
export function locale(): string | undefined {
  return document.documentElement.lang || undefined;
}

/** A date and time in the user's language. */
export function when(v: string | null | undefined): string {
  if (!v) return '—';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return v;
  try {
    return d.toLocaleString(locale());
  } catch {
    return d.toLocaleString();
  }
}
