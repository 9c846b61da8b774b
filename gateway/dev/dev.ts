/**
 * `hoop-gateway --dev`: everything needed to try hoopctl in one command — a demo PostgreSQL
 * (the system's server binaries) seeded with obviously fake PII, the dev OIDC provider with demo
 * identities, and a gateway.yaml with the policy from SPEC.md. State lives in one directory.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { localGatewayConfig } from './config.js';
import { DEV_CLIENTS, DEV_USERS, type DevIdp, HEADLESS_PATH, startDevIdp } from './idp.js';
import { freePortPair, isPortFree } from './ports.js';
import { type PgServer, startPostgres } from './postgres.js';

export interface DevEnvironment {
  configFile: string;
  printWelcome(address: string): void;
  stop(): Promise<void>;
}

/** The demo database: a role for the gateway, the `shop` database, obviously fake PII. */
export const SEED_SQL = `
CREATE ROLE hoop_gateway LOGIN PASSWORD :'gw_password';
CREATE DATABASE shop OWNER hoop_gateway;
\\connect shop
SET ROLE hoop_gateway;
CREATE TABLE public.customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  ssn text NOT NULL,
  card_pan text NOT NULL,
  country text NOT NULL
);
INSERT INTO public.customers (name, email, ssn, card_pan, country) VALUES
  ('Ada Example',    'ada@example.com',    '000-12-3456', '4111111111111111', 'GB'),
  ('Brian Sample',   'brian@example.org',  '000-98-7654', '5555555555554444', 'US'),
  ('Chloe Fictional','chloe@example.net',  '000-45-6789', '378282246310005',  'FR'),
  ('Dev Placeholder','dev@example.com',    '000-11-2222', '6011111111111117', 'IN'),
  ('Eve Testperson', 'eve@example.org',    '000-33-4444', '4012888888881881', 'DE');
CREATE TABLE public.orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES public.customers(id),
  total_cents int NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.orders (customer_id, total_cents)
  SELECT 1 + (g % 5), 100 * g FROM generate_series(1, 50) AS g;
`;

/** The SPEC.md example's policies, with masking for engineers. */
const DEMO_POLICIES = `policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, procedural] }
    masking:
      - { columns: [public.customers.ssn, public.customers.card_pan], mask: partial }
      - { columns: [public.customers.email], mask: email-domain }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: migrate, allow: [read, write, ddl, transaction, session] }
  - name: agents
    groups: [ai-agents]
    connections: [prod-db]
    rules:
      - { name: agent-reads, allow: [read, transaction] }
      - { name: agent-changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 30m }
    masking:
      - { columns: [public.customers.ssn, public.customers.card_pan], mask: redact }
      - { columns: [public.customers.email], mask: email-domain }
  - name: reviewers
    groups: [db-reviewers]
    review: true
  - name: auditors
    groups: [audit]
    audit: true
agents:
  - { name: ai-agents, groups: [ai-agents], statement_timeout: 30s, max_rows: 200, rows_per_hour: 10000 }`;

function devConfig(opts: { port: number; issuer: string; dbPort: number }): string {
  const yaml = localGatewayConfig({
    port: opts.port,
    issuer: opts.issuer,
    audience: `http://127.0.0.1:${opts.port}`,
    dbPort: opts.dbPort,
    password: { file: './db-password' },
    description: 'demo database (fake PII)',
    policies: DEMO_POLICIES,
    extra: 'retention: { days: 400 }',
  });
  return `# Written by hoop-gateway --dev. The same shape as docs/examples/gateway.yaml, on loopback.\n${yaml}`;
}

/** Both ports must be free before anything starts: say which is taken and which --port would work. */
async function checkPorts(port: number): Promise<void> {
  for (const [p, what] of [
    [port, 'the gateway'],
    [port + 1, 'the dev OIDC provider (--port + 1)'],
  ] as const) {
    if (!(await isPortFree(p))) {
      const other = await freePortPair(port);
      throw new Error(
        `port ${p} (for ${what}) is already in use — another hoop-gateway --dev? Pick other ports: hoop-gateway --dev --port ${other}` +
          ' (npm run dev -- --port N)',
      );
    }
  }
}

export async function startDevEnvironment(options: { dir: string; port: number }): Promise<DevEnvironment> {
  const { dir, port } = options;
  // 0711: the database runs as the unprivileged postgres user (when started as root) and must traverse it.
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(dir, 0o711);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  await checkPorts(port);

  say(`hoop dev: starting a demo PostgreSQL in ${join(dir, 'postgres')} ...`);
  const firstRun = !existsSync(join(dir, 'postgres', 'data', 'PG_VERSION'));
  const pg: PgServer = await startPostgres({ dir: join(dir, 'postgres') });
  const passwordFile = join(dir, 'db-password');
  if (firstRun || !existsSync(passwordFile)) {
    const password = randomBytes(18).toString('base64url');
    writeFileSync(passwordFile, password, { mode: 0o600 });
    pg.psql(`\\set gw_password '${password}'\n${SEED_SQL}`);
  }
  readFileSync(passwordFile, 'utf8');

  say('hoop dev: starting the dev OIDC provider ...');
  let idp: DevIdp;
  try {
    idp = await startDevIdp({
      port: port + 1,
      audience: `http://127.0.0.1:${port}`,
      dataDir: join(dir, 'idp'),
    });
  } catch (err) {
    pg.stop();
    const busy = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
    throw new Error(
      `cannot start the dev OIDC provider on 127.0.0.1:${port + 1}: ${busy ? `the port is in use; pick other ports: hoop-gateway --dev --port ${await freePortPair(port)}` : (err as Error).message}`,
    );
  }

  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, devConfig({ port, issuer: idp.issuer, dbPort: pg.port }));

  return {
    configFile,
    printWelcome: (address: string) => {
      const users = DEV_USERS.map(
        (u) => `    ${u.username.padEnd(22)} password ${u.password.padEnd(12)} groups ${u.groups.join(',')}`,
      );
      const clients = DEV_CLIENTS.map(
        (c) => `    ${c.clientId.padEnd(22)} secret   ${c.secret.padEnd(17)} groups ${c.groups.join(',')}`,
      );
      process.stdout.write(`
hoop-gateway (dev) is running at ${address}
  demo database  postgres on 127.0.0.1:${pg.port}, database "shop" (fake customers), connection "prod-db"
  OIDC provider  ${idp.issuer}  (log in through its page in a browser)
  web console    ${address}/console  (reviewers: rita@example.com, auditors: aubrey@example.com)
  config         ${configFile}
  state          ${dir}

Demo identities:
${users.join('\n')}
  service account (client credentials):
${clients.join('\n')}

Next, in another terminal:
  npx hoopctl login --gateway ${address}        # sign in as alice@example.com / alice-dev
  npx hoopctl connect prod-db                   # prints a psql command; run it in a third terminal
  npx hoopctl exec prod-db -c "select id, name, email from customers"

No browser (a remote shell, an agent)? Run hoopctl login --no-browser, then finish it with:
  curl -d user_code=CODE -d username=alice@example.com -d password=alice-dev ${idp.issuer}${HEADLESS_PATH}
(dev IdP only). Logins survive a restart of --dev; stop with Ctrl-C. Start over: rm -rf ${dir}
`);
    },
    stop: async () => {
      await idp.stop().catch(() => {});
      pg.stop();
    },
  };
}
