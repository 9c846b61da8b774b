/**
 * A small router over the History API: the console's pages are /console/<page>[/<id>], all served as
 * the same index.html by the gateway. Links stay real links (they open in a new tab, they can be
 * copied); plain clicks on console links are handled here without reloading.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Location {
  page: string;
  id?: string;
  params: URLSearchParams;
}

const BASE = '/console';

export function parseLocation(pathname: string, search: string): Location {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const [page = '', id] = rest.split('/').filter(Boolean).map(decodeURIComponent);
  return { page, ...(id ? { id } : {}), params: new URLSearchParams(search) };
}

const listeners = new Set<() => void>();

export function navigate(href: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  for (const listener of listeners) listener();
  window.scrollTo(0, 0);
}

/** Plain left clicks on same-origin /console links (not downloads, not new-tab clicks) navigate in place. */
function onClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey)
    return;
  const link = (event.target as Element | null)?.closest?.('a');
  if (!link || link.hasAttribute('download') || link.target) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(`${BASE}/`)) return;
  if (/^\/console\/(login|callback|logout)/.test(url.pathname)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

export function useLocation(): Location {
  const [current, setCurrent] = useState(() => parseLocation(location.pathname, location.search));
  useEffect(() => {
    const update = () => setCurrent(parseLocation(location.pathname, location.search));
    listeners.add(update);
    window.addEventListener('popstate', update);
    document.addEventListener('click', onClick);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
      document.removeEventListener('click', onClick);
    };
  }, []);
  return current;
}
