/** Small pieces every page uses: times, SQL, badges, and the empty / error / loading states. */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Identity } from '../../../src/shared/identity.js';
import { duration, localTime, utcTime } from '../format.js';
import { tokenize } from '../sql.js';

/** A time in the viewer's zone; UTC on hover. */
export function Time({ iso, timeOnly }: { iso: string; timeOnly?: boolean }) {
  return (
    <time dateTime={iso} title={utcTime(iso)}>
      {localTime(iso, { timeOnly })}
    </time>
  );
}

/** Time since `iso`, ticking every second (fixed width: it never pushes anything around). */
export function Since({ iso }: { iso: string }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return (
    <span class="ticking" title={utcTime(iso)}>
      {duration(now - Date.parse(iso))}
    </span>
  );
}

export function Sql({ text, label }: { text: string; label?: string }) {
  return (
    <pre class="sql" title={label}>
      <code>
        {tokenize(text).map((t, i) =>
          t.type === 'text' ? (
            t.text
          ) : (
            <span key={i} class={`tk-${t.type}`}>
              {t.text}
            </span>
          ),
        )}
      </code>
    </pre>
  );
}

/** A wide table's frame: it scrolls sideways on a phone, and keyboard users can scroll it too. */
export function ScrollArea({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard (WCAG 2.1.1)
    <section class="table-scroll" tabIndex={0} aria-label={label}>
      {children}
    </section>
  );
}

export type Tone = 'neutral' | 'good' | 'bad' | 'warn' | 'info';

export function Badge({ tone = 'neutral', children }: { tone?: Tone; children: ComponentChildren }) {
  return <span class={`badge badge-${tone}`}>{children}</span>;
}

export function kindTone(kind: string | undefined): Tone {
  return kind === 'human' ? 'info' : 'neutral';
}

export function decisionTone(decision: string | undefined): Tone {
  if (decision === 'allow' || decision === 'approved' || decision === 'used') return 'good';
  if (decision === 'deny' || decision === 'rejected') return 'bad';
  if (decision === 'approve' || decision === 'pending') return 'warn';
  return 'neutral';
}

/** Who: display name, subject, and what kind of identity. */
export function Who({ identity }: { identity?: Pick<Identity, 'subject' | 'name'> & { kind?: string } }) {
  if (!identity) return <span class="muted">the gateway</span>;
  return (
    <span class="who">
      <span class="who-name">{identity.name ?? identity.subject}</span>
      {identity.name && identity.name !== identity.subject ? (
        <span class="muted"> ({identity.subject})</span>
      ) : null}{' '}
      {identity.kind ? <Badge tone={kindTone(identity.kind)}>{identity.kind}</Badge> : null}
    </span>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="state state-empty">
      <p class="state-title">{title}</p>
      {children ? <div class="state-body">{children}</div> : null}
    </div>
  );
}

export function Failure({ error, retry }: { error: Error; retry?: () => void }) {
  const status = (error as { status?: number }).status;
  const advice =
    status === 403
      ? 'Ask an administrator for the role this page needs (a policy with review, audit or admin: true).'
      : status === 0
        ? 'Check that the gateway is running and reachable.'
        : undefined;
  return (
    <div class="state state-error" role="alert">
      <p class="state-title">{status === 403 ? 'Not allowed' : 'Something went wrong'}</p>
      <p>{error.message}</p>
      {advice ? <p class="muted">{advice}</p> : null}
      {retry ? (
        <button type="button" onClick={retry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      Loading {what}…
    </p>
  );
}

/** The page's heading: focused after navigation so screen readers announce the new page. */
export function PageTitle({
  children,
  actions,
}: {
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <div class="page-head">
      <h1 tabIndex={-1} id="page-title">
        {children}
      </h1>
      {actions ? <div class="page-actions">{actions}</div> : null}
    </div>
  );
}

/** A fetch tied to the component: data, error, loading, and a way to run it again. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ data, loading: false });
      },
      (error: Error) => {
        if (!controller.signal.aborted) setState({ error, loading: false });
      },
    );
    return () => controller.abort();
  }, [...deps, round]);
  return { ...state, reload: () => setRound((r) => r + 1) };
}
