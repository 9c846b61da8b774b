/** Exit codes of every hoopctl command (SPEC.md). */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  notAuthenticated: 3,
  denied: 4,
  approval: 5,
  database: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for a person: one clear line, and the exit code the CLI ends with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.error,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A refusal the gateway's HTTP API sends as JSON: { error: { code, message } }. */
export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string };
}
export type ApiErrorCode =
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'bad_request'
  | 'conflict'
  | 'unavailable'
  | 'internal';
