/**
 * The web console in a real browser (Debian's Chromium through playwright-core) against the real
 * gateway, dev IdP and PostgreSQL of the harness: sign in through the IdP's own pages, watch a held
 * psql statement arrive live, approve it and see psql finish, be refused one's own request with the
 * reason, find and play back the session, export it and verify the export with `hoopctl audit verify`,
 * the integrity, identities and report pages — each checked with axe-core, under the strict CSP, and
 * photographed into .cache/artifacts/console/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';
import {
  axeViolations,
  type Browser,
  launchBrowser,
  pageViolations,
  screenshot,
} from '../harness/browser.js';
import { DEV_USERS } from '../harness/idp.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
    masking:
      - { columns: [public.customers.ssn], mask: partial }
  - name: reviewers
    groups: [db-reviewers]
    connections: [prod-db]
    review: true
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: peer-review, approve: [write], approvers: [db-reviewers] }
  - name: auditors
    groups: [audit]
    audit: true
    admin: true
  - name: break-glass
    groups: [engineering]
    connections: [prod-db]
    requestable: true
    max_duration: 2h
    rules:
      - { name: incident-writes, allow: [read, write, transaction, session] }
`;

const SHOTS = 'console';

interface Running {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function psql(url: string, ...commands: string[]): Running {
  const args = ['-X', '-At', '-v', 'ON_ERROR_STOP=1', url, ...commands.flatMap((c) => ['-c', c])];
  const child = spawn('psql', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  return { child, done: new Promise((r) => child.on('exit', (code) => r({ code, stdout, stderr }))) };
}

async function expectAccessible(page: Page, what: string): Promise<void> {
  const violations = await axeViolations(page);
  expect(violations, `axe-core on ${what}: ${JSON.stringify(violations, null, 2)}`).toEqual([]);
}

/** Through the dev IdP's own login and consent pages, as a person would. */
async function signIn(page: Page, username: string): Promise<void> {
  const user = DEV_USERS.find((u) => u.username === username)!;
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

describe('the web console in Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let aliceHome: string;
  let ritaHome: string;
  const tunnels: Tunnel[] = [];
  const running: Running[] = [];

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    [aliceHome, ritaHome, browser] = await Promise.all([
      stack.login('alice@example.com'),
      stack.login('rita@example.com'),
      launchBrowser({ trust: [stack.certs!.cert] }),
    ]);
    page = browser.page;
  });

  afterAll(async () => {
    for (const r of running) r.child.kill('SIGKILL');
    for (const t of tunnels) t.stop();
    await browser?.close();
    await stack?.stop();
  });

  it('serves the console with a strict CSP and signs a reviewer in through the IdP', async () => {
    const response = await page.goto(`${stack.gatewayUrl}/console/`);
    const csp = response!.headers()['content-security-policy'] ?? '';
    for (const directive of [
      "script-src 'self'",
      "style-src 'self'",
      "object-src 'none'",
      "frame-ancestors 'none'",
    ])
      expect(csp).toContain(directive);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // The violation detector works: an inline style attribute is refused and reported.
    await page.evaluate(() => document.body.setAttribute('style', 'color: red'));
    await expect.poll(() => pageViolations(page).then((v) => v.length)).toBe(1);
    await expect.poll(() => browser.violations.length).toBeGreaterThan(0);
    browser.violations.length = 0;
    await expectAccessible(page, 'the sign-in page');
    await screenshot(page, SHOTS, 'signin');

    await signIn(page, 'rita@example.com');
    await page.getByRole('heading', { name: 'Inbox' }).waitFor();
    await page.getByText('Nothing is waiting for a decision').waitFor();
    expect(page.url()).toBe(`${stack.gatewayUrl}/console/inbox`);
    const cookie = (await browser.context.cookies()).find((c) => c.name === '__Host-hoop-console');
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    await expectAccessible(page, 'the empty inbox');
  });

  it('shows a held statement live, and approving it lets the waiting psql finish', async () => {
    // Live means no reload: a mark on the window survives; layout shifts are counted from here on.
    await page.evaluate(() => {
      const w = window as unknown as { __same: boolean; __shift: number };
      w.__same = true;
      w.__shift = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as (PerformanceEntry & {
          value: number;
          hadRecentInput: boolean;
        })[])
          if (!e.hadRecentInput) w.__shift += e.value;
      }).observe({ type: 'layout-shift', buffered: false });
    });
    const asked = stack.cli(aliceHome, [
      'request',
      'prod-db',
      '--policy',
      'break-glass',
      '--for',
      '1h',
      '--reason',
      'INC-7: orders stuck in checkout',
    ]);
    const tunnel = await stack.connect(aliceHome);
    tunnels.push(tunnel);
    const held = psql(
      tunnel.url,
      'select id, name, ssn from public.customers order by id limit 3',
      'update public.orders set total_cents = total_cents + 1 where id = 1',
    );
    running.push(held);

    const card = page.getByRole('article').filter({ hasText: 'update public.orders' });
    await card.waitFor({ timeout: 30_000 });
    await card.getByText('alice@example.com').first().waitFor();
    await card.getByText('changes-need-review').waitFor();
    await card.getByText('public.customers.ssn').waitFor(); // the masking her results fall under
    expect((await asked).code).toBe(0);
    const access = page.getByRole('article').filter({ hasText: 'INC-7: orders stuck in checkout' });
    await access.getByText('break-glass').waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => (window as unknown as { __same?: boolean }).__same)).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { __shift: number }).__shift)).toBe(0);
    await expectAccessible(page, 'the inbox with a pending statement');
    await screenshot(page, SHOTS, 'inbox');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, SHOTS, 'inbox-phone');
    await expectAccessible(page, 'the inbox on a phone');
    await page.setViewportSize({ width: 1280, height: 860 });

    // A decision needs a reason; then psql, which has been waiting all along, gets its answer.
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.getByText('Give a reason').waitFor();
    await card.getByLabel('Reason').fill('ticket OPS-42: fix the order total');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.getByText('the statement runs now').waitFor();
    const result = await held.done;
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('UPDATE 1');

    await access.getByLabel('Reason').fill('use the runbook instead');
    await access.getByRole('button', { name: 'Reject' }).click();
    await access.getByText('You rejected access-').waitFor();
  });

  it('explains why a reviewer cannot approve their own request', async () => {
    const tunnel = await stack.connect(ritaHome);
    tunnels.push(tunnel);
    // node-postgres this time: an extended-protocol statement with bound parameters.
    const client = new pg.Client({ connectionString: tunnel.url });
    client.on('error', () => undefined); // it is cut off below, on purpose
    await client.connect();
    const own = client.query('update public.orders set total_cents = total_cents + $1 where id = $2', [2, 2]);
    own.catch(() => undefined);
    const card = page.getByRole('article').filter({ hasText: 'total_cents + $1' });
    await card.waitFor({ timeout: 30_000 });
    await card.getByText('You cannot decide this request').waitFor();
    await card.getByText(/cannot decide your own request/).waitFor();
    expect(await card.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await card.getByRole('table', { name: 'Bound parameters' }).getByRole('cell', { name: '$2' }).waitFor();
    await screenshot(page, SHOTS, 'inbox-own-request');
    // A request still on its way when she signs out (the inbox's refresh after the withdrawal) ends in
    // a 401 after the sign-out: that late answer must not replace "You are signed out.".
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const late = new Promise<void>((resolve) => {
      void page.route('**/v1/approvals?*', async (route) => {
        resolve();
        await released;
        await route.continue().catch(() => undefined);
      });
    });
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy(); // withdrawn
    await late;

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    const finished = page.waitForEvent('requestfinished', (r) => r.url().includes('/v1/approvals?'));
    release();
    expect((await (await finished).response())?.status()).toBe(401);
    await page.unroute('**/v1/approvals?*');
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    expect(await page.getByText('You are signed out.').count()).toBe(1);
  });

  it('refuses a state change without the CSRF token or from another origin; searches sessions', async () => {
    const fetcher = fetchTrustingCa(stack.certs!.caCert);
    // A cookie of a live console session (the next sign-in's) is not enough on its own.
    await browser.context.clearCookies({ domain: '127.0.0.1' }); // the IdP's sign-in, not the gateway's
    await signIn(page, 'aubrey@example.com');
    const session = (await browser.context.cookies()).find((c) => c.name === '__Host-hoop-console')!;
    const post = (headers: Record<string, string>) =>
      fetcher(`${stack.gatewayUrl}/v1/identities/revoke`, {
        method: 'POST',
        headers: {
          cookie: `${session.name}=${session.value}`,
          'content-type': 'application/json',
          ...headers,
        },
        body: JSON.stringify({ subject: 'alice@example.com', reason: 'forged' }),
      });
    const bare = await post({});
    expect(bare.status).toBe(403);
    expect(await bare.text()).toContain('CSRF');
    const csrf = await page.evaluate(() =>
      fetch('/console/session').then((r) => r.json() as Promise<{ csrf: string }>),
    );
    const foreign = await post({ 'x-csrf-token': csrf.csrf, origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    const get = async (path: string) => {
      const response = await fetcher(`${stack.gatewayUrl}${path}`, {
        headers: { cookie: `${session.name}=${session.value}` },
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    expect(((await get('/v1/whoami')).body.identity as { subject: string }).subject).toBe(
      'aubrey@example.com',
    );

    // The session search behind the Sessions page: statement filters, the identity's kind, bad input.
    const found = async (q: string) =>
      ((await get(`/v1/sessions?${q}`)).body.sessions as { identity: { subject: string } }[]).map(
        (s) => s.identity.subject,
      );
    expect(await found('decision=approve&text=ORDERS&class=write')).toEqual(
      expect.arrayContaining(['alice@example.com', 'rita@example.com']),
    );
    expect(await found('identity=alice@example.com&decision=allow&class=read&text=customers')).toEqual([
      'alice@example.com',
    ]);
    expect(await found('kind=human&class=ddl')).toEqual([]);
    expect(await found('kind=machine')).toEqual([]);
    expect((await get('/v1/sessions?decision=maybe')).status).toBe(400);
  });

  it('finds the session, plays it back with the approval in line, and exports it verifiably', async () => {
    const help = stack.cli(aliceHome, ['audit', 'verify', '--help']);
    await page.goto(`${stack.gatewayUrl}/console/sessions`);
    await page.getByLabel('Identity (subject)').fill('alice@example.com');
    await page.getByLabel('Decision').selectOption('approve');
    await page.getByRole('button', { name: 'Search' }).click();
    await page
      .getByRole('link', { name: /Play back session/ })
      .first()
      .click();
    await page.getByRole('heading', { name: /Session/ }).waitFor();
    const steps = page.getByRole('list', { name: 'Session records, in order' });
    await steps.getByText('update public.orders').first().waitFor();
    await steps.getByText(/Approval #\d+ granted/).waitFor();
    await steps.getByText('ticket OPS-42: fix the order total').waitFor();
    await steps.getByText('masked: partial').first().waitFor(); // the recorded result, masked
    expect(await steps.textContent()).not.toContain('000-12-3456');

    await page.getByLabel('Speed').selectOption('64');
    await page.getByRole('button', { name: 'Play from start' }).click();
    await page.getByRole('button', { name: 'Play from start' }).waitFor({ timeout: 30_000 }); // played through
    await expectAccessible(page, 'the session player');
    await screenshot(page, SHOTS, 'session-player');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, SHOTS, 'session-player-dark');
    await expectAccessible(page, 'the session player in dark mode');
    await page.emulateMedia({ colorScheme: 'light' });

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export JSON lines' }).click(),
    ]);
    const file = join(mkdtempSync(join(tmpdir(), 'hoop-console-export-')), 'session.jsonl');
    await download.saveAs(file);
    expect(readFileSync(file, 'utf8')).toContain('approval.granted');
    const args = ['audit', 'verify', file];
    const key = join(dirname(stack.configFile), 'hoop-data', 'audit-signing-key.pub.pem');
    // Once `audit verify` trusts only pinned keys, it is given the gateway's public key.
    if (existsSync(key) && (await help).stdout.includes('--public-key')) args.push('--public-key', key);
    const verified = await stack.cli(aliceHome, args);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export CSV' }).click(),
    ]);
    const csvFile = `${file}.csv`;
    await csv.saveAs(csvFile);
    expect(readFileSync(csvFile, 'utf8').split('\r\n')[0]).toMatch(/^chain,seq,time,type,session/);
  });

  it('shows the integrity of the log, identities (revoke and restore), and the report page', async () => {
    await page.getByRole('link', { name: 'Integrity' }).click();
    await page.getByText('The audit log is intact').waitFor({ timeout: 30_000 });
    await expectAccessible(page, 'the integrity page');
    await screenshot(page, SHOTS, 'integrity');

    await page.getByRole('link', { name: 'Identities' }).click();
    const row = page.getByRole('row').filter({ hasText: 'alice@example.com' });
    await row.getByRole('button', { name: 'Revoke…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel(/Reason/).fill('laptop reported stolen');
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await row.getByText('revoked').waitFor();
    await expectAccessible(page, 'the identities page');
    await screenshot(page, SHOTS, 'identities');
    await row.getByRole('button', { name: 'Restore…' }).click();
    await dialog.getByLabel(/Reason/).fill('laptop found');
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await row.getByText('active').waitFor();

    await page.getByRole('link', { name: 'Report' }).click();
    await page
      .getByText(/not available on this gateway|controls? enforced/)
      .first()
      .waitFor({ timeout: 30_000 });
    await expectAccessible(page, 'the report page');
    await screenshot(page, SHOTS, 'report');

    await page.getByRole('link', { name: 'Sessions' }).click();
    await page.getByRole('table').waitFor();
    await screenshot(page, SHOTS, 'sessions');
    await expectAccessible(page, 'the sessions page');

    expect([...browser.violations, ...(await pageViolations(page))], 'CSP violations').toEqual([]);
  });
});
