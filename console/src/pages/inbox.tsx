/**
 * The reviewer's inbox: every pending statement approval and access request this person may see,
 * updating live (server-sent events from /v1/events; each event makes the page ask /v1/approvals
 * again). New requests join at the end and decided ones stay in place, marked, so nothing jumps
 * under the reader's eyes. Whether a button is offered is the API's call (`can_decide`, `why_not`).
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type {
  AccessRequestView,
  ApprovalListResponse,
  ApprovalView,
  DecideResponse,
  WhoAmI,
} from '../../../src/shared/api.js';
import { ApiError, api } from '../api.js';
import {
  Badge,
  decisionTone,
  Empty,
  Failure,
  Loading,
  PageTitle,
  Since,
  Sql,
  Time,
  Who,
} from '../components/common.js';
import { plural } from '../format.js';
import { byAge, type Item, merge, outcomeOf, type View } from '../inbox-model.js';

type Live = 'connecting' | 'live' | 'reconnecting';

export function Inbox({ me }: { me: WhoAmI }) {
  const [items, setItems] = useState<Item[] | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const [live, setLive] = useState<Live>('connecting');
  const [announcement, setAnnouncement] = useState('');
  const itemsRef = useRef<Item[] | undefined>(undefined);
  itemsRef.current = items;
  const running = useRef<Promise<void> | undefined>(undefined);
  const again = useRef(false);

  const settle = useCallback(async (left: Item[]) => {
    for (const item of left) {
      const view = await api<View>(`/v1/approvals/${encodeURIComponent(item.view.id)}`).catch(
        () => undefined,
      );
      const outcome = view ? outcomeOf(view) : { text: 'No longer pending.', tone: 'neutral' as const };
      setItems((current) =>
        current?.map((i) => (i.view.id === item.view.id && !i.outcome ? { ...i, outcome } : i)),
      );
    }
  }, []);

  const load = useCallback(async () => {
    const list = await api<ApprovalListResponse>('/v1/approvals?all=true&status=pending');
    const pending: View[] = [...list.approvals, ...list.access_requests];
    setError(undefined);
    const current = itemsRef.current;
    if (!current) {
      setItems(pending.sort(byAge).map((view) => ({ view })));
      return;
    }
    const { items: next, added, left } = merge(current, pending);
    setItems(next);
    if (added.length > 0) {
      const first = added[0]!;
      setAnnouncement(
        added.length === 1
          ? `New request #${first.id} from ${first.requester.name ?? first.requester.subject}`
          : `${added.length} new requests`,
      );
    }
    void settle(left);
  }, [settle]);

  /** One refresh at a time; a change during one asks for another right after. */
  const refresh = useCallback(() => {
    if (running.current) {
      again.current = true;
      return;
    }
    running.current = load()
      .catch((err: Error) => setError(err))
      .finally(() => {
        running.current = undefined;
        if (again.current) {
          again.current = false;
          refresh();
        }
      });
  }, [load]);

  useEffect(() => {
    refresh();
    let source: EventSource | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = () => {
      source = new EventSource('/v1/events');
      source.addEventListener('ready', () => {
        setLive('live');
        refresh();
      });
      source.addEventListener('requests', () => refresh());
      source.onerror = () => {
        setLive('reconnecting');
        if (source?.readyState === EventSource.CLOSED) {
          // Refused (signed out, gateway restarting): check the sign-in, then try again.
          void api('/v1/whoami').catch(() => undefined);
          timer = setTimeout(open, 5000);
        }
      };
    };
    open();
    return () => {
      clearTimeout(timer);
      source?.close();
    };
  }, [refresh]);

  const decided = (id: string, outcome: Item['outcome']) =>
    setItems((current) => current?.map((i) => (i.view.id === id ? { ...i, outcome } : i)));
  const clearDecided = () => setItems((current) => current?.filter((i) => !i.outcome));

  const pendingCount = items?.filter((i) => !i.outcome).length ?? 0;
  const decidedCount = (items?.length ?? 0) - pendingCount;
  return (
    <section class="inbox" aria-labelledby="page-title">
      <PageTitle
        actions={
          <>
            <LiveBadge live={live} />
            {decidedCount > 0 ? (
              <button type="button" class="secondary" onClick={clearDecided}>
                Clear {plural(decidedCount, 'decided request')}
              </button>
            ) : null}
          </>
        }
      >
        Inbox
      </PageTitle>
      <p class="lede">
        {me.review
          ? 'Statements and access requests waiting for a decision. New ones appear here as they arrive.'
          : 'Your own requests waiting for a reviewer. They update here as reviewers decide.'}
      </p>
      <p class="visually-hidden" aria-live="polite">
        {announcement}
      </p>
      {error ? <Failure error={error} retry={refresh} /> : null}
      {!items && !error ? <Loading what="pending requests" /> : null}
      {items && items.length === 0 ? (
        <Empty title="Nothing is waiting for a decision">
          <p>
            When someone runs a statement a rule holds for review, or asks for time-boxed access, it appears
            here at once. You can leave this page open.
          </p>
        </Empty>
      ) : null}
      {items && items.length > 0 ? (
        <ol class="requests">
          {items.map((item) => (
            <li key={item.view.id}>
              {item.view.kind === 'statement' ? (
                <StatementCard view={item.view} me={me} outcome={item.outcome} onDecided={decided} />
              ) : (
                <AccessCard view={item.view} outcome={item.outcome} onDecided={decided} />
              )}
            </li>
          ))}
        </ol>
      ) : null}
    </section>
  );
}

/** How long it has waited; once decided, just that (same place, same height: nothing moves). */
function Waited({ iso, decided }: { iso: string; decided: boolean }) {
  return (
    <span class="waited">
      {decided ? (
        'decided'
      ) : (
        <>
          waiting <Since iso={iso} />
        </>
      )}
    </span>
  );
}

function LiveBadge({ live }: { live: Live }) {
  const text = live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return (
    <span class={`live live-${live}`} role="status">
      <span class="live-dot" aria-hidden="true" />
      {text}
    </span>
  );
}

function Masking({ view }: { view: ApprovalView }) {
  if (!view.masking) return <span class="muted">not known</span>;
  if (view.masking.length === 0) return <span>none: results are shown in clear</span>;
  return (
    <ul class="inline-list">
      {view.masking.map((m) => (
        <li key={`${m.policy}:${m.mask}:${(m.columns ?? m.tags ?? []).join(',')}`}>
          <code>{(m.columns ?? m.tags ?? []).join(', ')}</code> → {m.mask}
        </li>
      ))}
    </ul>
  );
}

function StatementCard(props: {
  view: ApprovalView;
  me: WhoAmI;
  outcome?: Item['outcome'];
  onDecided(id: string, outcome: Item['outcome']): void;
}) {
  const { view, me } = props;
  const heading = `request-${view.id}`;
  const decisions = view.decisions.filter((d) => d.decision === 'approve').length;
  return (
    <article class={`card request${props.outcome ? ' is-decided' : ''}`} aria-labelledby={heading}>
      <CardHead
        heading={heading}
        title={`Statement #${view.id}`}
        status={view.status}
        created={view.created_at}
        decided={Boolean(props.outcome)}
      />
      <dl class="facts">
        <div>
          <dt>Asked by</dt>
          <dd>
            <Who identity={view.requester} />
            {view.requester.groups.length ? (
              <span class="muted"> · groups {view.requester.groups.join(', ')}</span>
            ) : null}
          </dd>
        </div>
        <div>
          <dt>Where</dt>
          <dd>
            connection <strong>{view.connection}</strong>
            {view.session ? (
              <>
                {' '}
                · session{' '}
                {me.audit ? (
                  <a href={`/console/sessions/${encodeURIComponent(view.session)}`}>
                    {view.session.slice(0, 8)}
                  </a>
                ) : (
                  <code>{view.session.slice(0, 8)}</code>
                )}
              </>
            ) : null}
            {view.mode === 'deferred' ? <span class="muted"> · filed with exec --no-wait</span> : null}
          </dd>
        </div>
        <div>
          <dt>Rule</dt>
          <dd>
            <strong>{view.rule}</strong>
            {view.policy ? <span> of policy {view.policy}</span> : null}
            <span class="muted">
              {' '}
              · needs {plural(view.approvals_required, 'approver')} from {view.approvers.join(', ')}
              {decisions > 0 ? ` (${decisions} so far)` : ''}
            </span>
          </dd>
        </div>
        <div>
          <dt>search_path</dt>
          <dd>
            {view.search_path === undefined ? (
              <span class="muted">not known exactly</span>
            ) : (
              <code>{view.search_path}</code>
            )}
          </dd>
        </div>
        <div>
          <dt>Masking</dt>
          <dd>
            <Masking view={view} />
          </dd>
        </div>
        <div>
          <dt>Expires</dt>
          <dd>
            <Time iso={view.expires_at} />
          </dd>
        </div>
      </dl>
      <Sql text={view.statement} label={`Statement of request #${view.id}`} />
      {view.params?.length ? <Params params={view.params} /> : null}
      <Decide
        id={view.id}
        canDecide={view.can_decide}
        whyNot={view.why_not}
        outcome={props.outcome}
        onDecided={props.onDecided}
      />
    </article>
  );
}

function Params({ params }: { params: (string | null)[] }) {
  return (
    <table class="params">
      <caption>Bound parameters</caption>
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {params.map((p, i) => (
          <tr key={i}>
            <td>${i + 1}</td>
            <td>{p === null ? <span class="muted">NULL</span> : <code>{p}</code>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AccessCard(props: {
  view: AccessRequestView;
  outcome?: Item['outcome'];
  onDecided(id: string, outcome: Item['outcome']): void;
}) {
  const { view } = props;
  const heading = `request-${view.id}`;
  return (
    <article class={`card request${props.outcome ? ' is-decided' : ''}`} aria-labelledby={heading}>
      <CardHead
        heading={heading}
        title={`Access request ${view.id}`}
        status={view.status}
        created={view.created_at}
        decided={Boolean(props.outcome)}
      />
      <dl class="facts">
        <div>
          <dt>Asked by</dt>
          <dd>
            <Who identity={view.requester} />
          </dd>
        </div>
        <div>
          <dt>Wants</dt>
          <dd>
            policy <strong>{view.policy}</strong> on connection <strong>{view.connection}</strong> for{' '}
            <strong>{view.duration}</strong>
          </dd>
        </div>
        <div>
          <dt>Because</dt>
          <dd class="reason">{view.reason}</dd>
        </div>
      </dl>
      <Decide
        id={view.id}
        canDecide={view.can_decide}
        whyNot={view.why_not}
        outcome={props.outcome}
        onDecided={props.onDecided}
      />
    </article>
  );
}

/** Approve or reject with a reason; or why this person cannot; or what became of it. Same height each way. */
function Decide(props: {
  id: string;
  canDecide: boolean;
  whyNot?: string;
  outcome?: Item['outcome'];
  onDecided(id: string, outcome: Item['outcome']): void;
}) {
  const [reason, setReason] = useState('');
  const [problem, setProblem] = useState('');
  const [busy, setBusy] = useState(false);
  const field = useRef<HTMLTextAreaElement>(null);
  const fieldId = `reason-${props.id}`;

  if (props.outcome) {
    return (
      <div class={`decide decide-done tone-${props.outcome.tone}`} role="status">
        <p>{props.outcome.text}</p>
      </div>
    );
  }
  if (!props.canDecide) {
    return (
      <div class="decide decide-not">
        <p>
          <strong>You cannot decide this request.</strong>{' '}
          {props.whyNot ?? 'The gateway does not offer it to you.'}
        </p>
        <p class="muted small">
          Separation of duties: the gateway decides who may approve; the console only shows it.
        </p>
      </div>
    );
  }

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const action = (event.submitter as HTMLButtonElement | null)?.value === 'reject' ? 'reject' : 'approve';
    const text = reason.trim();
    if (!text) {
      setProblem('Give a reason: it is recorded with your decision.');
      field.current?.focus();
      return;
    }
    setBusy(true);
    setProblem('');
    try {
      const body = action === 'reject' ? { reason: text } : { comment: text };
      const result = await api<DecideResponse>(`/v1/approvals/${encodeURIComponent(props.id)}/${action}`, {
        method: 'POST',
        body,
      });
      props.onDecided(props.id, describeDecision(action, result));
    } catch (err) {
      setProblem(err instanceof ApiError ? err.message : 'The decision was not sent: try again.');
      setBusy(false);
    }
  };

  return (
    <form class="decide" onSubmit={submit} noValidate>
      <label for={fieldId}>Reason (recorded with your decision)</label>
      <textarea
        id={fieldId}
        ref={field}
        rows={2}
        value={reason}
        required
        aria-invalid={problem ? 'true' : undefined}
        aria-describedby={problem ? `${fieldId}-problem` : undefined}
        onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)}
      />
      <div class="decide-row">
        <button type="submit" class="primary" value="approve" disabled={busy}>
          Approve
        </button>
        <button type="submit" class="danger" value="reject" disabled={busy}>
          Reject
        </button>
        <span id={`${fieldId}-problem`} class="problem" role="alert">
          {problem}
        </span>
      </div>
    </form>
  );
}

function describeDecision(action: 'approve' | 'reject', result: DecideResponse): Item['outcome'] {
  const name = result.id.startsWith('access-') ? result.id : `#${result.id}`;
  if (action === 'reject') return { text: `You rejected ${name}. The requester is told why.`, tone: 'bad' };
  if (result.status === 'pending') {
    return {
      text: `You approved ${name} (${result.approvals} of ${result.approvals_required}): it needs another approver.`,
      tone: 'neutral',
    };
  }
  if (result.id.startsWith('access-'))
    return { text: `You approved ${result.id}: the access is granted now.`, tone: 'good' };
  return { text: `You approved #${result.id}: the statement runs now.`, tone: 'good' };
}

/** A request card's head: what it is, its status (or "decided" once this reviewer decided), how long it waited. */
function CardHead(props: {
  heading: string;
  title: string;
  status: string;
  created: string;
  decided: boolean;
}) {
  return (
    <header class="card-head">
      <h2 id={props.heading}>{props.title}</h2>
      <Badge tone={decisionTone(props.decided ? 'neutral' : props.status)}>
        {props.decided ? 'decided' : props.status}
      </Badge>
      <Waited iso={props.created} decided={props.decided} />
    </header>
  );
}
