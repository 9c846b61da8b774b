/** Signed out: one button that starts the sign-in at the identity provider (authorization code + PKCE). */

export function SignIn(props: { available: boolean; message?: string; error?: string | null }) {
  const back =
    location.pathname.startsWith('/console/') && location.pathname !== '/console/' ? location.pathname : '';
  const href = `/console/login${back ? `?return=${encodeURIComponent(back)}` : ''}`;
  return (
    <main id="main" class="signin">
      <div class="signin-card">
        <p class="brand">
          <span class="brand-mark" aria-hidden="true" />
          hoop console
        </p>
        <h1 id="page-title" tabIndex={-1}>
          Sign in
        </h1>
        <p class="muted">
          Review pending statements, play back database sessions and check the audit trail. You sign in with
          your organization's identity provider; what you can see depends on your roles at this gateway.
        </p>
        {props.error ? (
          <p class="notice notice-bad" role="alert">
            {props.error}
          </p>
        ) : props.message ? (
          <p class="notice" role="status">
            {props.message}
          </p>
        ) : null}
        {props.available ? (
          <a class="button primary wide" href={href}>
            Sign in
          </a>
        ) : (
          <p class="notice notice-bad">
            The console is not set up on this gateway: an issuer in the gateway's configuration needs{' '}
            <code>console_client_id</code>. See docs/console.md.
          </p>
        )}
        <p class="muted small">
          Prefer the terminal? <code>hoopctl approvals</code>, <code>hoopctl sessions list</code>.
        </p>
      </div>
    </main>
  );
}
