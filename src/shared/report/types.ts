/**
 * The compliance report's shape (SPEC.md additions: `hoopctl report`): what the gateway signs and the
 * CLI verifies. One document covers one framework, several, or all of them (`framework: "all"`).
 */

export const FRAMEWORKS = ['soc2', 'pci-dss-4', 'nist-800-53'] as const;
export type FrameworkId = (typeof FRAMEWORKS)[number];

export const REPORT_FORMAT = 'hoop-compliance-report';
export const REPORT_VERSION = 1;
export const REPORT_FORMATS = ['html', 'md', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Who, as the report names an identity: enough to find it again (`hoopctl sessions list --identity`). */
export interface IdentityRef {
  issuer: string;
  subject: string;
  name?: string;
  kind?: string;
}

/** One record an auditor should look at, and why (drill in with `hoopctl sessions show <session>`). */
export interface ReportException {
  /** Absent for gateway-wide records (a configuration change, a key rotation). */
  session?: string;
  seq: number;
  why: string;
}

/** A figure of the evidence: a count, or a short list (top identities, what changed). */
export type EvidenceValue =
  | number
  | string
  | boolean
  | null
  | EvidenceValue[]
  | { [key: string]: EvidenceValue };

export interface ControlResult {
  /** As the framework writes it: `CC6.1`, `10.2.1.3`, `AU-9`. */
  id: string;
  framework: FrameworkId;
  /** The control's wording, in one line. */
  title: string;
  /** What hoopctl enforces for it, from the configuration in force when the report was made. */
  enforced: string[];
  /** Figures computed from the records of the period (recomputable from an export). */
  evidence: Record<string, EvidenceValue>;
  /** Records to look into; at most EXCEPTIONS_KEPT, the full number in exceptions_total. */
  exceptions: ReportException[];
  exceptions_total: number;
  /** What this control needs that hoopctl does not do (and so does not claim). */
  outside_scope: string[];
}

export interface ChainHeadRef {
  /** The chain's name: `main` while the store keeps one chain; a replica id once each has its own. */
  chain: string;
  seq: number;
  hash: string;
}

/** The pictures' numbers (the HTML draws them; Markdown and JSON carry them as they are). */
export interface ReportCharts {
  statements_per_day: { day: string; allow: number; deny: number; approve: number }[];
  refusals_per_day: { day: string; refusals: number; failed_logins: number }[];
  approval_latency: {
    buckets: { label: string; count: number }[];
    decided: number;
    mean_seconds: number | null;
    max_seconds: number | null;
  };
  sensitive_access_top: { identity: IdentityRef; statements: number; columns: string[] }[];
}

export interface ReportSignature {
  alg: 'Ed25519';
  /** 16 hex digits of SHA-256 over the signing key's SPKI DER (the audit checkpoint key's id). */
  key_id: string;
  /** Base64 Ed25519 signature over the canonical JSON of the report without `signature`. */
  value: string;
}

export interface ComplianceReport {
  format: typeof REPORT_FORMAT;
  version: number;
  /** One framework id, "all", or several joined with commas (`soc2,nist-800-53`). */
  framework: string;
  frameworks: FrameworkId[];
  generated_at: string;
  gateway: { version: string };
  /** since inclusive, until exclusive (RFC 3339, microseconds, UTC). */
  period: { from: string; to: string };
  /** Records of other connections are left out; gateway-wide records (no connection) stay in. */
  scope: { connection?: string };
  /** The heads of every chain in the store when the report was computed. */
  chain_heads: ChainHeadRef[];
  /** Records of the period that went into the figures. */
  records: number;
  charts: ReportCharts;
  controls: ControlResult[];
  signature?: ReportSignature;
}

/** At most this many exceptions are listed per control (all are counted). */
export const EXCEPTIONS_KEPT = 50;
