/**
 * The console's shell: who is signed in (the API's whoami decides the roles), the navigation for
 * those roles, and the page of the current location. Roles only shape the navigation; every page's
 * data still comes from API routes that check the role themselves.
 */
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import type { WhoAmI } from '../../src/shared/api.js';
import { ApiError, api, onSignedOut, setCsrfToken } from './api.js';
import { Failure, Loading } from './components/common.js';
import { Identities } from './pages/identities.js';
import { Inbox } from './pages/inbox.js';
import { Integrity } from './pages/integrity.js';
import { Report } from './pages/report.js';
import { SessionPlayer } from './pages/session.js';
import { Sessions } from './pages/sessions.js';
import { SignIn } from './pages/signin.js';
import { type Location, navigate, useLocation } from './router.js';

interface ConsoleSession {
  csrf: string;
  ends_at: string;
}

type Boot =
  | { state: 'loading' }
  | { state: 'signed-out'; available: boolean; message?: string; error?: string }
  | { state: 'failed'; error: Error }
  | { state: 'ready'; me: WhoAmI };

const PAGES = [
  { page: 'inbox', title: 'Inbox', shown: (_me: WhoAmI) => true },
  { page: 'sessions', title: 'Sessions', shown: (me: WhoAmI) => me.audit },
  { page: 'integrity', title: 'Integrity', shown: (me: WhoAmI) => me.audit },
  { page: 'identities', title: 'Identities', shown: (me: WhoAmI) => me.audit || me.admin },
  { page: 'report', title: 'Report', shown: (me: WhoAmI) => me.audit },
];

interface SessionAnswer extends Partial<ConsoleSession> {
  sign_in?: boolean;
  sign_in_error?: string;
}

/** Am I signed in (and the CSRF token), then who am I and with which roles (the API's answer). */
async function boot(errorKey: string | null): Promise<Boot> {
  let answer: SessionAnswer;
  let status: number;
  try {
    const response = await fetch(
      `/console/session${errorKey ? `?error=${encodeURIComponent(errorKey)}` : ''}`,
      {
        headers: { accept: 'application/json' },
      },
    );
    status = response.status;
    answer = (await response.json()) as SessionAnswer;
  } catch {
    return {
      state: 'failed',
      error: new ApiError(0, 'the gateway cannot be reached: check your network, then try again'),
    };
  }
  if (status === 401) {
    return { state: 'signed-out', available: answer.sign_in !== false, error: answer.sign_in_error };
  }
  if (!answer.csrf)
    return { state: 'failed', error: new ApiError(status, `the console session answered ${status}`) };
  setCsrfToken(answer.csrf);
  try {
    return { state: 'ready', me: await api<WhoAmI>('/v1/whoami') };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      return { state: 'signed-out', available: true, message: err.message };
    return { state: 'failed', error: err as Error };
  }
}

export function App() {
  const location = useLocation();
  const [status, setStatus] = useState<Boot>({ state: 'loading' });
  const [round, setRound] = useState(0);

  useEffect(() => {
    const errorKey = new URLSearchParams(window.location.search).get('error');
    if (errorKey) history.replaceState(null, '', window.location.pathname);
    void boot(errorKey).then(setStatus);
  }, [round]);
  // A request that was on its way when she signed out comes back 401 later: not news, so the page
  // that says why she is signed out stays as it is.
  useEffect(
    () =>
      onSignedOut((message) =>
        setStatus((current) =>
          current.state === 'signed-out' ? current : { state: 'signed-out', available: true, message },
        ),
      ),
    [],
  );

  if (status.state === 'loading') return <Loading what="the console" />;
  if (status.state === 'failed')
    return (
      <main id="main" class="narrow">
        <Failure error={status.error} retry={() => setRound((r) => r + 1)} />
      </main>
    );
  if (status.state === 'signed-out')
    return <SignIn available={status.available} message={status.message} error={status.error} />;
  return (
    <Shell
      me={status.me}
      location={location}
      onSignOut={() => setStatus({ state: 'signed-out', available: true, message: 'You are signed out.' })}
    />
  );
}

function Shell({ me, location, onSignOut }: { me: WhoAmI; location: Location; onSignOut(): void }) {
  const pages = PAGES.filter((p) => p.shown(me));
  const page = location.page || (me.review || !me.audit ? 'inbox' : 'sessions');

  // The root goes to the first page this person has; the address says where they are.
  useEffect(() => {
    if (!location.page) navigate(`/console/${page}`, { replace: true });
  }, [location.page, page]);
  // After each navigation, focus the new page's heading (screen readers announce it).
  useLayoutEffect(() => {
    const title = document.getElementById('page-title');
    if (title && document.activeElement === document.body) title.focus({ preventScroll: true });
    const heading = title?.textContent;
    document.title = heading ? `${heading} · hoop console` : 'hoop console';
  });

  const signOut = async () => {
    await api('/console/logout', { method: 'POST' }).catch(() => undefined);
    history.replaceState(null, '', '/console/');
    onSignOut();
  };

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/console/">
          <span class="brand-mark" aria-hidden="true" />
          hoop console
        </a>
        <nav aria-label="Console">
          <ul>
            {pages.map((p) => (
              <li key={p.page}>
                <a href={`/console/${p.page}`} aria-current={page === p.page ? 'page' : undefined}>
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="me">
          <span class="me-name" title={`${me.identity.subject} · ${me.identity.issuer}`}>
            {me.identity.name ?? me.identity.subject}
          </span>
          <button type="button" class="link-button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        <Page me={me} location={{ ...location, page }} />
      </main>
    </>
  );
}

function Page({ me, location }: { me: WhoAmI; location: Location }) {
  switch (location.page) {
    case 'inbox':
      return <Inbox me={me} />;
    case 'sessions':
      return location.id ? <SessionPlayer id={location.id} /> : <Sessions params={location.params} />;
    case 'integrity':
      return <Integrity />;
    case 'identities':
      return <Identities me={me} />;
    case 'report':
      return <Report params={location.params} />;
    default:
      return (
        <section class="state state-empty">
          <h1 tabIndex={-1} id="page-title">
            No such page
          </h1>
          <p>
            Nothing lives at this address. Go to the <a href="/console/inbox">inbox</a>.
          </p>
        </section>
      );
  }
}
