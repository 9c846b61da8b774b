/** Secrets named by the config (database passwords, webhook secrets) are read at start, never written anywhere. */
import { readFileSync } from 'node:fs';
import type { KeyLocator } from '../../src/shared/config/load.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { checkReplicaId } from '../audit/chain.js';

/** Each connection's password, from its password_env or password_file; problems name the key. */
export function resolveConnectionPasswords(
  config: GatewayConfig,
  where: KeyLocator,
  env: NodeJS.ProcessEnv = process.env,
): { passwords: Map<string, string>; problems: string[] } {
  const problems: string[] = [];
  const passwords = new Map<string, string>();
  config.connections.forEach((connection, i) => {
    if (connection.password_env) {
      const value = env[connection.password_env];
      if (value === undefined || value === '') {
        problems.push(
          `${where(['connections', i, 'password_env'])}: environment variable ${connection.password_env} is not set`,
        );
      } else passwords.set(connection.name, value);
    } else if (connection.password_file) {
      try {
        passwords.set(connection.name, readFileSync(connection.password_file, 'utf8').replace(/\r?\n$/, ''));
      } catch (err) {
        problems.push(
          `${where(['connections', i, 'password_file'])}: cannot read ${connection.password_file} (${errorCode(err)})`,
        );
      }
    } else {
      passwords.set(connection.name, ''); // trust / certificate auth upstream
    }
  });
  return { passwords, problems };
}

/**
 * Secrets named by `*_env` keys must be set at start (an unset one would silently disable a signature), and
 * hold what start-up will take from them: every problem, not the first.
 */
export function namedSecretProblems(
  config: GatewayConfig,
  where: KeyLocator,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const problems: string[] = [];
  const check = (path: (string | number)[], name: string | undefined) => {
    if (name && !env[name]) problems.push(`${where(path)}: environment variable ${name} is not set`);
  };
  for (const [i, hook] of config.notify.webhooks.entries())
    check(['notify', 'webhooks', i, 'secret_env'], hook.secret_env);
  for (const [i, sink] of config.audit.sinks.entries()) {
    if (sink.type === 'webhook') check(['audit', 'sinks', i, 'secret_env'], sink.secret_env);
  }
  for (const [i, issuer] of config.identity.issuers.entries())
    check(['identity', 'issuers', i, 'console_client_secret_env'], issuer.console_client_secret_env);
  const tokenEnv = config.masking.token_secret_env;
  check(['masking', 'token_secret_env'], tokenEnv);
  // The same rule masking/secret.ts applies when it loads the key.
  if (tokenEnv && env[tokenEnv] && env[tokenEnv].length < 16)
    problems.push(`${where(['masking', 'token_secret_env'])}: ${tokenEnv} must hold at least 16 characters`);
  // HOOP_REPLICA_ID stands in for replica.id: checked where the key would have been.
  if (!config.replica.id && env.HOOP_REPLICA_ID) {
    try {
      checkReplicaId(env.HOOP_REPLICA_ID);
    } catch (err) {
      problems.push(`HOOP_REPLICA_ID (for replica.id): ${(err as Error).message}`);
    }
  }
  return problems;
}

export function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
