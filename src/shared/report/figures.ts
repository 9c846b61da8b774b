/**
 * Groups of figures the controls share, each computed from the evidence collector only (never from the
 * configuration), so an export of the same period yields the same numbers. Pure.
 */
import type { EvidenceCollector } from './evidence.js';
import type { EvidenceValue } from './types.js';

type Figures = Record<string, EvidenceValue>;

export function accessFigures(ev: EvidenceCollector): Figures {
  return {
    sessions: ev.sessions.started,
    sessions_by_kind: ev.sessionsByKind.toObject(),
    statements: ev.statements.total,
    allowed: ev.statements.allow,
    needed_approval: ev.statements.approve,
    denied: ev.statements.deny,
    refusals: ev.refusals,
  };
}

export function refusalFigures(ev: EvidenceCollector): Figures {
  return {
    refusals: ev.refusals,
    refusals_by_rule: Object.fromEntries(ev.refusalsByRule.top(10).map((t) => [t.key, t.count])),
  };
}

export function authFigures(ev: EvidenceCollector): Figures {
  return {
    authentications_succeeded: ev.auth.succeeded,
    authentications_failed: ev.auth.failed,
    failed_by_reason: ev.failedByReason.toObject(),
    failing_sources: ev.failedBySource.size,
    top_failing_sources: ev.failedBySource.top(5).map((t) => ({ source: t.key, failures: t.count })),
  };
}

export function approvalFigures(ev: EvidenceCollector): Figures {
  return {
    approvals_requested: ev.approvals.requested,
    approvals_granted: ev.approvals.granted,
    approvals_rejected: ev.approvals.rejected,
    approvals_expired: ev.approvals.expired,
    approvals_withdrawn: ev.approvals.withdrawn,
    self_approvals: ev.exceptions.self_approval.total,
  };
}

export function changeFigures(ev: EvidenceCollector): Figures {
  return {
    changes_with_approval: ev.changes.approved,
    changes_by_machine_identities: ev.changes.by_machines,
    changes_by_people_without_approval: ev.changes.by_humans_unapproved,
    configuration_loads: ev.config.loads,
    configuration_changes: ev.config.changes,
    configuration_items_added: ev.config.added,
    configuration_items_removed: ev.config.removed,
    configuration_items_changed: ev.config.changed,
    configuration_hash: ev.configHash,
  };
}

export function lifecycleFigures(ev: EvidenceCollector): Figures {
  const kinds: Record<string, number> = {};
  for (const s of ev.sortedIdentities())
    kinds[s.ref.kind ?? 'unknown'] = (kinds[s.ref.kind ?? 'unknown'] ?? 0) + 1;
  return {
    identities_active: ev.identities.entries.size,
    identities_by_kind: kinds,
    revocations: ev.lifecycle.revoked,
    restores: ev.lifecycle.restored,
    access_requests: ev.access.requested,
    access_granted: ev.access.granted,
    access_rejected: ev.access.rejected,
    access_expired: ev.access.expired,
    stale_identities: ev.exceptions.stale_identities.total,
  };
}

export function credentialFigures(ev: EvidenceCollector): Figures {
  return {
    revocations: ev.lifecycle.revoked,
    restores: ev.lifecycle.restored,
    access_granted: ev.access.granted,
    access_expired: ev.access.expired,
    signing_key_rotations: ev.keyRotations.length,
    key_rotations: ev.keyRotations.map((k) => ({
      seq: k.seq,
      time: k.time,
      old: k.old_key_id,
      new: k.new_key_id,
    })),
  };
}

export function sensitiveFigures(ev: EvidenceCollector): Figures {
  const top = ev
    .sortedIdentities()
    .filter((s) => s.sensitive > 0)
    .sort((a, b) => b.sensitive - a.sensitive)
    .slice(0, 20);
  return {
    statements_touching_masked_columns: ev.statements.sensitive,
    identities_touching_masked_columns: ev.sortedIdentities().filter((s) => s.sensitive > 0).length,
    by_identity: top.map((s) => ({
      subject: s.ref.subject,
      kind: s.ref.kind ?? null,
      statements: s.sensitive,
      columns: [...s.columns].sort(),
    })),
  };
}

export function adminFigures(ev: EvidenceCollector): Figures {
  const admins = ev.sortedIdentities().filter((s) => s.ddl + s.dcl + s.admin > 0);
  return {
    ddl: ev.byClass.toObject().ddl ?? 0,
    dcl: ev.byClass.toObject().dcl ?? 0,
    admin: ev.byClass.toObject().admin ?? 0,
    by_identity: admins.map((s) => ({
      subject: s.ref.subject,
      kind: s.ref.kind ?? null,
      ddl: s.ddl,
      dcl: s.dcl,
      admin: s.admin,
    })),
    interactive_machine_sessions: ev.exceptions.machine_interactive.total,
  };
}

export function auditAccessFigures(ev: EvidenceCollector): Figures {
  return {
    audit_log_accesses: Object.values(ev.auditAccess.toObject()).reduce((a, b) => a + b, 0),
    by_action: ev.auditAccess.toObject(),
    by_identity: ev.auditAccessBy.toObject(),
  };
}

export function fieldFigures(ev: EvidenceCollector): Figures {
  return {
    records: ev.records,
    action_records_checked: ev.fields.checked,
    action_records_incomplete: ev.fields.incomplete,
    fields:
      'seq, time (µs UTC), type, identity (issuer, subject, name, groups, kind, client), source, connection, session, decision, rule, statement text, outcome (rows, SQLSTATE)',
  };
}

export function integrityFigures(ev: EvidenceCollector): Figures {
  return {
    chain_verified: ev.verified,
    records: ev.records,
    checkpoints_signed_in_period: ev.checkpoints,
    signing_keys_in_period: [...ev.checkpointKeys].sort(),
    signing_key_rotations: ev.keyRotations.length,
    alarms: ev.exceptions.alarms.total,
  };
}

export function retentionFigures(ev: EvidenceCollector): Figures {
  return {
    purges: ev.retention.purges,
    records_purged: ev.retention.records_purged,
    shortest_retention_days_purged_at: ev.retention.min_days,
  };
}

/** Service and workload identities active in the period. */
export function machineIdentities(ev: EvidenceCollector) {
  return ev.sortedIdentities().filter((s) => s.ref.kind && s.ref.kind !== 'human');
}

export function machineFigures(ev: EvidenceCollector): Figures {
  const machines = machineIdentities(ev);
  return {
    machine_identities: machines.length,
    machines: machines.map((s) => ({
      subject: s.ref.subject,
      kind: s.ref.kind ?? null,
      sessions: s.sessions,
      statements: s.statements,
      classes: s.classes.toObject(),
      clients: [...s.clients].sort(),
      interactive_sessions: s.interactive,
    })),
  };
}

export function eventFigures(ev: EvidenceCollector): Figures {
  return {
    records: ev.records,
    by_type: ev.byType.toObject(),
    gateway_starts: ev.gateway.starts,
    fail_open_starts: ev.gateway.fail_open_starts,
  };
}

export function identificationFigures(ev: EvidenceCollector): Figures {
  return {
    sessions: ev.sessions.started,
    sessions_without_identity: ev.exceptions.unidentified_sessions.total,
    identities_active: ev.identities.entries.size,
    sessions_by_kind: ev.sessionsByKind.toObject(),
    sessions_by_client: ev.sessionsByClient.toObject(),
  };
}
