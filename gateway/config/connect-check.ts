/**
 * `hoop-gateway --check --connect`: beyond a valid file, prove the gateway can do its job — log in to
 * each upstream database with the credentials it holds (exactly as a session would), and fetch each
 * issuer's discovery document and JWKS (with the CA the config names). Each check is one line; the
 * caller exits 1 when any failed. Nothing is written anywhere.
 */
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';
import { connectUpstream } from '../transport/upstream.js';

export interface CheckResult {
  what: string;
  ok: boolean;
  detail: string;
}

const TIMEOUT_MS = 10_000;

export async function checkConnectivity(
  config: GatewayConfig,
  passwords: Map<string, string>,
): Promise<CheckResult[]> {
  return Promise.all([
    ...config.connections.map((c) => checkDatabase(c, passwords.get(c.name) ?? '')),
    ...config.identity.issuers.map((i) => checkIssuer(i)),
  ]);
}

async function checkDatabase(
  c: GatewayConfig['connections'][number],
  password: string,
): Promise<CheckResult> {
  const what = `connection ${c.name} (${c.user}@${c.host}:${c.port}/${c.database}, tls ${c.tls.mode})`;
  try {
    const upstream = await connectUpstream(
      { host: c.host, port: c.port, database: c.database, user: c.user, password, tls: c.tls },
      { application_name: 'hoop-gateway --check' },
      TIMEOUT_MS,
    );
    upstream.socket.end(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
    const version = upstream.parameters.get('server_version');
    return { what, ok: true, detail: `logged in${version ? `, PostgreSQL ${version}` : ''}` };
  } catch (err) {
    return { what, ok: false, detail: (err as Error).message };
  }
}

async function checkIssuer(issuer: GatewayConfig['identity']['issuers'][number]): Promise<CheckResult> {
  const what = `issuer ${issuer.issuer}`;
  const fetcher = fetchTrustingCa(issuer.ca);
  const get = async (url: string) => {
    const response = await fetcher(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  };
  try {
    let jwksUri = issuer.jwks_uri;
    if (!jwksUri) {
      const discoveryUrl = `${issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const discovery = await get(discoveryUrl);
      if (discovery.issuer !== issuer.issuer) {
        throw new Error(
          `${discoveryUrl} names issuer ${String(discovery.issuer)}: identity.issuers[].issuer must match it exactly`,
        );
      }
      jwksUri = String(discovery.jwks_uri ?? '');
      if (!jwksUri) throw new Error(`${discoveryUrl} has no jwks_uri`);
    }
    const jwks = await get(jwksUri);
    const keys = Array.isArray(jwks.keys) ? jwks.keys.length : 0;
    if (keys === 0) throw new Error(`${jwksUri} holds no keys`);
    return { what, ok: true, detail: `discovery and JWKS fetched (${keys} key${keys === 1 ? '' : 's'})` };
  } catch (err) {
    return { what, ok: false, detail: (err as Error).message };
  }
}
