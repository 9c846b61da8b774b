/**
 * What the configuration in force enforces, in sentences an auditor can check against gateway.yaml:
 * the "enforced" part of each control. Pure; reads the parsed configuration only.
 */
import type { GatewayConfig, PolicyConfig, RuleConfig } from '../config/schema.js';
import { formatDuration } from '../duration.js';
import type { IdentityRef } from './types.js';

const list = (items: readonly string[]) => (items.length ? items.join(', ') : 'none');

function describeRule(r: RuleConfig): string {
  const [action, classes] = r.allow
    ? ['allow', r.allow]
    : r.deny
      ? ['deny', r.deny]
      : ['approve', r.approve ?? []];
  const narrowed = [
    r.relations?.length ? `on ${r.relations.join(', ')}` : '',
    r.functions?.length ? `calling ${r.functions.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const approvers =
    action === 'approve'
      ? ` by ${r.approvals_required > 1 ? `${r.approvals_required} of ` : ''}${list(r.approvers ?? [])} within ${formatDuration(r.timeout)}`
      : '';
  return `${action} ${list(classes)}${narrowed ? ` ${narrowed}` : ''}${approvers} ("${r.name}")`;
}

function who(p: PolicyConfig): string {
  const parts = [
    p.groups.length ? `groups ${p.groups.join(', ')}` : '',
    p.subjects.length ? `subjects ${p.subjects.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join('; ') : 'nobody';
}

export class ConfigFacts {
  constructor(readonly config: GatewayConfig) {}

  private get policies() {
    return this.config.policies;
  }

  defaultDeny(): string {
    const rules = this.policies.reduce((n, p) => n + p.rules.length, 0);
    return `Default deny: every statement is parsed by the PostgreSQL parser and refused unless a rule allows it (${this.policies.length} policies, ${rules} rules; first match wins).`;
  }

  /** One sentence per policy that grants database access. */
  accessPolicies(): string[] {
    return this.policies
      .filter((p) => p.connections.length && p.rules.length)
      .map(
        (p) =>
          `Policy "${p.name}" (${who(p)}${p.requestable ? `; only through an approved time-boxed request, at most ${formatDuration(p.max_duration)}` : ''}) on ${list(p.connections)}: ${p.rules.map(describeRule).join('; ')}.`,
      );
  }

  approvalRules(): string[] {
    const rules = this.policies.flatMap((p) => p.rules.filter((r) => r.approve).map((r) => ({ p, r })));
    if (rules.length === 0) return ['No rule requires an approval.'];
    return [
      ...rules.map(({ p, r }) => `Policy "${p.name}": ${describeRule(r)}.`),
      'The exact statement (and its bound parameters) is approved; nobody can decide their own request (enforced by the gateway, not by convention).',
    ];
  }

  roles(): string {
    const role = (flag: 'review' | 'audit' | 'admin') =>
      list(this.policies.filter((p) => p[flag]).map((p) => `${p.name} (${who(p)})`));
    return `Roles: reviewers ${role('review')}; auditors ${role('audit')}; identity administrators ${role('admin')}.`;
  }

  masking(): string[] {
    const rules = this.policies.flatMap((p) =>
      p.masking.map(
        (m) =>
          `Policy "${p.name}" masks ${list([...(m.columns ?? []), ...(m.tags ?? []).map((t) => `values detected as ${t}`)])} (${m.mask}).`,
      ),
    );
    if (rules.length === 0) return ['No masking rules: no column is marked as sensitive.'];
    return [
      ...rules,
      'Masking follows column lineage through aliases, expressions, views and SELECT *; recordings keep masked values only.',
    ];
  }

  requestable(): string {
    const ps = this.policies.filter((p) => p.requestable);
    return ps.length
      ? `Time-boxed access (hoopctl request): ${ps.map((p) => `"${p.name}" up to ${formatDuration(p.max_duration)}`).join(', ')}, each approved by a reviewer and expiring by itself.`
      : 'No requestable (time-boxed) policies.';
  }

  issuers(): string[] {
    return this.config.identity.issuers.map((i) =>
      i.kind === 'workload'
        ? `Workload issuer ${i.issuer}: CI/workload tokens presented as they are${
            Object.keys(i.bound_claims).length
              ? `, bound to ${Object.entries(i.bound_claims)
                  .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : v}`)
                  .join(', ')}`
              : ''
          }; no stored secret.`
        : `OIDC issuer ${i.issuer} (audience ${i.audience.join(', ')}): people sign in by device flow, services by client credentials; tokens verified against its JWKS (${i.algorithms.join(', ')}).`,
    );
  }

  transport(): string {
    const tls = this.config.listen.tls ? 'TLS' : 'plain HTTP on a loopback address only';
    const upstream = this.config.connections.map((c) => `${c.name} (TLS ${c.tls.mode})`);
    return `The gateway listens with ${tls}; it alone holds database credentials; upstream connections: ${list(upstream)}.`;
  }

  noStaticSecrets(): string {
    return 'Clients never hold a database password: hoopctl connect issues a one-time local password per run, and the gateway logs in to PostgreSQL with credentials from password_env / password_file that only it reads.';
  }

  recording(): string {
    const a = this.config.audit;
    return `Every statement is recorded durably before it is forwarded (durability: ${a.durability}); ${a.fail_open ? 'audit.fail_open is ON: statements run even when the log cannot be written' : 'if the record cannot be written the statement fails (fail closed)'}; results keep at most ${this.config.recording.max_rows} rows for replay.`;
  }

  integrity(): string {
    const a = this.config.audit;
    return `Hash-chained records (SHA-256); Ed25519-signed checkpoints every ${a.checkpoint_every} records or ${formatDuration(a.checkpoint_interval)}, at shutdown, and before every export, verification and report; the key is ${a.signing_key_file ? `the file ${a.signing_key_file}` : 'generated once into the store directory'}.`;
  }

  sinks(): string {
    const n = this.config.audit.sinks.length;
    return n
      ? `${n} audit sink(s) receive a copy of every record outside the store (${this.config.audit.sinks.map((s) => s.type).join(', ')}), with their own cursor.`
      : 'No audit sink is configured: the store holds the only copy of the log (configure audit.sinks for a copy outside it).';
  }

  retention(): string {
    const days = this.config.retention.days;
    return `Records are kept ${days} days (retention.days)${days < 365 ? ' — less than the 12 months PCI DSS 10.5.1 asks for' : ''}; purges stop at a signed checkpoint and are themselves recorded.`;
  }

  /** Policies that apply to an identity by its groups or subject (what a machine identity may do). */
  policiesOf(identity: IdentityRef, groups: readonly string[]): string {
    const ps = this.policies.filter(
      (p) => p.subjects.includes(identity.subject) || p.groups.some((g) => groups.includes(g)),
    );
    if (ps.length === 0) return 'no policy applies';
    return ps
      .map((p) =>
        p.rules.length
          ? `"${p.name}" on ${list(p.connections)}: ${p.rules.map(describeRule).join('; ')}`
          : `"${p.name}" (${['review', 'audit', 'admin'].filter((f) => p[f as 'review']).join(', ') || 'no rules'})`,
      )
      .join(' | ');
  }
}
