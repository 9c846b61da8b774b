/**
 * The compliance report (GET /v1/report?framework=…&since=…&until=…&format=json): which controls the
 * gateway enforced over a period, the evidence counts behind each, and the exceptions with the session
 * to look at. A gateway without the report route says so instead of failing.
 */
import { ApiError, api, query } from '../api.js';
import {
  Badge,
  Empty,
  Failure,
  Loading,
  PageTitle,
  ScrollArea,
  Time,
  useLoad,
} from '../components/common.js';
import { fromLocalInput, plural, toLocalInput } from '../format.js';
import { navigate } from '../router.js';

interface Control {
  id: string;
  title: string;
  enforced: boolean;
  evidence?: Record<string, unknown>;
  exceptions?: { session?: string; seq?: number; why: string }[];
  outside_scope?: string | boolean;
}

interface ComplianceReport {
  framework: string;
  period: { from: string; to: string };
  chain_heads?: unknown;
  controls: Control[];
  signature?: unknown;
}

const FRAMEWORKS = [
  ['soc2', 'SOC 2'],
  ['pci-dss-4', 'PCI DSS 4.0'],
  ['nist-800-53', 'NIST SP 800-53'],
];

export function Report({ params }: { params: URLSearchParams }) {
  const framework = params.get('framework') ?? 'soc2';
  const since = params.get('since') ?? '30d';
  const until = params.get('until') ?? undefined;
  const search = query({ framework, since, until });
  const report = useLoad(
    (signal) =>
      api<ComplianceReport | ComplianceReport[]>(`/v1/report${search}&format=json`, { signal }).then((r) =>
        Array.isArray(r) ? r[0]! : r,
      ),
    [search],
  );
  const unavailable = report.error instanceof ApiError && report.error.status === 404;

  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const from = fromLocalInput(String(form.get('since') ?? ''));
    const to = fromLocalInput(String(form.get('until') ?? ''));
    navigate(
      `/console/report${query({ framework: String(form.get('framework')), since: from ?? '30d', until: to })}`,
    );
  };

  return (
    <section aria-labelledby="page-title">
      <PageTitle
        actions={
          unavailable ? null : (
            <a class="button secondary" href={`/v1/report${search}&format=html`} download>
              Download signed HTML
            </a>
          )
        }
      >
        Compliance report
      </PageTitle>
      <form key={search} class="filters card compact" onSubmit={submit} aria-label="Report period">
        <label>
          Framework
          <select name="framework">
            {FRAMEWORKS.map(([value, name]) => (
              <option key={value} value={value} selected={value === framework}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input
            name="since"
            type="datetime-local"
            defaultValue={/^\d{4}-/.test(since) ? toLocalInput(since) : ''}
          />
        </label>
        <label>
          To
          <input name="until" type="datetime-local" defaultValue={toLocalInput(until)} />
        </label>
        <div class="filters-actions">
          <button type="submit" class="primary">
            Build report
          </button>
        </div>
      </form>
      {unavailable ? (
        <Empty title="The compliance report is not available on this gateway">
          <p>
            This gateway does not serve <code>GET /v1/report</code>. Upgrade hoop-gateway, or build the report
            from an export with <code>hoopctl report</code>.
          </p>
        </Empty>
      ) : report.error ? (
        <Failure error={report.error} retry={report.reload} />
      ) : null}
      {report.loading && !report.data ? <Loading what="the report" /> : null}
      {report.data && !report.error ? <ReportView report={report.data} /> : null}
    </section>
  );
}

function ReportView({ report }: { report: ComplianceReport }) {
  const enforced = report.controls.filter((c) => c.enforced).length;
  return (
    <>
      <p class="lede">
        {report.framework}: <Time iso={report.period.from} /> → <Time iso={report.period.to} />. {enforced} of{' '}
        {plural(report.controls.length, 'control')} enforced{report.signature ? '; the report is signed' : ''}
        .
      </p>
      <ScrollArea label="Controls">
        <table class="table controls">
          <thead>
            <tr>
              <th scope="col">Control</th>
              <th scope="col">Enforced</th>
              <th scope="col">Evidence</th>
              <th scope="col">Exceptions</th>
            </tr>
          </thead>
          <tbody>
            {report.controls.map((control) => (
              <tr key={control.id}>
                <td>
                  <strong>{control.id}</strong>
                  <span class="block">{control.title}</span>
                  {control.outside_scope ? (
                    <span class="muted small block">
                      Outside the gateway:{' '}
                      {typeof control.outside_scope === 'string' ? control.outside_scope : 'yes'}
                    </span>
                  ) : null}
                </td>
                <td>
                  <Badge tone={control.enforced ? 'good' : 'bad'}>{control.enforced ? 'yes' : 'no'}</Badge>
                </td>
                <td>
                  <ul class="plain small">
                    {Object.entries(control.evidence ?? {}).map(([k, v]) => (
                      <li key={k}>
                        {k.replace(/_/g, ' ')}:{' '}
                        <strong>{typeof v === 'object' ? JSON.stringify(v) : String(v)}</strong>
                      </li>
                    ))}
                  </ul>
                </td>
                <td>
                  {control.exceptions?.length ? (
                    <ul class="plain small">
                      {control.exceptions.slice(0, 10).map((e, i) => (
                        <li key={i}>
                          {e.session ? (
                            <a href={`/console/sessions/${encodeURIComponent(e.session)}`}>
                              {e.session.slice(0, 8)}
                            </a>
                          ) : null}
                          {e.seq !== undefined ? ` #${e.seq}` : ''} {e.why}
                        </li>
                      ))}
                      {control.exceptions.length > 10 ? (
                        <li>… {control.exceptions.length - 10} more</li>
                      ) : null}
                    </ul>
                  ) : (
                    <span class="muted">none</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollArea>
    </>
  );
}
