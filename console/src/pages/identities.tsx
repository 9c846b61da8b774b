/**
 * Identities the gateway has seen, and the stale report (GET /v1/identities?stale=…): auditors look,
 * admins also revoke and restore (POST /v1/identities/revoke|restore) with a reason that is recorded.
 */
import { useRef, useState } from 'preact/hooks';
import type { WhoAmI } from '../../../src/shared/api.js';
import type { IdentityListResponse, IdentityView } from '../../../src/shared/identities-api.js';
import { ApiError, api } from '../api.js';
import {
  Badge,
  Empty,
  Failure,
  kindTone,
  Loading,
  PageTitle,
  ScrollArea,
  Time,
  useLoad,
} from '../components/common.js';
import { plural } from '../format.js';

const WINDOWS = ['7d', '30d', '90d'];

export function Identities({ me }: { me: WhoAmI }) {
  const [stale, setStale] = useState('30d');
  const [notice, setNotice] = useState('');
  const [target, setTarget] = useState<{ identity: IdentityView; action: 'revoke' | 'restore' }>();
  const list = useLoad(
    (signal) =>
      api<IdentityListResponse>(`/v1/identities?stale=${stale}`, { signal }).then(async (staleOnly) => {
        const all = await api<IdentityListResponse>('/v1/identities', { signal });
        return { all, staleOnly };
      }),
    [stale],
  );

  return (
    <section aria-labelledby="page-title">
      <PageTitle>Identities</PageTitle>
      <p class="lede">
        Everyone and everything that has signed in to this gateway: people, service accounts, CI workloads and
        agents.
        {me.admin ? ' As an admin you can revoke an identity (its sessions end at once) and restore it.' : ''}
      </p>
      <p class="visually-hidden" aria-live="polite">
        {notice}
      </p>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {list.error ? <Failure error={list.error} retry={list.reload} /> : null}
      {list.loading && !list.data ? <Loading what="identities" /> : null}
      {list.data ? (
        <>
          <IdentityTable
            identities={list.data.all.identities}
            admin={me.admin}
            self={me.identity.subject}
            onAct={(identity, action) => setTarget({ identity, action })}
          />
          <div class="section-head">
            <h2>Stale report</h2>
            <label class="inline">
              Idle for at least{' '}
              <select value={stale} onChange={(e) => setStale((e.target as HTMLSelectElement).value)}>
                {WINDOWS.map((w) => (
                  <option key={w} value={w}>
                    {w}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <StaleReport report={list.data.staleOnly} />
        </>
      ) : null}
      {target ? (
        <ChangeDialog
          target={target}
          onClose={(message) => {
            setTarget(undefined);
            if (message) {
              setNotice(message);
              list.reload();
            }
          }}
        />
      ) : null}
    </section>
  );
}

function IdentityTable(props: {
  identities: IdentityView[];
  admin: boolean;
  self: string;
  onAct(identity: IdentityView, action: 'revoke' | 'restore'): void;
}) {
  if (props.identities.length === 0) {
    return (
      <Empty title="No identity has signed in yet">
        <p>Identities appear here the first time they present a valid token to the gateway.</p>
      </Empty>
    );
  }
  return (
    <ScrollArea label="Identities seen">
      <table class="table">
        <thead>
          <tr>
            <th scope="col">Identity</th>
            <th scope="col">Kind</th>
            <th scope="col">Groups</th>
            <th scope="col">Last seen</th>
            <th scope="col">Status</th>
            {props.admin ? (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {props.identities.map((identity) => (
            <tr key={`${identity.issuer} ${identity.subject}`}>
              <td>
                <span class="who-name">{identity.name ?? identity.subject}</span>
                {identity.name && identity.name !== identity.subject ? (
                  <span class="muted small block">{identity.subject}</span>
                ) : null}
              </td>
              <td>
                <Badge tone={kindTone(identity.kind)}>{identity.kind}</Badge>
              </td>
              <td>{identity.groups.join(', ') || <span class="muted">none</span>}</td>
              <td>
                <Time iso={identity.last_seen} />
                <span class="muted small block">{plural(identity.idle_days, 'day')} idle</span>
              </td>
              <td>
                {identity.revoked ? (
                  <span>
                    <Badge tone="bad">revoked</Badge>
                    {identity.revoked_reason ? (
                      <span class="muted small block">{identity.revoked_reason}</span>
                    ) : null}
                  </span>
                ) : (
                  <Badge tone="good">active</Badge>
                )}
              </td>
              {props.admin ? (
                <td>
                  {identity.revoked ? (
                    <button
                      type="button"
                      class="secondary small"
                      onClick={() => props.onAct(identity, 'restore')}
                    >
                      Restore…
                    </button>
                  ) : identity.subject === props.self ? (
                    <span class="muted small">you</span>
                  ) : (
                    <button
                      type="button"
                      class="danger small"
                      onClick={() => props.onAct(identity, 'revoke')}
                    >
                      Revoke…
                    </button>
                  )}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </ScrollArea>
  );
}

function StaleReport({ report }: { report: IdentityListResponse }) {
  const rows = [
    ...report.identities.map((i) => ({
      key: `i:${i.issuer}:${i.subject}`,
      who: i.name ?? i.subject,
      status: `idle ${plural(i.idle_days, 'day')}`,
      policies: i.policies,
    })),
    ...report.policy_subjects.map((p) => ({
      key: `p:${p.subject}`,
      who: p.subject,
      status:
        p.status === 'never_seen'
          ? 'named in a policy, never seen'
          : `idle ${plural(p.idle_days ?? 0, 'day')}`,
      policies: p.policies,
    })),
  ];
  if (rows.length === 0) {
    return (
      <Empty title={`Nobody idle for ${report.stale_days ?? 30} days or more`}>
        <p>Every identity has been active recently and every subject named in a policy has signed in.</p>
      </Empty>
    );
  }
  return (
    <ScrollArea label="Stale identities">
      <table class="table">
        <thead>
          <tr>
            <th scope="col">Identity</th>
            <th scope="col">Why it is listed</th>
            <th scope="col">Named in policies</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key}>
              <td>{r.who}</td>
              <td>{r.status}</td>
              <td>{r.policies.join(', ') || <span class="muted">none (through groups)</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </ScrollArea>
  );
}

/** A modal dialog (native <dialog>: focus stays inside, Escape closes) asking for the recorded reason. */
function ChangeDialog(props: {
  target: { identity: IdentityView; action: 'revoke' | 'restore' };
  onClose(message?: string): void;
}) {
  const { identity, action } = props.target;
  const dialog = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [problem, setProblem] = useState('');
  const [busy, setBusy] = useState(false);
  const ref = (el: HTMLDialogElement | null) => {
    dialog.current = el;
    if (el && !el.open) el.showModal();
  };
  const who = identity.name ?? identity.subject;

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    if (!reason.trim()) {
      setProblem('Give a reason: it is recorded in the audit log.');
      return;
    }
    setBusy(true);
    try {
      await api(`/v1/identities/${action}`, {
        method: 'POST',
        body: { subject: identity.subject, issuer: identity.issuer, reason: reason.trim() },
      });
      props.onClose(
        action === 'revoke' ? `${who} is revoked: their sessions were ended.` : `${who} is restored.`,
      );
    } catch (err) {
      setProblem(err instanceof ApiError ? err.message : 'The change was not sent: try again.');
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} class="dialog" aria-labelledby="change-title" onClose={() => props.onClose()}>
      <form onSubmit={submit} noValidate>
        <h2 id="change-title">
          {action === 'revoke' ? 'Revoke' : 'Restore'} {who}
        </h2>
        <p class="muted">
          {action === 'revoke'
            ? 'The gateway refuses this identity from now on, even with a valid token, and ends its open sessions.'
            : 'The identity may sign in again; its policies apply as before.'}
        </p>
        <label for="change-reason">Reason (recorded in the audit log)</label>
        <textarea
          id="change-reason"
          rows={3}
          value={reason}
          aria-invalid={problem ? 'true' : undefined}
          aria-describedby="change-problem"
          onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)}
        />
        <p id="change-problem" class="problem" role="alert">
          {problem}
        </p>
        <div class="dialog-actions">
          <button type="button" class="secondary" onClick={() => props.onClose()}>
            Cancel
          </button>
          <button type="submit" class={action === 'revoke' ? 'danger' : 'primary'} disabled={busy}>
            {action === 'revoke' ? 'Revoke' : 'Restore'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
