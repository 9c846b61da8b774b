/**
 * One session played back: its records in order on a timeline — each statement with its decision,
 * its recorded (masked) result, refusals and approvals in line. Play reveals the steps at their own
 * pace (scaled, long pauses shortened); the slider and step buttons move by hand.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AuditRecord, RecordedResult, StatementResultData } from '../../../src/shared/audit.js';
import { api } from '../api.js';
import {
  Badge,
  decisionTone,
  Empty,
  Failure,
  Loading,
  PageTitle,
  ScrollArea,
  Sql,
  Time,
  useLoad,
  Who,
} from '../components/common.js';
import { duration, plural } from '../format.js';
import { type Step, stepsOf, str } from '../steps.js';

interface SessionRecords {
  id: string;
  records: AuditRecord[];
}

const SPEEDS = [1, 4, 16, 64];

export function SessionPlayer({ id }: { id: string }) {
  const loaded = useLoad(
    (signal) => api<SessionRecords>(`/v1/sessions/${encodeURIComponent(id)}`, { signal }),
    [id],
  );
  return (
    <section aria-labelledby="page-title">
      <PageTitle
        actions={
          <>
            <a
              class="button secondary"
              href={`/v1/export?session=${encodeURIComponent(id)}&format=jsonl`}
              download
            >
              Export JSON lines
            </a>
            <a
              class="button secondary"
              href={`/v1/export?session=${encodeURIComponent(id)}&format=csv`}
              download
            >
              Export CSV
            </a>
          </>
        }
      >
        Session <code>{id.slice(0, 8)}</code>
      </PageTitle>
      <p>
        <a href="/console/sessions">← All sessions</a>
      </p>
      {loaded.error ? <Failure error={loaded.error} retry={loaded.reload} /> : null}
      {loaded.loading && !loaded.data ? <Loading what="the session" /> : null}
      {loaded.data ? <Player records={loaded.data.records} /> : null}
    </section>
  );
}

function Summary({ records, steps }: { records: AuditRecord[]; steps: Step[] }) {
  const first = records[0]!;
  const last = records.at(-1)!;
  const started = records.find((r) => r.type === 'session.started') ?? first;
  const ended = records.find((r) => r.type === 'session.ended');
  const statements = steps.filter((s) => s.record.type === 'statement');
  const denied = statements.filter((s) => s.record.data.decision === 'deny').length;
  const held = statements.filter((s) => s.record.data.decision === 'approve').length;
  return (
    <dl class="facts summary card">
      <div>
        <dt>Who</dt>
        <dd>
          <Who identity={started.identity} />
        </dd>
      </div>
      <div>
        <dt>Where</dt>
        <dd>
          connection <strong>{started.connection ?? '—'}</strong>
          {str(started.data.client) ? <span> · through {str(started.data.client)}</span> : null}
          {started.source ? <span class="muted"> · from {started.source}</span> : null}
        </dd>
      </div>
      <div>
        <dt>When</dt>
        <dd>
          <Time iso={first.time} /> →{' '}
          {ended ? <Time iso={ended.time} /> : <Badge tone="info">still open</Badge>}{' '}
          <span class="muted">({duration(Date.parse(last.time) - Date.parse(first.time))})</span>
        </dd>
      </div>
      <div>
        <dt>Statements</dt>
        <dd>
          {statements.length} · <span>{denied} denied</span> · <span>{held} held for approval</span>
        </dd>
      </div>
    </dl>
  );
}

function Player({ records }: { records: AuditRecord[] }) {
  const steps = stepsOf(records);
  const [cursor, setCursor] = useState(steps.length - 1);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(4);
  const current = useRef<HTMLLIElement>(null);

  useEffect(() => {
    if (!playing) return;
    if (cursor >= steps.length - 1) {
      setPlaying(false);
      return;
    }
    const gap = Date.parse(steps[cursor + 1]!.record.time) - Date.parse(steps[cursor]!.record.time);
    const timer = setTimeout(() => setCursor((c) => c + 1), Math.min(Math.max(gap / speed, 150), 2000));
    return () => clearTimeout(timer);
  }, [playing, cursor, speed, steps]);
  useEffect(() => {
    if (playing) current.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }, [cursor, playing]);

  if (steps.length === 0) return <Empty title="This session has no records" />;
  const t0 = Date.parse(steps[0]!.record.time);
  const t1 = Math.max(Date.parse(steps.at(-1)!.record.time), t0 + 1);
  const at = steps[cursor]!;
  const play = () => {
    if (cursor >= steps.length - 1) setCursor(0);
    setPlaying(!playing);
  };

  return (
    <>
      <Summary records={records} steps={steps} />
      <div class="player card">
        <Timeline steps={steps} cursor={cursor} t0={t0} t1={t1} />
        <label class="visually-hidden" for="position">
          Position in the session
        </label>
        <input
          id="position"
          class="scrubber"
          type="range"
          min={0}
          max={steps.length - 1}
          value={cursor}
          aria-valuetext={`step ${cursor + 1} of ${steps.length}`}
          onInput={(e) => {
            setPlaying(false);
            setCursor(Number((e.target as HTMLInputElement).value));
          }}
        />
        <div class="controls">
          <button type="button" class="primary" onClick={play} aria-pressed={playing}>
            {playing ? 'Pause' : cursor >= steps.length - 1 ? 'Play from start' : 'Play'}
          </button>
          <button type="button" onClick={() => setCursor((c) => Math.max(0, c - 1))} disabled={cursor === 0}>
            Previous
          </button>
          <button
            type="button"
            onClick={() => setCursor((c) => Math.min(steps.length - 1, c + 1))}
            disabled={cursor >= steps.length - 1}
          >
            Next
          </button>
          <label class="speed">
            Speed
            <select
              value={String(speed)}
              onChange={(e) => setSpeed(Number((e.target as HTMLSelectElement).value))}
            >
              {SPEEDS.map((s) => (
                <option key={s} value={String(s)}>
                  {s}×
                </option>
              ))}
            </select>
          </label>
          <span class="position" aria-live="polite">
            Step {cursor + 1} of {steps.length} · <Time iso={at.record.time} timeOnly />
          </span>
        </div>
      </div>
      <ol class="steps" aria-label="Session records, in order">
        {steps.slice(0, cursor + 1).map((step, i) => (
          <li
            key={step.record.seq}
            ref={i === cursor ? current : undefined}
            class={`step step-${step.record.type.replace(/\./g, '-')}${i === cursor ? ' is-current' : ''}`}
            aria-current={i === cursor ? 'step' : undefined}
          >
            <StepView step={step} />
          </li>
        ))}
      </ol>
      {cursor < steps.length - 1 ? (
        <p class="muted">{plural(steps.length - 1 - cursor, 'more record')} after this point.</p>
      ) : null}
    </>
  );
}

function toneOf(step: Step): string {
  const { record } = step;
  if (record.type === 'statement') {
    if (record.data.decision === 'deny') return 'bad';
    if (record.data.decision === 'approve') return 'warn';
    return step.result?.sqlstate && step.result.sqlstate !== '00000' ? 'bad' : 'good';
  }
  if (record.type.startsWith('approval.')) return record.type === 'approval.granted' ? 'good' : 'warn';
  return 'neutral';
}

/** The session's steps along its duration (a picture; the slider below is how to move). */
function Timeline({ steps, cursor, t0, t1 }: { steps: Step[]; cursor: number; t0: number; t1: number }) {
  const x = (step: Step) => 10 + ((Date.parse(step.record.time) - t0) / (t1 - t0)) * 980;
  return (
    <svg
      class="timeline"
      viewBox="0 0 1000 36"
      preserveAspectRatio="none"
      aria-hidden="true"
      focusable="false"
    >
      <rect class="timeline-track" x="0" y="16" width="1000" height="4" rx="2" />
      <rect class="timeline-done" x="0" y="16" width={x(steps[cursor]!)} height="4" rx="2" />
      {steps.map((step, i) => (
        <rect
          key={step.record.seq}
          class={`mark mark-${toneOf(step)}${i === cursor ? ' mark-current' : ''}`}
          x={x(step) - 3}
          y={i === cursor ? 2 : 8}
          width="6"
          height={i === cursor ? 32 : 20}
          rx="2"
        />
      ))}
    </svg>
  );
}

function StepView({ step }: { step: Step }) {
  const { record } = step;
  const d = record.data;
  const head = (title: string, extra?: preact.ComponentChildren) => (
    <div class="step-head">
      <Time iso={record.time} timeOnly />
      <span class="step-title">{title}</span>
      {extra}
    </div>
  );
  if (step.ranAfterApproval && step.result) {
    return (
      <>
        {head(
          'Ran after approval',
          <span class="muted small">{str(step.ranAfterApproval.data.text)?.slice(0, 80)}</span>,
        )}
        <Outcome result={step.result} />
      </>
    );
  }
  switch (record.type) {
    case 'statement':
      return <StatementStep step={step} />;
    case 'session.started':
      return head(
        'Session started',
        <span class="muted">{str(d.client) ? `through ${str(d.client)}` : ''}</span>,
      );
    case 'session.ended':
      return head('Session ended', <span class="muted">{str(d.reason) ?? ''}</span>);
    case 'auth.succeeded':
      return head('Signed in at the gateway', <Who identity={record.identity} />);
    case 'approval.requested':
      return head(
        `Approval #${String(d.approval_id)} requested`,
        <span class="muted">
          rule {str(d.rule)} · needs {String(d.approvals_required ?? 1)} from{' '}
          {Array.isArray(d.approvers) ? d.approvers.join(', ') : '—'}
        </span>,
      );
    case 'approval.granted':
    case 'approval.rejected':
      return (
        <>
          {head(
            `Approval #${String(d.approval_id)} ${record.type === 'approval.granted' ? 'granted' : 'rejected'}`,
            <span>
              by <Who identity={record.identity} />
            </span>,
          )}
          {str(d.comment) || str(d.reason) ? <p class="quote">“{str(d.comment) ?? str(d.reason)}”</p> : null}
        </>
      );
    case 'approval.expired':
    case 'approval.withdrawn':
      return head(
        `Approval #${String(d.approval_id)} ${record.type.slice('approval.'.length)}`,
        <span class="muted">{str(d.reason) ?? ''}</span>,
      );
    default:
      return <GenericStep record={record} />;
  }
}

/** Records this page has no special view for (tool calls of agents, newer types): type and fields. */
function GenericStep({ record }: { record: AuditRecord }) {
  const fields = Object.entries(record.data).filter(([, v]) => v !== null && v !== undefined && v !== '');
  return (
    <>
      <div class="step-head">
        <Time iso={record.time} timeOnly />
        <span class="step-title">{record.type}</span>
      </div>
      {fields.length ? (
        <dl class="generic">
          {fields.slice(0, 12).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
            </div>
          ))}
        </dl>
      ) : null}
    </>
  );
}

function StatementStep({ step }: { step: Step }) {
  const d = step.record.data;
  const decision = str(d.decision) ?? 'allow';
  const label = decision === 'deny' ? 'denied' : decision === 'approve' ? 'held for approval' : 'allowed';
  const result = step.result;
  return (
    <>
      <div class="step-head">
        <Time iso={step.record.time} timeOnly />
        <span class="step-title">Statement</span>
        <Badge tone={decisionTone(decision)}>{label}</Badge>
        {str(d.class) ? <Badge>{str(d.class)}</Badge> : null}
        <span class="muted small">
          rule {str(d.rule) ?? '—'}
          {str(d.policy) ? ` of ${str(d.policy)}` : ''}
          {d.approval_id ? ` · approval #${String(d.approval_id)}` : ''}
        </span>
      </div>
      <Sql text={str(d.text) ?? ''} />
      {decision === 'deny' ? (
        <p class="refusal">Refused: {str(step.blocked?.data.reason) ?? str(d.reason)}</p>
      ) : null}
      {result ? (
        <Outcome result={result} />
      ) : decision === 'allow' ? (
        <p class="muted small">No outcome recorded.</p>
      ) : null}
    </>
  );
}

function Outcome({ result }: { result: StatementResultData }) {
  const failed = result.sqlstate && result.sqlstate !== '00000';
  return (
    <div class="outcome">
      <p class={failed ? 'refusal' : 'muted small'}>
        {failed ? `ERROR ${result.sqlstate}: ${result.error ?? ''}` : (result.tag ?? 'done')}
        {result.rows !== undefined && result.result ? ` · ${plural(result.rows, 'row')}` : ''}
        {result.duration_ms !== undefined ? ` · ${result.duration_ms} ms` : ''}
      </p>
      {result.result?.columns.length ? (
        <ResultTable result={result.result} masked={(result.masked_columns as unknown[] | undefined) ?? []} />
      ) : null}
    </div>
  );
}

/** Which mask covered output column i (masked_columns: {column, position, mask, …}, or plain names). */
function maskOf(masked: unknown[], column: string, i: number): string | undefined {
  for (const m of masked) {
    if (typeof m === 'string' && m === column) return 'masked';
    if (m && typeof m === 'object') {
      const entry = m as { position?: number; column?: string; mask?: string };
      if (entry.position === i + 1 || (entry.position === undefined && entry.column === column))
        return entry.mask ?? 'masked';
    }
  }
  return undefined;
}

function ResultTable({ result, masked }: { result: RecordedResult; masked: unknown[] }) {
  return (
    <ScrollArea label="Recorded result (masked values)">
      <table class="table result">
        <thead>
          <tr>
            {result.columns.map((c, i) => (
              <th key={i} scope="col">
                {c} {maskOf(masked, c, i) ? <Badge tone="warn">masked: {maskOf(masked, c, i)}</Badge> : null}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {result.rows.map((row, r) => (
            <tr key={r}>
              {row.map((v, c) => (
                <td key={c}>{v === null ? <span class="muted">NULL</span> : v}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {result.truncated ? (
        <p class="muted small">
          Only the first {plural(result.rows.length, 'row')} were recorded (recording limits).
        </p>
      ) : null}
    </ScrollArea>
  );
}
