/**
 * A real browser for tests: Debian's Chromium (/usr/bin/chromium) driven by playwright-core — never a
 * downloaded browser — in a fresh profile, with helpers to run axe-core in the page, to collect
 * Content-Security-Policy violations, and to keep screenshots under .cache/artifacts/.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, '.cache', 'artifacts');

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** CSP violations the pages reported (from securitypolicyviolation events and console errors). */
  violations: string[];
  close(): Promise<void>;
}

/** Chrome's form of a pinned certificate: base64 SHA-256 of its public key (SPKI). */
function spkiHash(certFile: string): string {
  const spki = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

export interface LaunchOptions {
  viewport?: { width: number; height: number };
  /**
   * Server certificates (PEM files) to accept as if a public CA had issued them — the test gateway's.
   * Pinned by public key, so the page is a secure context and downloads are not blocked as insecure.
   */
  trust?: string[];
}

/** One Chromium with a fresh profile (its own --user-data-dir). */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'hoop-chromium-'));
  const pins = (options.trust ?? []).map(spkiHash);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(pins.length ? [`--ignore-certificate-errors-spki-list=${pins.join(',')}`] : []),
    ],
    acceptDownloads: true,
    viewport: options.viewport ?? { width: 1280, height: 860 },
    colorScheme: 'light',
    locale: 'en-GB',
    timezoneId: 'Europe/Paris',
  });
  const violations: string[] = [];
  // Reported by the page itself, before any of its own scripts run.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const w = window as unknown as { __csp?: string[] };
      w.__csp = [
        ...(w.__csp ?? []),
        `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`,
      ];
    });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const watch = (p: Page) =>
    p.on('console', (message) => {
      if (/Content Security Policy|Trusted Type/i.test(message.text())) violations.push(message.text());
    });
  watch(page);
  context.on('page', watch);
  return {
    context,
    page,
    violations,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Violations the page recorded through its securitypolicyviolation listener (and forget them). */
export async function pageViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const w = window as unknown as { __csp?: string[] };
    const seen = w.__csp ?? [];
    w.__csp = [];
    return seen;
  });
}

const axeSource = (() => {
  const require = createRequire(import.meta.url);
  return readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
})();

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/**
 * axe-core's WCAG 2.x A/AA rules and best practices on the current page. Injected through the
 * DevTools protocol (as an evaluation, not a <script>), so the page's CSP stays as strict as shipped.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (
      window as unknown as { axe: { run(context: Document, options: object): Promise<AxeResults> } }
    ).axe;
    interface AxeResults {
      violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
    }
    const results = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
}

/** Save a full-page screenshot as .cache/artifacts/<dir>/<name>.png and return its path. */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  const folder = join(ARTIFACTS, dir);
  mkdirSync(folder, { recursive: true });
  const path = join(folder, `${name}.png`);
  // A full-page picture of a scrolled page draws sticky bars mid-page: start from the top.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage: true, animations: 'disabled' });
  return path;
}
