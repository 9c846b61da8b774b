/**
 * The gateway as an OAuth 2.0 protected resource for MCP clients (MCP authorization; RFC 9728
 * Protected Resource Metadata; RFC 6750 bearer challenges). Pure.
 *
 * The resource is the gateway itself — the URL clients reach it at, which is also the audience its
 * tokens carry — so a client that asks its authorization server for a token for this resource (RFC
 * 8707) gets exactly the token `hoopctl` uses.
 */
import type { IncomingMessage } from 'node:http';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { PROTECTED_RESOURCE_PATH } from '../../src/shared/mcp.js';

export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  bearer_methods_supported: string[];
  scopes_supported?: string[];
  resource_name: string;
}

/** The gateway's base URL: listen.public_url, else what this request reached (scheme and Host). */
export function resourceUrl(config: Pick<GatewayConfig, 'listen'>, request: IncomingMessage): string {
  if (config.listen.public_url) return new URL(config.listen.public_url).origin;
  const scheme = config.listen.tls ? 'https' : 'http';
  try {
    return new URL(`${scheme}://${request.headers.host ?? config.listen.address}`).origin;
  } catch {
    return new URL(`${scheme}://${config.listen.address}`).origin;
  }
}

export function protectedResourceMetadata(
  config: Pick<GatewayConfig, 'identity'>,
  resource: string,
): ProtectedResourceMetadata {
  // People's and service accounts' issuers first: those are where an MCP client can get a token.
  const issuers = [...config.identity.issuers].sort(
    (a, b) => Number(a.kind !== 'oidc') - Number(b.kind !== 'oidc'),
  );
  const scopes = [...new Set(issuers.filter((i) => i.kind === 'oidc').flatMap((i) => i.scopes))];
  return {
    resource,
    authorization_servers: [...new Set(issuers.map((i) => i.issuer))],
    bearer_methods_supported: ['header'],
    ...(scopes.length ? { scopes_supported: scopes } : {}),
    resource_name: 'hoop gateway',
  };
}

export function metadataUrl(resource: string): string {
  return `${resource}${PROTECTED_RESOURCE_PATH}`;
}

/** RFC 6750 §3 challenge; without `error` when the request carried no token at all. */
export function bearerChallenge(
  resource: string,
  error?: { code: 'invalid_token'; description: string },
): string {
  const parts = [];
  if (error) {
    parts.push(`error="${error.code}"`, `error_description="${quote(error.description)}"`);
  }
  parts.push(`resource_metadata="${metadataUrl(resource)}"`);
  return `Bearer ${parts.join(', ')}`;
}

/** A quoted-string may not carry `"` or `\` unescaped, nor control characters. */
function quote(text: string): string {
  return text
    .replace(/[\\"]/g, "'")
    .replace(/[\x00-\x1f\x7f]/g, ' ')
    .slice(0, 200);
}
