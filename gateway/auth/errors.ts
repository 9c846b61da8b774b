/** Why a bearer token was refused: a short machine code for records, and one line for the person. */
export type AuthFailure =
  | 'malformed'
  | 'unknown_issuer'
  | 'alg_not_allowed'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  | 'missing_claim'
  | 'bound_claims'
  | 'issuer_unreachable'
  | 'revoked';

export class AuthError extends Error {
  constructor(
    readonly reason: AuthFailure,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}
