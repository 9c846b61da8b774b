/**
 * The gateway's configuration (gateway.yaml): one zod schema, with every default stated here,
 * where it is defined. docs/configuration.md documents each key; keep the two together.
 */
import { z } from 'zod';
import { parseDuration } from '../duration.js';
import { subjectOf } from '../identity.js';
import { STATEMENT_CLASSES, STATEMENT_FLAGS } from '../statement.js';

/** A duration such as `30m`; parsed to milliseconds. */
const duration = z.union([z.string(), z.number().int().nonnegative()]).transform((value, ctx) => {
  if (typeof value === 'number') return value * 1000; // bare numbers are seconds
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const nonEmpty = z.string().min(1, 'must not be empty');
const stringList = z.array(nonEmpty);

const hostPort = nonEmpty.regex(
  /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/,
  'must be host:port, e.g. 0.0.0.0:8443',
);

export const listenSchema = z
  .strictObject({
    address: hostPort.default('127.0.0.1:8443'),
    tls: z.strictObject({ cert: nonEmpty, key: nonEmpty }).optional(),
    /** Plain HTTP. Refused unless the address is a loopback address. */
    insecure_loopback: z.boolean().default(false),
    /** The URL clients reach this gateway at, advertised in discovery (default: from the address). */
    public_url: z.url().optional(),
    /** Largest single Postgres message accepted from a client, in bytes (Postgres itself allows 1 GiB). */
    max_message_bytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024 * 1024),
    /** Close a session idle this long (no message from the client). 0 = never. */
    idle_timeout: duration.default(0),
    /** Close any session after this long. 0 = never. */
    max_session: duration.default(0),
    /**
     * The longest a client may stay unauthenticated: from TCP connect to logged in on the native
     * listener, and for the startup handshake inside a tunnel.
     */
    login_timeout: duration.default(30_000),
    /**
     * Connections not yet authenticated at once, per listener (the HTTPS one: until the first request
     * head, or a tunnel's login; the native one: until its login); past it, 503 / FATAL 53300.
     */
    max_unauthenticated: z.number().int().min(1).default(256),
    /**
     * A native PostgreSQL listener (host:port) besides the HTTPS one: clients connect with libpq, the
     * password is an access token, the database is the connection name. TLS required (listen.tls);
     * plain only on a loopback address with insecure_loopback. Off unless set.
     */
    postgres: hostPort.optional(),
  })
  .superRefine((listen, ctx) => {
    if (listen.login_timeout <= 0) {
      ctx.addIssue({ code: 'custom', path: ['login_timeout'], message: 'must be more than 0' });
    }
    if (!listen.tls && !listen.insecure_loopback) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: 'is required (or set listen.insecure_loopback: true on a loopback address)',
      });
    }
    if (listen.insecure_loopback && !listen.tls && !isLoopbackAddress(listen.address)) {
      ctx.addIssue({
        code: 'custom',
        path: ['insecure_loopback'],
        message: `plain HTTP is refused on ${listen.address}: only a loopback address (127.0.0.1, [::1], localhost) may listen without TLS`,
      });
    }
    if (listen.postgres && !listen.tls && !(listen.insecure_loopback && isLoopbackAddress(listen.postgres))) {
      ctx.addIssue({
        code: 'custom',
        path: ['postgres'],
        message: `the native PostgreSQL listener on ${listen.postgres} needs listen.tls (tokens are passwords: TLS is required), or a loopback address with insecure_loopback`,
      });
    }
  });

export function isLoopbackAddress(address: string): boolean {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export const issuerSchema = z.strictObject({
  issuer: z.url(),
  /** Accepted `aud` values of tokens from this issuer. */
  audience: z.union([nonEmpty, stringList.min(1)]).transform((a) => (Array.isArray(a) ? a : [a])),
  /** `oidc`: people and service accounts of your IdP; `workload`: CI/workload ID tokens presented as they are. */
  kind: z.enum(['oidc', 'workload']).default('oidc'),
  /** Public client id `hoopctl login` uses for the device flow (oidc issuers). */
  cli_client_id: nonEmpty.optional(),
  /**
   * Client id of the web console (`/console`): authorization code + PKCE, redirect URI
   * `<gateway URL>/console/callback`. Without it on any issuer, /console says it is not set up.
   */
  console_client_id: nonEmpty.optional(),
  /** The console client's secret, from this environment variable, when the IdP makes it confidential. */
  console_client_secret_env: nonEmpty.optional(),
  /** Scopes `hoopctl login` (and the console) asks for. offline_access gets a refresh token. */
  scopes: stringList.default(['openid', 'profile', 'email', 'offline_access']),
  /** Which claims make the identity. `groups` names a claim holding a list (or a space/comma separated string). */
  claims: z
    .strictObject({
      subject: nonEmpty.default('sub'),
      name: nonEmpty.optional(),
      groups: nonEmpty.optional(),
    })
    .default({ subject: 'sub' }),
  /** Every listed claim must equal the value (or one of the values); `*` globs allowed. */
  bound_claims: z.record(z.string(), z.union([nonEmpty, stringList])).default({}),
  /** Groups every identity from this issuer gets, in addition to the groups claim. */
  groups: stringList.default([]),
  /** Override the JWKS location (default: from the issuer's discovery document). */
  jwks_uri: z.url().optional(),
  /** Accepted signing algorithms: asymmetric only. */
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
    .default(['RS256', 'PS256', 'ES256', 'EdDSA']),
  /** Clock skew tolerated on exp/nbf/iat. */
  clock_skew: duration.default(30_000),
  /** Extra CA certificate (PEM file) to trust when fetching discovery and JWKS from this issuer. */
  ca: nonEmpty.optional(),
});

const tlsModes = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

export const connectionSchema = z
  .strictObject({
    name: nonEmpty.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, ".", "_" and "-" only'),
    type: z.literal('postgres').default('postgres'),
    host: nonEmpty,
    port: z.number().int().min(1).max(65535).default(5432),
    database: nonEmpty,
    user: nonEmpty,
    password_env: nonEmpty.optional(),
    password_file: nonEmpty.optional(),
    tls: z
      .strictObject({ mode: z.enum(tlsModes).default('verify-full'), ca: nonEmpty.optional() })
      .default({ mode: 'verify-full' }),
    description: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.password_env && c.password_file) {
      ctx.addIssue({
        code: 'custom',
        path: ['password_file'],
        message: 'set password_env or password_file, not both',
      });
    }
  });

const statementClass = z.enum(STATEMENT_CLASSES);
const ruleSchema = z
  .strictObject({
    name: nonEmpty,
    allow: z.array(statementClass).optional(),
    deny: z.array(statementClass).optional(),
    approve: z.array(statementClass).optional(),
    /** Narrow the rule to statements touching these relations (globs: `audit.*`, `public.order*`). */
    relations: stringList.optional(),
    /** Narrow the rule to statements calling these functions (globs). */
    functions: stringList.optional(),
    /** Narrow the rule to statements carrying all of these flags. */
    flags: z.array(z.enum(STATEMENT_FLAGS)).optional(),
    /** Names from the built-in side-channel deny-list this rule may allow (only with `allow`). */
    allow_side_channels: stringList.optional(),
    /** approve: groups whose members may approve. */
    approvers: stringList.optional(),
    /** approve: how many distinct approvers are needed. */
    approvals_required: z.number().int().min(1).max(10).default(1),
    /** approve: how long a request waits before it expires. */
    timeout: duration.default(1_800_000),
  })
  .superRefine((rule, ctx) => {
    const actions = (['allow', 'deny', 'approve'] as const).filter((a) => rule[a] !== undefined);
    if (actions.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a rule has exactly one of allow, deny or approve' });
    }
    if (rule.approve && (!rule.approvers || rule.approvers.length === 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['approvers'],
        message: 'an approve rule names its approver groups',
      });
    }
  });

export const MASKS = ['redact', 'partial', 'email-domain', 'token', 'null'] as const;
export const MASK_TAGS = ['pan', 'ssn', 'email', 'secret'] as const;
const maskingRuleSchema = z
  .strictObject({
    name: nonEmpty.optional(),
    /** schema.table.column (globs allowed). */
    columns: stringList.optional(),
    /** Value detectors that trigger this mask on outputs of unknown lineage. */
    tags: z.array(z.enum(MASK_TAGS)).optional(),
    mask: z.enum(MASKS),
  })
  .superRefine((m, ctx) => {
    if (!m.columns?.length && !m.tags?.length) {
      ctx.addIssue({ code: 'custom', message: 'a masking rule names columns or tags' });
    }
  });

export const policySchema = z.strictObject({
  name: nonEmpty,
  description: z.string().optional(),
  /** Who: members of any of these groups, or any of these subjects. */
  groups: stringList.default([]),
  /**
   * Identities by issuer and subject: `https://idp.example.com#alice`, `{ issuer, subject }`, or a bare
   * `alice` when exactly one issuer is configured (src/shared/identity.ts subjectOf).
   */
  subjects: z.array(z.union([nonEmpty, z.strictObject({ issuer: z.url(), subject: nonEmpty })])).default([]),
  /** Which connections (globs); default none. */
  connections: stringList.default([]),
  /** Ordered statement rules: first match wins; nothing matched = deny. */
  rules: z.array(ruleSchema).default([]),
  masking: z.array(maskingRuleSchema).default([]),
  /** Where lineage of an output column cannot be proven: mask it whole, or deny the statement. */
  masking_fallback: z.enum(['mask', 'deny']).default('mask'),
  /** Deny predicates, ORDER BY, GROUP BY and joins on masked columns. */
  inference_guard: z.boolean().default(false),
  /** Members may list and decide approvals. */
  review: z.boolean().default(false),
  /** Members may list, replay and export sessions and verify the log. */
  audit: z.boolean().default(false),
  /** Members may manage identities (revoke, restore). */
  admin: z.boolean().default(false),
  /**
   * Members may read other sessions' statement text on this policy's connections (pg_stat_activity.query,
   * pg_stat_statements, pg_stat_get_activity): every identity shares the gateway's database role.
   */
  statement_text: z.boolean().default(false),
  /** Only through an approved time-boxed access request (hoopctl request). */
  requestable: z.boolean().default(false),
  /** Longest time-boxed grant of this policy. */
  max_duration: duration.default(28_800_000),
});

/**
 * AI agents (docs/agents.md): identities matched by kind, group or subject get guardrails on top of
 * their policies, wherever they connect. The first entry that matches an identity applies.
 */
export const agentSchema = z
  .strictObject({
    name: nonEmpty,
    /** Who: identities of these kinds (human | service | workload), in any of these groups, or these subjects. */
    kinds: z.array(z.enum(['human', 'service', 'workload'])).default([]),
    groups: stringList.default([]),
    subjects: stringList.default([]),
    /** Only reads (and transaction control) run outright; anything else needs a rule that requires approval. */
    read_only: z.boolean().default(true),
    /** statement_timeout the gateway sets on the agent's database sessions (0 = none). */
    statement_timeout: duration.default(30_000),
    /** Rows and bytes one `query` tool call may return (default: mcp.max_rows / mcp.max_bytes). */
    max_rows: z.number().int().min(1).optional(),
    max_bytes: z.number().int().min(1).optional(),
    /** Rows the agent may receive through MCP in any hour (0 = no budget). */
    rows_per_hour: z.number().int().min(0).default(10_000),
    /** Agents reach databases only through /mcp: tunnels (connect, exec) are refused. */
    mcp_only: z.boolean().default(true),
  })
  .superRefine((a, ctx) => {
    if (a.kinds.length + a.groups.length + a.subjects.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'an agents entry names kinds, groups or subjects' });
    }
  });

/** The MCP server at /mcp (docs/agents.md). */
export const mcpSchema = z.strictObject({
  /** Serve /mcp and /.well-known/oauth-protected-resource on the main listener. */
  enabled: z.boolean().default(true),
  /** Rows one `query` tool call returns at most (the rest is cut off with truncated: true). */
  max_rows: z.number().int().min(1).default(1000),
  /** Bytes of values one `query` tool call returns at most. */
  max_bytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Close an MCP session (and its database sessions) unused this long. */
  idle_timeout: duration.default(1_800_000),
  /** Open MCP sessions one identity may have at once. */
  max_sessions: z.number().int().min(1).default(8),
});

export const webhookSchema = z.strictObject({
  url: z.url(),
  secret_env: nonEmpty.optional(),
  format: z.enum(['json', 'slack']).default('json'),
  events: stringList.optional(),
});

export const configSchema = z.strictObject({
  // prefault: a missing `listen` still goes through the schema, so TLS (or the explicit loopback flag) is required.
  listen: listenSchema.prefault({}),
  identity: z.strictObject({ issuers: z.array(issuerSchema).min(1, 'name at least one issuer') }),
  store: z
    .union([
      z.strictObject({ path: nonEmpty }),
      z.strictObject({ url: nonEmpty.regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL') }),
    ])
    .default({ path: './hoop-data' }),
  connections: z.array(connectionSchema).default([]),
  policies: z.array(policySchema).default([]),
  retention: z.strictObject({ days: z.number().int().min(1).default(400) }).default({ days: 400 }),
  notify: z.strictObject({ webhooks: z.array(webhookSchema).default([]) }).default({ webhooks: [] }),
  recording: z
    .strictObject({
      /** Rows of each result kept for replay (masked values only). */
      max_rows: z.number().int().min(0).default(100),
      /** Bytes of each result kept for replay. */
      max_bytes: z
        .number()
        .int()
        .min(0)
        .default(64 * 1024),
    })
    .default({ max_rows: 100, max_bytes: 64 * 1024 }),
  audit: z
    .strictObject({
      /** Forward statements even when the log cannot be written. Loudly discouraged. */
      fail_open: z.boolean().default(false),
      /**
       * What an acknowledged record survives. `crash`: the gateway's own crash or kill -9 (the write
       * reached the OS or the store's server before the statement is forwarded). `power`: also a power
       * cut or kernel crash (an fsync per group commit — much slower on ordinary disks).
       */
      durability: z.enum(['crash', 'power']).default('crash'),
      /** Sign a checkpoint every N records or T, whichever comes first. */
      checkpoint_every: z.number().int().min(1).default(1000),
      checkpoint_interval: duration.default(60_000),
      /** Ed25519 signing key (PEM). Default: generated once into the store directory. */
      signing_key_file: nonEmpty.optional(),
      /**
       * Public keys (PEM files) verification trusts besides this gateway's own key and its retired keys:
       * other replicas' keys, keys retired elsewhere. Keys found in the store are never trusted by themselves.
       */
      trusted_keys: stringList.default([]),
      /**
       * When this gateway finds its chain's head moved by someone else: `refuse` appends (statements fail
       * with 58030) until an operator resolves it, or `adopt` it after an audit.alarm record. Both alarm.
       */
      on_foreign_head: z.enum(['refuse', 'adopt']).default('refuse'),
      /** Failed authentications without a known identity: one record per source and window, counted. */
      auth_failures: z
        .strictObject({
          window: duration.default(60_000),
          /** Sources tracked per window; failures from more are counted together under source `*`. */
          max_sources: z.number().int().min(1).max(100_000).default(100),
        })
        .default({ window: 60_000, max_sources: 100 }),
      sinks: z
        .array(
          z.union([
            z.strictObject({ type: z.literal('file'), path: nonEmpty }),
            z.strictObject({ type: z.literal('webhook'), url: z.url(), secret_env: nonEmpty.optional() }),
          ]),
        )
        .default([]),
    })
    .default({
      fail_open: false,
      durability: 'crash',
      checkpoint_every: 1000,
      checkpoint_interval: 60_000,
      trusted_keys: [],
      on_foreign_head: 'refuse',
      auth_failures: { window: 60_000, max_sources: 100 },
      sinks: [],
    }),
  /** This gateway among replicas sharing a store: its id names its audit chain; heartbeats find the dead. */
  replica: z
    .strictObject({
      /**
       * Stable id (letters, digits, `.`, `_`, `-`). Default: HOOP_REPLICA_ID, else `main` with the embedded
       * store, else the host name (in a Kubernetes Deployment: the pod name).
       */
      id: nonEmpty
        .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-" only, at most 63')
        .refine((id) => id !== 'legacy', 'is reserved')
        .optional(),
      /** How often this replica says it is alive. */
      heartbeat: duration.default(2000),
      /** A replica silent this long is lost: its chain is closed and its waiting approvals withdrawn. */
      lost_after: duration.default(10_000),
    })
    .default({ heartbeat: 2000, lost_after: 10_000 }),
  mcp: mcpSchema.prefault({}),
  agents: z.array(agentSchema).default([]),
  console: z
    .strictObject({
      /** Serve the web console at /console (it still needs an issuer with console_client_id). */
      enabled: z.boolean().default(true),
      /** A console sign-in lasts at most this long, however active. */
      session_lifetime: duration.default(12 * 3_600_000),
      /** A console sign-in unused this long ends. */
      idle_timeout: duration.default(3_600_000),
    })
    .default({ enabled: true, session_lifetime: 12 * 3_600_000, idle_timeout: 3_600_000 }),
  masking: z
    .strictObject({
      /** HMAC key for the `token` mask, from an environment variable (default: generated into the store). */
      token_secret_env: nonEmpty.optional(),
      /** COPY ... TO STDOUT of masked data: refused (deny) or streamed with the masked columns rewritten (mask; text and csv only). */
      copy: z.enum(['deny', 'mask']).default('deny'),
    })
    .default({ copy: 'deny' }),
  /** Optional second listener for probes and Prometheus: /healthz, /readyz, /metrics (docs/deploy.md). */
  diagnostics: z
    .strictObject({
      /** host:port, e.g. 0.0.0.0:9090. Plain HTTP unless `tls` is set: it serves no secrets. */
      listen: hostPort,
      tls: z.strictObject({ cert: nonEmpty, key: nonEmpty }).optional(),
      /** Also count statements per identity subject (hoop_subject_statements_total). Off: unbounded labels. */
      metrics_subjects: z.boolean().default(false),
    })
    .optional(),
  shutdown: z
    .strictObject({
      /** On SIGTERM, how long open sessions may run before they are ended with 57P01 (admin shutdown). */
      grace: duration.default(30_000),
    })
    .default({ grace: 30_000 }),
});

/**
 * Configuration the fields alone cannot check: every policy subject names exactly one issuer's identity,
 * connection names are unique, and no two listeners share an address (found here, not as EADDRINUSE at start).
 */
export const checkedConfigSchema = configSchema.superRefine((config, ctx) => {
  const names = new Set<string>();
  config.connections.forEach((c, i) => {
    if (names.has(c.name))
      ctx.addIssue({
        code: 'custom',
        path: ['connections', i, 'name'],
        message: `"${c.name}" is used twice`,
      });
    names.add(c.name);
  });
  for (const clash of listenerClashes(config)) ctx.addIssue({ code: 'custom', ...clash });
  const issuers = config.identity.issuers.map((i) => i.issuer);
  config.policies.forEach((policy, p) => {
    policy.subjects.forEach((entry, s) => {
      const found = subjectOf(entry, issuers);
      if (typeof found === 'string') {
        ctx.addIssue({ code: 'custom', path: ['policies', p, 'subjects', s], message: found });
      }
    });
  });
});

/** Listeners (listen.postgres, diagnostics.listen) on an address an earlier one already takes. */
function listenerClashes(config: z.infer<typeof configSchema>): { path: string[]; message: string }[] {
  const listeners: [string[], string | undefined][] = [
    [['listen', 'address'], config.listen.address],
    [['listen', 'postgres'], config.listen.postgres],
    [['diagnostics', 'listen'], config.diagnostics?.listen],
  ];
  const clashes: { path: string[]; message: string }[] = [];
  listeners.forEach(([path, address], i) => {
    if (!address) return;
    const earlier = listeners.slice(0, i).find(([, other]) => other && sameSocket(address, other));
    if (earlier)
      clashes.push({
        path,
        message: `${address} is also ${earlier[0].join('.')} (${earlier[1]}): each listener needs a port of its own`,
      });
  });
  return clashes;
}

/**
 * Two host:port addresses one process cannot both bind: the same port, and the same host, a wildcard, or
 * `localhost` beside a loopback address (it binds the first address it resolves to).
 */
function sameSocket(a: string, b: string): boolean {
  const split = (address: string) => {
    const at = address.lastIndexOf(':');
    return {
      host: address
        .slice(0, at)
        .replace(/^\[|\]$/g, '')
        .toLowerCase(),
      port: Number(address.slice(at + 1)),
    };
  };
  const x = split(a);
  const y = split(b);
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
  const localhost = (one: string, other: string) => one === 'localhost' && isLoopbackAddress(`${other}:0`);
  const overlap =
    x.host === y.host ||
    wildcard(x.host) ||
    wildcard(y.host) ||
    localhost(x.host, y.host) ||
    localhost(y.host, x.host);
  return x.port === y.port && x.port !== 0 && overlap;
}

export type GatewayConfig = z.infer<typeof configSchema>;
export type IssuerConfig = GatewayConfig['identity']['issuers'][number];
export type ConnectionConfig = GatewayConfig['connections'][number];
export type PolicyConfig = GatewayConfig['policies'][number];
export type RuleConfig = PolicyConfig['rules'][number];
export type MaskingRuleConfig = PolicyConfig['masking'][number];
export type AgentConfig = GatewayConfig['agents'][number];
export type McpConfig = GatewayConfig['mcp'];
