/**
 * The controls of each framework the report covers: id and wording (paraphrased in one line), what
 * hoopctl enforces for it (from the configuration), which figures are its evidence, which records are
 * its exceptions, and — plainly — what the control needs that hoopctl does not do.
 */
import type { EvidenceCollector, ExceptionKind } from './evidence.js';
import type { ConfigFacts } from './facts.js';
import * as fig from './figures.js';
import type { EvidenceValue, FrameworkId } from './types.js';

export interface ControlDef {
  id: string;
  framework: FrameworkId;
  title: string;
  enforced(f: ConfigFacts, ev: EvidenceCollector): string[];
  evidence(ev: EvidenceCollector): Record<string, EvidenceValue>;
  exceptions: ExceptionKind[];
  outside_scope: string[];
}

export const FRAMEWORK_NAMES: Record<FrameworkId, string> = {
  soc2: 'SOC 2',
  'pci-dss-4': 'PCI DSS v4.0',
  'nist-800-53': 'NIST SP 800-53',
};

export const FRAMEWORK_TITLES: Record<FrameworkId, string> = {
  soc2: 'SOC 2 — Trust Services Criteria (2017, points of focus revised 2022)',
  'pci-dss-4': 'PCI DSS v4.0',
  'nist-800-53': 'NIST SP 800-53 Rev. 5',
};

// What lies outside hoopctl, said once and reused.
const IDP =
  'Multi-factor authentication, password policy and account security at the identity provider: hoopctl trusts the IdP’s tokens and cannot see how the person signed in.';
const HR =
  'Joiner/mover/leaver process (HR, IdP provisioning, group membership reviews): hoopctl sees an identity only when it uses the gateway, and enforces the groups the IdP puts in its token.';
const BYPASS =
  'Other paths to the database (network rules, other credentials, console access at the cloud provider): keep PostgreSQL reachable by the gateway only.';
const BACKUP = 'Backups of the store and of exports, and their protection: an operator task outside hoopctl.';
const MONITOR =
  'Reading and acting on what is recorded (alert triage, incident response): hoopctl records and forwards (audit sinks, webhooks); people must look.';
const CONFIG_REVIEW =
  'Review and approval of changes to gateway.yaml before they are deployed (e.g. a reviewed pull request): the report shows what changed, not who approved the change.';
const CLASSIFY =
  'Deciding which columns hold cardholder or personal data: the masking rules in force say; data in columns no rule names is not classified by hoopctl.';
const SECRETS =
  'Storage and rotation of service-account client secrets in CI systems: prefer workload identity tokens, which need no stored secret.';
const DB_LOG =
  'Actions PostgreSQL performs by itself (autovacuum, replication, jobs scheduled inside the database) and sessions not made through the gateway.';

const soc2: ControlDef[] = [
  {
    id: 'CC6.1',
    framework: 'soc2',
    title:
      'Logical access security software, infrastructure and architectures restrict access to information assets.',
    enforced: (f) => [f.defaultDeny(), ...f.accessPolicies(), f.transport()],
    evidence: (ev) => ({ ...fig.accessFigures(ev), ...fig.refusalFigures(ev) }),
    exceptions: ['refusals', 'unidentified_sessions'],
    outside_scope: [BYPASS, IDP],
  },
  {
    id: 'CC6.2',
    framework: 'soc2',
    title:
      'Users are registered and authorized before access is granted, and access is removed when no longer required.',
    enforced: (f) => [
      'Every session is an identity of a configured issuer; identities are seen, listed (hoopctl identities) and can be revoked, which ends their open sessions.',
      f.requestable(),
      ...f.issuers(),
    ],
    evidence: (ev) => fig.lifecycleFigures(ev),
    exceptions: ['revoked_use', 'restores'],
    outside_scope: [HR, IDP],
  },
  {
    id: 'CC6.3',
    framework: 'soc2',
    title:
      'Access is authorized, modified or removed based on roles, least privilege and segregation of duties.',
    enforced: (f) => [f.roles(), ...f.approvalRules()],
    evidence: (ev) => ({ ...fig.approvalFigures(ev), ...fig.refusalFigures(ev) }),
    exceptions: ['self_approval'],
    outside_scope: [HR, 'Periodic access reviews of group membership at the IdP.'],
  },
  {
    id: 'CC6.6',
    framework: 'soc2',
    title:
      'Logical access security measures protect against threats from sources outside the system boundaries.',
    enforced: (f) => [f.transport(), ...f.issuers(), f.noStaticSecrets()],
    evidence: (ev) => ({ ...fig.authFigures(ev), sessions_by_client: ev.sessionsByClient.toObject() }),
    exceptions: ['failed_auth'],
    outside_scope: [
      BYPASS,
      'Network perimeter, DDoS protection and TLS certificate management in front of the gateway.',
    ],
  },
  {
    id: 'CC7.2',
    framework: 'soc2',
    title:
      'System components are monitored for anomalies indicative of malicious acts, natural disasters and errors.',
    enforced: (f) => [f.recording(), f.sinks()],
    evidence: (ev) => ({
      ...fig.refusalFigures(ev),
      authentications_failed: ev.auth.failed,
      approvals_expired: ev.approvals.expired,
      alarms: ev.exceptions.alarms.total,
      audit_log_accesses: fig.auditAccessFigures(ev).audit_log_accesses!,
    }),
    exceptions: ['refusals', 'failed_auth', 'alarms', 'verify_failures', 'fail_open'],
    outside_scope: [MONITOR],
  },
  {
    id: 'CC8.1',
    framework: 'soc2',
    title:
      'Changes to infrastructure, data and software are authorized, designed, tested, approved and implemented.',
    enforced: (f) => [
      ...f.approvalRules(),
      'Each gateway start records the configuration’s hash and what changed since the previous start (config.loaded).',
    ],
    evidence: (ev) => ({ ...fig.changeFigures(ev), ...fig.approvalFigures(ev) }),
    exceptions: ['unapproved_changes', 'config_changes', 'self_approval'],
    outside_scope: [
      CONFIG_REVIEW,
      'Testing of changes before they reach production, and changes made by other paths than the gateway.',
    ],
  },
];

const integrityControl = (
  id: string,
  title: string,
  extra: (f: ConfigFacts) => string[],
  outside: string[],
): ControlDef => ({
  id,
  framework: 'pci-dss-4',
  title,
  enforced: (f) => [f.integrity(), ...extra(f)],
  evidence: (ev) => fig.integrityFigures(ev),
  exceptions: ['verify_failures', 'alarms'],
  outside_scope: outside,
});

const pci: ControlDef[] = [
  {
    id: '10.2.1.1',
    framework: 'pci-dss-4',
    title: 'Audit logs capture all individual user access to cardholder data.',
    enforced: (f) => [...f.masking(), f.recording()],
    evidence: (ev) => fig.sensitiveFigures(ev),
    exceptions: [],
    outside_scope: [CLASSIFY, BYPASS],
  },
  {
    id: '10.2.1.2',
    framework: 'pci-dss-4',
    title:
      'Audit logs capture all actions taken by any individual with administrative access, including any interactive use of application or system accounts.',
    enforced: (f) => [f.recording(), f.roles(), ...f.accessPolicies()],
    evidence: (ev) => fig.adminFigures(ev),
    exceptions: ['privileged_statements', 'machine_interactive'],
    outside_scope: [DB_LOG, 'Administrative access to the gateway host itself (shell, configuration files).'],
  },
  {
    id: '10.2.1.3',
    framework: 'pci-dss-4',
    title: 'Audit logs capture all access to audit logs.',
    enforced: (f) => [
      'Every sessions list / show / replay / export, audit verify and report is recorded (audit.accessed) with who asked and what, before the answer is sent.',
      f.roles(),
    ],
    evidence: (ev) => fig.auditAccessFigures(ev),
    exceptions: ['verify_failures'],
    outside_scope: [
      'Direct reads of the store (the SQLite file or the PostgreSQL tables) and of sink copies: protect them with file and database permissions.',
    ],
  },
  {
    id: '10.2.1.4',
    framework: 'pci-dss-4',
    title: 'Audit logs capture all invalid logical access attempts.',
    enforced: (f) => [
      f.defaultDeny(),
      'Failed authentications (bad, expired or revoked tokens, no access to a connection) and every policy refusal are recorded.',
    ],
    evidence: (ev) => ({ ...fig.authFigures(ev), ...fig.refusalFigures(ev) }),
    exceptions: ['failed_auth', 'refusals'],
    outside_scope: ['Failed sign-ins at the identity provider itself (they never reach the gateway).'],
  },
  {
    id: '10.2.1.5',
    framework: 'pci-dss-4',
    title: 'Audit logs capture all changes to identification and authentication credentials.',
    enforced: (f) => [
      'Revocations and restores of identities, time-boxed access grants and audit signing-key rotations are recorded.',
      f.requestable(),
    ],
    evidence: (ev) => fig.credentialFigures(ev),
    exceptions: ['restores'],
    outside_scope: [HR, 'Password and MFA changes at the identity provider.'],
  },
  {
    id: '10.2.2',
    framework: 'pci-dss-4',
    title:
      'Audit logs record user identification, type of event, date and time, success or failure, origination, and the affected data or resource.',
    enforced: () => [
      'Every record carries seq, µs UTC time, type, identity, source address, connection and session; statement records add the text, class, relations, decision and rule; outcomes add rows and SQLSTATE.',
    ],
    evidence: (ev) => fig.fieldFigures(ev),
    exceptions: ['incomplete_records'],
    outside_scope: [],
  },
  integrityControl(
    '10.3.2',
    'Audit log files are protected to prevent modifications by individuals.',
    () => [
      'Records are append-only through the gateway; an edit, deletion, insertion or reordering breaks the chain or a signature, and hoopctl audit verify names the first bad record.',
    ],
    ['Who may write the store (file permissions, database roles): keep it to the gateway’s account.'],
  ),
  integrityControl(
    '10.3.3',
    'Audit log files are promptly backed up to a central log server or other media that is difficult to modify.',
    (f) => [f.sinks()],
    [BACKUP, 'Write-once (WORM) storage of the sink copies.'],
  ),
  integrityControl(
    '10.3.4',
    'File integrity monitoring or change-detection is used on audit logs.',
    () => [
      'hoopctl audit verify (online, or offline on an export with a pinned public key) recomputes every hash and signature; each report states the chain heads it was computed over.',
    ],
    ['Running verification on a schedule and acting on failures.'],
  ),
  {
    id: '10.5.1',
    framework: 'pci-dss-4',
    title:
      'Audit log history is retained for at least 12 months, with the most recent three months immediately available.',
    enforced: (f) => [f.retention()],
    evidence: (ev) => fig.retentionFigures(ev),
    exceptions: ['short_retention'],
    outside_scope: [BACKUP, 'Archiving exports beyond the store’s retention.'],
  },
  {
    id: '7.2.5',
    framework: 'pci-dss-4',
    title:
      'Application and system accounts and their access privileges are assigned and managed based on least privilege.',
    enforced: (f, ev) => [
      ...fig
        .machineIdentities(ev)
        .map((m) => `${m.ref.subject} (${m.ref.kind}) may: ${f.policiesOf(m.ref, m.groups)}.`),
      ...f.issuers(),
    ],
    evidence: (ev) => fig.machineFigures(ev),
    exceptions: ['machine_interactive'],
    outside_scope: ['Periodic review of which systems hold which service account.', SECRETS],
  },
  {
    id: '8.6.1',
    framework: 'pci-dss-4',
    title:
      'Interactive use of system or application accounts is prevented unless needed, limited in time and attributable.',
    enforced: () => [
      'Machine identities authenticate with client credentials or workload tokens; each interactive tunnel (hoopctl connect) by one is recorded with its source and listed here as an exception.',
    ],
    evidence: (ev) => fig.machineFigures(ev),
    exceptions: ['machine_interactive'],
    outside_scope: [
      'Attributing an interactive use of a shared service account to the person who did it: hoopctl shows the source address, not the person.',
      SECRETS,
    ],
  },
  {
    id: '8.2.2',
    framework: 'pci-dss-4',
    title:
      'Group, shared or generic accounts are used only when necessary and every use is attributable to an individual.',
    enforced: (f) => [
      'Every session is opened by an identity from a configured issuer; the database login the gateway uses is never handed to a person or program.',
      ...f.issuers(),
    ],
    evidence: (ev) => fig.identificationFigures(ev),
    exceptions: ['unidentified_sessions'],
    outside_scope: [
      'Shared accounts at the identity provider (one IdP account used by several people).',
      DB_LOG,
    ],
  },
  {
    id: '8.6.2',
    framework: 'pci-dss-4',
    title:
      'Passwords of application and system accounts are not hard coded in scripts, configuration files or source code.',
    enforced: (f) => [f.noStaticSecrets(), ...f.issuers()],
    evidence: (ev) => ({
      sessions_by_kind: ev.sessionsByKind.toObject(),
      sessions_by_client: ev.sessionsByClient.toObject(),
      authentications_succeeded: ev.auth.succeeded,
    }),
    exceptions: [],
    outside_scope: [SECRETS, 'The database password file or variable on the gateway host.'],
  },
];

const nist: ControlDef[] = [
  {
    id: 'AC-2',
    framework: 'nist-800-53',
    title:
      'Account management: accounts are authorized, monitored, disabled when no longer needed, and reviewed.',
    enforced: (f) => [
      'Identities are listed with first and last use (hoopctl identities --stale 30d); revocation ends open sessions within seconds and refuses the identity until restored.',
      f.requestable(),
    ],
    evidence: (ev) => fig.lifecycleFigures(ev),
    exceptions: ['stale_identities', 'revoked_use', 'restores'],
    outside_scope: [HR],
  },
  {
    id: 'AC-6',
    framework: 'nist-800-53',
    title: 'Least privilege: only the access needed for assigned tasks is allowed.',
    enforced: (f) => [f.defaultDeny(), ...f.accessPolicies()],
    evidence: (ev) => ({ ...fig.accessFigures(ev), ...fig.refusalFigures(ev), ...fig.adminFigures(ev) }),
    exceptions: ['refusals', 'privileged_statements'],
    outside_scope: [
      'Privileges granted inside PostgreSQL to the gateway’s own login: keep them to what the policies need.',
    ],
  },
  {
    id: 'AU-2',
    framework: 'nist-800-53',
    title: 'Event logging: the events the system logs are defined and logged.',
    enforced: (f) => [
      f.recording(),
      'Logged: authentications, sessions, every statement and its outcome, refusals, approvals, access requests, identity changes, audit access, configuration loads, gateway starts and stops, checkpoints, purges.',
    ],
    evidence: (ev) => fig.eventFigures(ev),
    exceptions: ['fail_open'],
    outside_scope: [DB_LOG],
  },
  {
    id: 'AU-3',
    framework: 'nist-800-53',
    title: 'Content of audit records: what, when, where, source, outcome and identity.',
    enforced: () => [
      'Every record: seq, µs UTC time, type, identity (issuer, subject, name, groups, kind, client), source address, connection, session; statements add text, class, relations, decision, rule; outcomes add rows and SQLSTATE.',
    ],
    evidence: (ev) => fig.fieldFigures(ev),
    exceptions: ['incomplete_records'],
    outside_scope: [],
  },
  {
    id: 'AU-9',
    framework: 'nist-800-53',
    title: 'Protection of audit information from unauthorized access, modification and deletion.',
    enforced: (f) => [f.integrity(), f.roles(), f.sinks()],
    evidence: (ev) => fig.integrityFigures(ev),
    exceptions: ['verify_failures', 'alarms'],
    outside_scope: ['File and database permissions on the store.', BACKUP],
  },
  {
    id: 'AU-9(3)',
    framework: 'nist-800-53',
    title: 'Cryptographic protection of the integrity of audit information.',
    enforced: (f) => [
      f.integrity(),
      'Verification trusts public keys the auditor pins (--public-key), never a key found in the data it checks.',
    ],
    evidence: (ev) => fig.integrityFigures(ev),
    exceptions: ['verify_failures'],
    outside_scope: ['Custody of the signing key file on the gateway host (an HSM is not used).'],
  },
  {
    id: 'AU-10',
    framework: 'nist-800-53',
    title: 'Non-repudiation: evidence that an individual performed an action.',
    enforced: () => [
      'Each statement is recorded with the identity of a verified token before it runs; approvals record who decided; records are chained and signed, and this report is signed by the gateway’s key.',
    ],
    evidence: (ev) => ({ ...fig.fieldFigures(ev), ...fig.approvalFigures(ev) }),
    exceptions: ['incomplete_records', 'self_approval'],
    outside_scope: [IDP],
  },
  {
    id: 'AU-11',
    framework: 'nist-800-53',
    title: 'Audit record retention for the period the organization defines.',
    enforced: (f) => [f.retention()],
    evidence: (ev) => fig.retentionFigures(ev),
    exceptions: [],
    outside_scope: [BACKUP],
  },
  {
    id: 'IA-2',
    framework: 'nist-800-53',
    title: 'Identification and authentication of organizational users.',
    enforced: (f) => [
      ...f.issuers(),
      'Access tokens are verified (issuer, audience, expiry, signature algorithm allow-list) on every connection and API call.',
    ],
    evidence: (ev) => ({ ...fig.identificationFigures(ev), ...fig.authFigures(ev) }),
    exceptions: ['unidentified_sessions'],
    outside_scope: [IDP],
  },
  {
    id: 'IA-5',
    framework: 'nist-800-53',
    title: 'Authenticator management.',
    enforced: (f) => [f.noStaticSecrets(), f.integrity()],
    evidence: (ev) => fig.credentialFigures(ev),
    exceptions: ['restores'],
    outside_scope: [IDP, SECRETS],
  },
  {
    id: 'IA-9',
    framework: 'nist-800-53',
    title: 'Service identification and authentication.',
    enforced: (f, ev) => [
      ...f.issuers(),
      ...fig
        .machineIdentities(ev)
        .map((m) => `${m.ref.subject} (${m.ref.kind}) may: ${f.policiesOf(m.ref, m.groups)}.`),
    ],
    evidence: (ev) => fig.machineFigures(ev),
    exceptions: ['machine_interactive'],
    outside_scope: [SECRETS],
  },
];

export const CONTROLS: Record<FrameworkId, ControlDef[]> = { soc2, 'pci-dss-4': pci, 'nist-800-53': nist };
