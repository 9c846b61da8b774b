/**
 * The gateway.yaml of a local stack — one loopback gateway, the dev IdP, one demo database called
 * prod-db — written by `hoop-gateway --dev`, the test harness and the benchmarks alike.
 */

export interface LocalConfigOptions {
  port: number;
  /** Serve TLS with these PEM files; otherwise plain HTTP on loopback. */
  tls?: { cert: string; key: string };
  /** Extra `listen:` lines, indented two spaces. */
  listenExtra?: string;
  issuer: string;
  audience: string;
  /** Extra `identity.issuers` entries (YAML list items, indented four spaces). */
  extraIssuers?: string;
  /** The `store:` body, indented two spaces (default: `path: ./hoop-data`). */
  store?: string;
  dbPort: number;
  /** Where the gateway reads the database password from. */
  password: { env: string } | { file: string };
  /** YAML flow mapping for the connection's `tls` (default `{ mode: disable }`). */
  connectionTls?: string;
  description?: string;
  /** YAML text starting with `policies:`. */
  policies: string;
  /** Further top-level YAML. */
  extra?: string;
}

export function localGatewayConfig(o: LocalConfigOptions): string {
  const password =
    'env' in o.password ? `password_env: ${o.password.env}` : `password_file: ${o.password.file}`;
  return `listen:
  address: 127.0.0.1:${o.port}
${o.tls ? `  tls: { cert: ${o.tls.cert}, key: ${o.tls.key} }` : '  insecure_loopback: true          # plain HTTP: only ever on a loopback address'}
${o.listenExtra ?? ''}
identity:
  issuers:
    - issuer: ${o.issuer}
      audience: ${o.audience}
      cli_client_id: hoopctl
      console_client_id: hoop-console
      scopes: [openid, profile, email, offline_access, gateway]
      claims: { subject: sub, name: email, groups: groups }
${o.extraIssuers ?? ''}
store:
${o.store ?? '  path: ./hoop-data'}

connections:
  - name: prod-db
${o.description ? `    description: ${o.description}\n` : ''}    host: 127.0.0.1
    port: ${o.dbPort}
    database: shop
    user: hoop_gateway
    ${password}
    tls: ${o.connectionTls ?? '{ mode: disable }'}

${o.policies}
${o.extra ?? ''}
`;
}
