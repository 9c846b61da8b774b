/**
 * A typed refusal: why the gateway will not run a statement, as a domain value. Checks and services
 * (the gate's checks, approvals, masking) return these; only the relay's edge turns one into a wire
 * ErrorResponse, so nothing but the relay knows the protocol.
 */
export interface Refusal {
  /** SQLSTATE the client receives (42501 denied, 58030 audit unavailable, 42601 syntax error ...). */
  sqlstate: string;
  /** Stable machine-readable reason, sent as the error's routine field (`hoop_policy_denied` ...). */
  routine: string;
  message: string;
  detail?: string;
  hint?: string;
  /** A syntax error's cursor position: 1-based, in characters of the statement text (the `P` field). */
  position?: number;
  /** Fields sent as the database would send them (a syntax error): file and line of the parser. */
  file?: string;
  line?: number;
}

/** The statement could not be recorded durably, so it is not run (fail closed). */
export const AUDIT_UNAVAILABLE: Refusal = {
  sqlstate: '58030',
  routine: 'hoop_audit_unavailable',
  message: 'hoop: the audit log cannot be written, so the statement was not executed',
  hint: 'This gateway fails closed: nothing runs unrecorded. Ask the operator to check the store.',
};
