/**
 * Session search for auditors: the filters live in the address (shareable, back-button friendly) and
 * go to GET /v1/sessions as they are; export of the same window goes through the verifiable export
 * (GET /v1/export), JSON lines to verify with `hoopctl audit verify FILE`, or CSV for spreadsheets.
 */
import type { SessionSummary } from '../../../src/shared/audit.js';
import { STATEMENT_CLASSES } from '../../../src/shared/statement.js';
import { api, query } from '../api.js';
import {
  Badge,
  Empty,
  Failure,
  Loading,
  PageTitle,
  ScrollArea,
  Time,
  useLoad,
  Who,
} from '../components/common.js';
import { duration, fromLocalInput, plural, toLocalInput } from '../format.js';
import { navigate } from '../router.js';

interface SessionList {
  sessions: SessionSummary[];
  truncated?: boolean;
}

const FIELDS = ['identity', 'kind', 'connection', 'since', 'until', 'decision', 'class', 'text'] as const;
type Filters = Partial<Record<(typeof FIELDS)[number], string>>;

function filtersOf(params: URLSearchParams): Filters {
  const filters: Filters = {};
  for (const field of FIELDS) {
    const value = params.get(field);
    if (value) filters[field] = value;
  }
  return filters;
}

function exportHref(format: 'jsonl' | 'csv', filters: Filters): string {
  // The export is of a time window (a verifiable export must hold every record in it): default the last 24 h.
  const since = filters.since ?? new Date(Date.now() - 86_400_000).toISOString();
  return `/v1/export${query({ since, until: filters.until, format })}`;
}

export function Sessions({ params }: { params: URLSearchParams }) {
  const filters = filtersOf(params);
  const key = JSON.stringify(filters);
  const result = useLoad((signal) => api<SessionList>(`/v1/sessions${query(filters)}`, { signal }), [key]);

  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const next: Filters = {};
    for (const field of FIELDS) {
      const raw = String(form.get(field) ?? '').trim();
      const value = field === 'since' || field === 'until' ? fromLocalInput(raw) : raw;
      if (value) next[field] = value;
    }
    navigate(`/console/sessions${query(next)}`);
  };

  return (
    <section aria-labelledby="page-title">
      <PageTitle>Sessions</PageTitle>
      <p class="lede">
        Every database session through this gateway — people, service accounts, CI jobs and AI agents alike.
        Open one to play it back.
      </p>
      <form key={key} class="filters card" onSubmit={submit} aria-label="Search sessions">
        <label>
          Identity (subject)
          <input
            name="identity"
            type="search"
            defaultValue={filters.identity ?? ''}
            placeholder="alice@example.com"
          />
        </label>
        <Choice
          label="Kind"
          name="kind"
          value={filters.kind}
          options={[
            ['', 'any'],
            ['human', 'people'],
            ['machine', 'machines (services, workloads)'],
          ]}
        />
        <label>
          Connection
          <input
            name="connection"
            type="search"
            defaultValue={filters.connection ?? ''}
            placeholder="prod-db"
          />
        </label>
        <label>
          From
          <input name="since" type="datetime-local" defaultValue={toLocalInput(filters.since)} />
        </label>
        <label>
          To
          <input name="until" type="datetime-local" defaultValue={toLocalInput(filters.until)} />
        </label>
        <Choice
          label="Decision"
          name="decision"
          value={filters.decision}
          options={[
            ['', 'any'],
            ['allow', 'allowed'],
            ['deny', 'denied'],
            ['approve', 'needed approval'],
          ]}
        />
        <Choice
          label="Statement class"
          name="class"
          value={filters.class}
          options={[['', 'any'], ...STATEMENT_CLASSES.map((c) => [c, c])]}
        />
        <label>
          Statement text
          <input name="text" type="search" defaultValue={filters.text ?? ''} placeholder="customers" />
        </label>
        <div class="filters-actions">
          <button type="submit" class="primary">
            Search
          </button>
          <a class="button secondary" href="/console/sessions">
            Clear
          </a>
        </div>
      </form>

      <div class="export-bar">
        <span>Export {filters.since ? 'this time window' : 'the last 24 hours'}:</span>
        <a class="button secondary" href={exportHref('jsonl', filters)} download>
          JSON lines (verifiable)
        </a>
        <a class="button secondary" href={exportHref('csv', filters)} download>
          CSV
        </a>
        <span class="muted small">
          Check a JSON lines export offline: <code>hoopctl audit verify FILE</code>
        </span>
      </div>

      {result.error ? <Failure error={result.error} retry={result.reload} /> : null}
      {result.loading && !result.data ? <Loading what="sessions" /> : null}
      {result.data ? <Results list={result.data} filtered={Object.keys(filters).length > 0} /> : null}
    </section>
  );
}

/** A select whose first choice is the filter's value (uncontrolled: the form is read on submit). */
function Choice(props: { label: string; name: string; value?: string; options: string[][] }) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        {props.options.map(([value = '', text]) => (
          <option key={value} value={value} selected={value === (props.value ?? '')}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

function Results({ list, filtered }: { list: SessionList; filtered: boolean }) {
  if (list.sessions.length === 0) {
    return (
      <Empty title={filtered ? 'No session matches these filters' : 'No sessions recorded yet'}>
        <p>
          {filtered
            ? 'Widen the time range or clear a filter.'
            : 'Sessions appear here once someone connects through the gateway (hoopctl connect, hoopctl exec, or an agent).'}
        </p>
      </Empty>
    );
  }
  return (
    <>
      <p class="muted" role="status">
        {plural(list.sessions.length, 'session')}, newest first.
        {list.truncated
          ? ' The statement filters stopped early: narrow the time range to see every match.'
          : ''}
      </p>
      <ScrollArea label="Sessions found">
        <table class="table sessions">
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Who</th>
              <th scope="col">Connection</th>
              <th scope="col">Client</th>
              <th scope="col" class="num">
                Statements
              </th>
              <th scope="col" class="num">
                Denied
              </th>
              <th scope="col">Lasted</th>
              <th scope="col">
                <span class="visually-hidden">Open</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.sessions.map((s) => (
              <tr key={s.id}>
                <td>
                  <Time iso={s.started} />
                </td>
                <td>
                  <Who identity={s.identity} />
                </td>
                <td>{s.connection ?? '—'}</td>
                <td>{s.client ? <Badge>{s.client}</Badge> : <span class="muted">—</span>}</td>
                <td class="num">{s.statements}</td>
                <td class="num">{s.denied ? <Badge tone="bad">{s.denied}</Badge> : 0}</td>
                <td>
                  {s.ended ? (
                    duration(Date.parse(s.ended) - Date.parse(s.started))
                  ) : (
                    <Badge tone="info">open</Badge>
                  )}
                </td>
                <td>
                  <a
                    href={`/console/sessions/${encodeURIComponent(s.id)}`}
                    aria-label={`Play back session ${s.id.slice(0, 8)}`}
                  >
                    Play back
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollArea>
    </>
  );
}
