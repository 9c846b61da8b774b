/**
 * A client of the native PostgreSQL listener, once its transport is settled (transport/pg-listener.ts):
 * the startup handshake asks for a cleartext password — sent inside TLS — that must be an access
 * token of a configured issuer, verified exactly as the HTTP bearer token is (same verifier,
 * revocation, identities). The startup packet's database names the connection; its user is free text,
 * recorded. Then the session is the tunnel's own: same gate, records and cancel handling.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ConnectionConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import { AuthError } from '../auth/errors.js';
import type { TunnelTarget } from '../transport/tunnel.js';
import { acceptStartup, refuseStartup, StartupRefused } from './startup.js';

export interface NativeClientOptions {
  connections: Map<string, ConnectionConfig>;
  maxMessageBytes: number;
  /** Verify an access token (records auth.failed when it is refused); throws with a one-line message. */
  authenticate(token: string, source: string): Promise<Identity>;
  /** Why this identity may open no database session here (an agent kept to /mcp), if it may not. */
  barred?(identity: Identity): string | undefined;
  canReach(identity: Identity, connection: string): boolean;
  /** A refused login (unknown connection, no policy, barred): recorded as auth.failed. */
  refused(identity: Identity, source: string, connection: string, reason: string): void;
  /** A CancelRequest that came over TLS. */
  cancel(processId: number, secretKey: Buffer): void;
  /** The logged-in client: run its session (the tunnel's onStream). */
  open(stream: Socket, target: TunnelTarget): void;
}

export function acceptNativeClient(
  stream: Socket,
  meta: { source: string; tls?: boolean; deadline?: number; loggedIn?: () => void },
  options: NativeClientOptions,
): void {
  let identity: Identity | undefined;
  let connection: ConnectionConfig | undefined;
  const checkToken = async (password: string, startup: Record<string, string>) => {
    const user = startup.user ?? '';
    // As PostgreSQL: without a database, the user name is the database name.
    const name = startup.database || user;
    if (!password) {
      throw new StartupRefused(
        `password authentication failed for user "${user}": the password is an access token (hoopctl token)`,
        '28P01',
      );
    }
    try {
      identity = await options.authenticate(password, meta.source);
    } catch (err) {
      // A revoked identity is not a wrong password: its token is fine, the identity may not log in.
      if (err instanceof AuthError && err.reason === 'revoked')
        throw new StartupRefused(err.message, '28000');
      throw new StartupRefused(
        `password authentication failed for user "${user}": ${(err as Error).message} (the password is an access token: hoopctl token)`,
        '28P01',
      );
    }
    const barred = options.barred?.(identity);
    if (barred) {
      options.refused(identity, meta.source, name, barred);
      throw new StartupRefused(barred, '28000');
    }
    connection = options.connections.get(name);
    if (!connection || !options.canReach(identity, name)) {
      // The same answer whether it does not exist or is not yours: names are not disclosed.
      const reason = `no connection "${name}" for ${identity.subject}`;
      options.refused(identity, meta.source, name, reason);
      throw new StartupRefused(
        `${reason} (the database is the connection name: see hoopctl connections)`,
        '3D000',
      );
    }
  };

  acceptStartup(stream, {
    maxMessageBytes: options.maxMessageBytes,
    passwordCheck: checkToken,
    // The listener's deadline runs from TCP connect: the login must be done within it too.
    deadline: meta.deadline,
    encrypted: meta.tls,
  }).then(
    (handshake) => {
      // No longer counted as unauthenticated (a cancel ends at once; a refusal below ends too).
      meta.loggedIn?.();
      if (handshake.result.kind === 'cancel') {
        options.cancel(handshake.result.processId, handshake.result.secretKey);
        stream.end();
        return;
      }
      if (!identity || !connection) {
        refuseStartup(stream, new StartupRefused('the login checked no access token', '28000'));
        return;
      }
      options.open(stream, {
        identity,
        connection,
        source: meta.source,
        client: 'native',
        sessionId: randomUUID(),
        login: { ...handshake.result, leftover: handshake.leftover, late: handshake.late },
        nativeUser: handshake.result.startup.user ?? '',
      });
    },
    (err: Error) => refuseStartup(stream, err),
  );
}
