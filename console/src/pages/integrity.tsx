/**
 * The audit log's integrity, as the gateway checks it now (GET /v1/audit/verify): the hash chain
 * recomputed, the signed checkpoints that cover it, and whatever else this gateway's verification
 * reports (trusted keys, witnesses). Offline, the same check runs on an export: hoopctl audit verify FILE.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Badge, Failure, Loading, PageTitle, Time, useLoad } from '../components/common.js';

type Verify = { ok: boolean; [field: string]: unknown };

const KNOWN: Record<string, string> = {
  count: 'Records checked',
  first_seq: 'First record',
  last_seq: 'Last record',
  checkpoints: 'Signed checkpoints',
  trusted_checkpoints: 'Trusted checkpoints',
  uncovered: 'Records not yet covered by a checkpoint',
  witnesses: 'Witnesses',
  keys: 'Signing keys',
  seq: 'First bad record',
  reason: 'Why',
};

const label = (key: string) => KNOWN[key] ?? key.replace(/_/g, ' ');

function Value({ value }: { value: unknown }) {
  if (typeof value === 'boolean') return <>{value ? 'yes' : 'no'}</>;
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) return <Time iso={value} />;
  if (typeof value === 'string' || typeof value === 'number') return <>{String(value)}</>;
  if (Array.isArray(value)) {
    if (value.length === 0) return <span class="muted">none</span>;
    return (
      <ul class="plain">
        {value.map((v, i) => (
          <li key={i}>{typeof v === 'object' ? <code>{JSON.stringify(v)}</code> : String(v)}</li>
        ))}
      </ul>
    );
  }
  return <code>{JSON.stringify(value)}</code>;
}

export function Integrity() {
  const [checkedAt, setCheckedAt] = useState<string>();
  const result = useLoad(async (signal) => {
    const verify = await api<Verify>('/v1/audit/verify', { signal });
    setCheckedAt(new Date().toISOString());
    return verify;
  }, []);
  const data = result.data;
  const fields = data ? Object.entries(data).filter(([k]) => k !== 'ok') : [];
  return (
    <section aria-labelledby="page-title">
      <PageTitle
        actions={
          <button type="button" class="primary" onClick={result.reload} disabled={result.loading}>
            {result.loading ? 'Verifying…' : 'Verify again'}
          </button>
        }
      >
        Integrity
      </PageTitle>
      <p class="lede">
        The gateway recomputes the hash chain of the whole audit log and checks it against its signed
        checkpoints. An edited, deleted or inserted record breaks the chain at that record.
      </p>
      {result.error ? <Failure error={result.error} retry={result.reload} /> : null}
      {result.loading && !data ? <Loading what="the verification (it reads the whole log)" /> : null}
      {data ? (
        <div class={`card verdict ${data.ok ? 'verdict-ok' : 'verdict-bad'}`}>
          <p class="verdict-line" role="status">
            <Badge tone={data.ok ? 'good' : 'bad'}>{data.ok ? 'intact' : 'broken'}</Badge>{' '}
            {data.ok
              ? 'The audit log is intact: every record chains to the one before it, under signed checkpoints.'
              : `The audit log is broken at record ${String(data.seq)}: ${String(data.reason)}`}
          </p>
          {checkedAt ? (
            <p class="muted small">
              Last verified <Time iso={checkedAt} />
            </p>
          ) : null}
          <dl class="facts">
            {fields.map(([key, value]) => (
              <div key={key}>
                <dt>{label(key)}</dt>
                <dd>
                  <Value value={value} />
                </dd>
              </div>
            ))}
          </dl>
          {!data.ok ? (
            <p>
              Keep the evidence: export the log now (<code>hoopctl sessions export</code>), and compare it
              with a witness copy (<code>hoopctl audit verify --witness FILE</code>).
            </p>
          ) : null}
        </div>
      ) : null}
      <div class="card howto">
        <h2>Check it yourself</h2>
        <p>
          Export a time window from <a href="/console/sessions">Sessions</a> as JSON lines and verify it
          offline, with the gateway's public key pinned:{' '}
          <code class="nowrap">hoopctl audit verify FILE --public-key audit-signing-key.pub.pem</code>.
        </p>
      </div>
    </section>
  );
}
