/**
 * A person's browser, scripted: it drives an OIDC provider's own device verification, login and consent
 * pages over HTTP with a cookie jar, as someone clicking through them would. No back door: every step is
 * the provider's public page. Used by the dev IdP's headless endpoint (POST /dev/device-login) and by the
 * tests. Dev and test only.
 */

/**
 * Complete a device login the way a person would in a browser: open the verification page, enter the
 * user code, confirm it, sign in with username and password, allow access. Returns the final page's HTML.
 * Throws with the page's message when a step is refused (wrong code, wrong password).
 */
export async function completeDeviceLogin(
  verificationUri: string,
  userCode: string,
  username: string,
  password: string,
): Promise<string> {
  const browser = new Browser();
  let page = await browser.get(verificationUri);
  page = await browser.submit(page, (f) => f.fields.has('user_code'), { user_code: userCode });
  expectStep(page, (f) => f.fields.get('confirm') === 'yes', 'the user code was not accepted');
  page = await browser.submit(page, (f) => f.fields.get('confirm') === 'yes');
  expectStep(page, (f) => f.action.endsWith('/login'), 'no login page after confirming the code');
  page = await browser.submit(page, (f) => f.action.endsWith('/login'), { username, password });
  if (page.status === 401) throw new Error(`login refused for ${username}: ${textOf(page.html)}`);
  expectStep(page, (f) => f.action.endsWith('/confirm'), 'no consent page after login');
  page = await browser.submit(page, (f) => f.action.endsWith('/confirm'));
  if (page.status !== 200 || !/signed in/i.test(page.html)) {
    throw new Error(`device login did not finish (HTTP ${page.status}): ${textOf(page.html)}`);
  }
  return page.html;
}

// ---------------------------------------------------------------------------------------------
// A scripted browser: cookies, redirects, forms.

interface Page {
  url: string;
  status: number;
  html: string;
}

interface Form {
  action: string;
  method: string;
  fields: Map<string, string>;
}

class Browser {
  private readonly cookies = new Map<string, string>();

  get(url: string): Promise<Page> {
    return this.request(url, 'GET');
  }

  async submit(
    page: Page,
    pick: (form: Form) => boolean,
    values: Record<string, string> = {},
  ): Promise<Page> {
    const form = formsOf(page.html).find(pick);
    if (!form) throw new Error(`no matching form on ${page.url}: ${textOf(page.html)}`);
    const body = new URLSearchParams([...new Map([...form.fields, ...Object.entries(values)])]);
    return this.request(new URL(form.action, page.url).href, form.method, body);
  }

  /** Send, then follow redirects (303/302 become GET) carrying cookies, like a browser. */
  private async request(url: string, method: string, body?: URLSearchParams): Promise<Page> {
    let current = url;
    let currentMethod = method;
    let currentBody = body;
    for (let hop = 0; hop < 20; hop++) {
      const headers: Record<string, string> = { accept: 'text/html' };
      const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (cookie) headers.cookie = cookie;
      if (currentBody) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await fetch(current, {
        method: currentMethod,
        headers,
        body: currentBody?.toString(),
        redirect: 'manual',
      });
      for (const line of response.headers.getSetCookie()) this.remember(line);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        current = new URL(location, current).href;
        currentMethod = 'GET';
        currentBody = undefined;
        continue;
      }
      return { url: current, status: response.status, html: await response.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  private remember(setCookie: string): void {
    const [pair = '', ...attributes] = setCookie.split(';');
    const eq = pair.indexOf('=');
    if (eq < 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some(
      (a) => /^\s*max-age=0\s*$/i.test(a) || /expires=thu, 01 jan 1970/i.test(a),
    );
    if (expired || value === '') this.cookies.delete(name);
    else this.cookies.set(name, value);
  }
}

function formsOf(html: string): Form[] {
  const forms: Form[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = match[1] ?? '';
    const fields = new Map<string, string>();
    for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const name = attributeOf(input[1] ?? '', 'name');
      if (name) fields.set(name, decodeEntities(attributeOf(input[1] ?? '', 'value') ?? ''));
    }
    forms.push({
      action: decodeEntities(attributeOf(attributes, 'action') ?? ''),
      method: (attributeOf(attributes, 'method') ?? 'GET').toUpperCase(),
      fields,
    });
  }
  return forms;
}

function attributeOf(attributes: string, name: string): string | undefined {
  const match = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(attributes);
  return match ? (match[2] ?? match[3]) : undefined;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function expectStep(page: Page, pick: (form: Form) => boolean, what: string): void {
  if (!formsOf(page.html).some(pick))
    throw new Error(`${what} (HTTP ${page.status} at ${page.url}): ${textOf(page.html)}`);
}

function textOf(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}
