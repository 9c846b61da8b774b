import { describe, expect, it } from 'vitest';
import { clip, createAuthFailureRecorder, sourceKey } from '../../../gateway/audit/auth-failures.js';
import type { AuditRecordInput } from '../../../src/shared/audit.js';

describe('failed authentications without an identity: counted per source and window', () => {
  const recorder = (maxSources = 3) => {
    let now = Date.UTC(2026, 0, 1);
    const records: AuditRecordInput[] = [];
    const r = createAuthFailureRecorder((input) => records.push(input), {
      windowMs: 60_000,
      maxSources,
      now: () => now,
    });
    return { r, records, advance: (ms: number) => (now += ms) };
  };

  it('records the first failure of a source at once, the rest as one counted record at the window end', () => {
    const { r, records, advance } = recorder();
    for (let i = 0; i < 1000; i++) r.failed(`203.0.113.7:${40000 + i}`, i % 4 ? 'malformed' : 'expired');
    expect(records).toEqual([
      {
        type: 'auth.failed',
        source: '203.0.113.7',
        data: { reason: 'expired', count: 1, window_start: '2026-01-01T00:00:00.000Z' },
      },
    ]);
    advance(60_000);
    r.flush();
    expect(records).toHaveLength(2);
    expect(records[1]).toEqual({
      type: 'auth.failed',
      source: '203.0.113.7',
      data: {
        reason: 'malformed',
        count: 999,
        reasons: { malformed: 750, expired: 250 },
        window_start: '2026-01-01T00:00:00.000Z',
        window_end: '2026-01-01T00:01:00.000Z',
        aggregated: true,
      },
    });
    r.flush(); // an empty window adds nothing
    expect(records).toHaveLength(2);
    r.stop();
  });

  it('tracks at most maxSources per window; the rest are counted together under *', () => {
    const { r, records } = recorder(3);
    for (let host = 1; host <= 50; host++)
      for (let i = 0; i < 10; i++) r.failed(`198.51.100.${host}:1234`, 'bad_signature');
    r.flush();
    // 3 sources recorded at once + 3 aggregates + one for everyone else: 2 × maxSources + 1.
    expect(records).toHaveLength(7);
    expect(records.filter((x) => x.source === '*')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ count: 470, aggregated: true }) }),
    ]);
    const total = records.reduce((n, x) => n + Number(x.data.count), 0);
    expect(total).toBe(500);
    r.stop();
  });

  it('counts an IPv6 flood by /64 and never records the port', () => {
    expect(sourceKey('[2001:db8:1:2:aaaa::1]:443')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('[2001:db8:1:2:bbbb:cccc:dddd:eeee]:1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('192.0.2.1:5555')).toBe('192.0.2.1');
    expect(sourceKey(`${'x'.repeat(500)}:1`).length).toBeLessThanOrEqual(64);
  });

  it('clips text to a bound, marking the cut', () => {
    expect(clip('short')).toBe('short');
    expect(clip('y'.repeat(1000), 200)).toHaveLength(200);
    expect(clip('y'.repeat(1000), 200).endsWith('…')).toBe(true);
  });
});
