/** Readiness, the drain's wait, and the metrics' label bounds: pure logic, no sockets. */
import { describe, expect, it } from 'vitest';
import { Drain } from '../../../gateway/ops/drain.js';
import { fixedCheck, ProbeCheck, Readiness } from '../../../gateway/ops/health.js';
import { createPrometheusMetrics } from '../../../gateway/ops/prometheus.js';
import { parseScrape } from '../../harness/metrics.js';

describe('readiness', () => {
  it('is ready only when every check passes, and names the ones that fail', () => {
    const drain = new Drain();
    const readiness = new Readiness().add(drain).add(fixedCheck('signing_key', { ok: true }));
    expect(readiness.report()).toMatchObject({ ready: true, failed: [] });
    drain.begin();
    expect(readiness.report()).toMatchObject({ ready: false, failed: ['draining'] });
  });

  it('a probe is not ready before its first pass, fails at once on fail(), recovers on the next pass', async () => {
    let healthy = false;
    const probe = new ProbeCheck('store', async () => {
      if (!healthy) throw new Error('read-only');
    });
    expect(probe.state().ok).toBe(false);
    await probe.start();
    expect(probe.state()).toEqual({ ok: false, message: 'read-only' });
    healthy = true;
    await (probe as unknown as { run(): Promise<void> }).run();
    expect(probe.state().ok).toBe(true);
    probe.fail('commit failed');
    expect(probe.state()).toEqual({ ok: false, message: 'commit failed' });
    probe.stop();
  });
});

describe('drain', () => {
  it('ends its wait when sessions are gone, when the grace is over, or when told to stop waiting', async () => {
    const finished = new Drain();
    finished.begin();
    let open = 2;
    setTimeout(() => {
      open = 0;
    }, 30);
    expect(await finished.waitForSessions(() => open, 10_000, 5)).toBe('finished');

    const expired = new Drain();
    expired.begin();
    expect(await expired.waitForSessions(() => 1, 20, 5)).toBe('grace_expired');

    const interrupted = new Drain();
    interrupted.begin();
    setTimeout(() => interrupted.skipGrace(), 20);
    expect(await interrupted.waitForSessions(() => 1, 60_000, 10_000)).toBe('interrupted');
  });
});

describe('metrics labels', () => {
  it('keep values outside their known sets to `other`, never a caller-chosen string', async () => {
    const p = createPrometheusMetrics({ connections: ['prod-db'], version: '1.2.3' });
    p.metrics.statement('prod-db', 'read', 'allow');
    p.metrics.statement('attacker"s-name', 'not-a-class', 'maybe');
    p.metrics.statement('prod-db', null, 'deny');
    p.metrics.authFailed('<script>');
    p.metrics.upstreamFailed('prod-db', 'FATAL: anything');
    p.metrics.upstreamFailed('prod-db', '28P01');
    const scrape = parseScrape(await p.render());
    expect(scrape.value('hoop_statements_total', { connection: 'prod-db', class: 'read' })).toBe(1);
    expect(
      scrape.value('hoop_statements_total', { connection: 'other', class: 'other', decision: 'other' }),
    ).toBe(1);
    expect(scrape.value('hoop_statements_total', { class: 'none', decision: 'deny' })).toBe(1);
    expect(scrape.value('hoop_auth_failures_total', { reason: 'other' })).toBe(1);
    expect(scrape.value('hoop_upstream_connect_errors_total', { sqlstate_class: '28' })).toBe(1);
    expect(scrape.value('hoop_upstream_connect_errors_total', { sqlstate_class: 'none' })).toBe(1);
    expect(scrape.value('hoop_build_info', { version: '1.2.3' })).toBe(1);
    const values = [...scrape.families.values()].flatMap((f) =>
      f.samples.flatMap((x) => Object.values(x.labels)),
    );
    expect(values.filter((v) => /attacker|script|FATAL/.test(v))).toEqual([]);
  });

  it('subjects are labels only when configured, and capped', async () => {
    const p = createPrometheusMetrics({ connections: ['c'], version: '1', subjects: true, maxSubjects: 2 });
    for (const s of ['a', 'b', 'c', 'd']) p.metrics.statement('c', 'read', 'allow', s);
    const scrape = parseScrape(await p.render());
    expect(scrape.value('hoop_subject_statements_total', { subject: 'a' })).toBe(1);
    expect(scrape.value('hoop_subject_statements_total', { subject: 'other' })).toBe(2);
    const off = parseScrape(await createPrometheusMetrics({ connections: ['c'], version: '1' }).render());
    expect(off.families.has('hoop_subject_statements_total')).toBe(false);
  });

  it('the exposition parser reads escaped label values and labelled histograms', () => {
    const scrape = parseScrape(
      [
        '# TYPE h histogram',
        'h_bucket{le="0.1",phase="q"} 1',
        'h_bucket{le="+Inf",phase="q"} 3',
        'h_sum{phase="q"} 0.5',
        'h_count{phase="q"} 3',
        '# TYPE c counter',
        'c_total{path="C:\\\\DIR\\\\F.TXT",msg="say \\"hi\\"\\n"} 7 1395066363000',
      ].join('\n'),
    );
    expect(scrape.count('h', { phase: 'q' })).toBe(3);
    expect(scrape.families.get('c_total')?.samples[0]?.labels).toEqual({
      path: 'C:\\DIR\\F.TXT',
      msg: 'say "hi"\n',
    });
  });
});
