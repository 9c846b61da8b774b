/** Shapes of the gateway's HTTP API, shared by the gateway (answers) and the CLI (asks). */
import type { Identity } from './identity.js';

/** GET /.well-known/hoop-gateway — public; tells `hoopctl login` where to authenticate. */
export interface GatewayDiscovery {
  /** The interactive (device flow) issuer and its public client id. */
  issuer: string;
  client_id: string;
  /** The value tokens must carry in `aud` (sent as RFC 8707 `resource`). */
  audience: string;
  /** OAuth scopes to ask for. */
  scopes: string[];
  version: string;
}

/** GET /v1/whoami */
export interface WhoAmI {
  identity: Identity;
  /** Policy names that apply to me (standing and time-boxed). */
  policies: string[];
  review: boolean;
  audit: boolean;
  admin: boolean;
  token_expires_at?: string;
}

/** GET /v1/connections — what I may reach, and the rules that apply to me there. */
export interface ConnectionView {
  name: string;
  description?: string;
  database: string;
  policies: { name: string; rules: RuleView[]; masking: { columns?: string[]; tags?: string[]; mask: string }[] }[];
}

export interface RuleView {
  name: string;
  action: 'allow' | 'deny' | 'approve';
  classes: string[];
  relations?: string[];
  functions?: string[];
  flags?: string[];
  approvers?: string[];
  timeout?: string;
}

/** Headers the tunnel's WebSocket upgrade carries besides Authorization. */
export const TUNNEL_HEADERS = {
  /** The one-time password the local client must present (SCRAM) at the gateway's startup handshake. */
  localPassword: 'x-hoop-local-password',
  /** Which CLI command opened the tunnel: connect | exec. */
  client: 'x-hoop-client',
  /** exec --approval ID: the approval request whose statement this tunnel runs. */
  approval: 'x-hoop-approval',
  /** Upgrade response: the gateway's session id, for the audit trail. */
  session: 'x-hoop-session',
} as const;

export const TUNNEL_PATH = '/v1/tunnel/';
export const DISCOVERY_PATH = '/.well-known/hoop-gateway';
