/** Secrets named by the config (database passwords, webhook secrets) are read at start, never written anywhere. */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../src/shared/config/load.js';
import type { ConnectionConfig, GatewayConfig } from '../../src/shared/config/schema.js';

/** Each connection's password, from its password_env or password_file; errors name the key. */
export function resolveConnectionPasswords(config: GatewayConfig, file: string): Map<string, string> {
  const problems: string[] = [];
  const passwords = new Map<string, string>();
  config.connections.forEach((connection: ConnectionConfig, i) => {
    const key = `connections[${i}]`;
    if (connection.password_env) {
      const value = process.env[connection.password_env];
      if (value === undefined || value === '') {
        problems.push(`${key}.password_env: environment variable ${connection.password_env} is not set`);
      } else passwords.set(connection.name, value);
    } else if (connection.password_file) {
      try {
        passwords.set(connection.name, readFileSync(connection.password_file, 'utf8').replace(/\r?\n$/, ''));
      } catch (err) {
        problems.push(
          `${key}.password_file: cannot read ${connection.password_file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        );
      }
    } else {
      passwords.set(connection.name, ''); // trust / certificate auth upstream
    }
  });
  const names = new Set<string>();
  config.connections.forEach((c, i) => {
    if (names.has(c.name)) problems.push(`connections[${i}].name: "${c.name}" is used twice`);
    names.add(c.name);
  });
  if (problems.length > 0) throw new ConfigError(file, problems);
  return passwords;
}

/** Files the config names must be readable at start, not at the first connection. */
export function checkReferencedFiles(config: GatewayConfig, file: string): void {
  const problems: string[] = [];
  const check = (key: string, path: string | undefined) => {
    if (!path) return;
    try {
      readFileSync(path);
    } catch (err) {
      problems.push(
        `${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  };
  check('listen.tls.cert', config.listen.tls?.cert);
  check('listen.tls.key', config.listen.tls?.key);
  for (const [i, c] of config.connections.entries()) check(`connections[${i}].tls.ca`, c.tls.ca);
  for (const [i, iss] of config.identity.issuers.entries()) check(`identity.issuers[${i}].ca`, iss.ca);
  check('audit.signing_key_file', config.audit.signing_key_file);
  check('diagnostics.tls.cert', config.diagnostics?.tls?.cert);
  check('diagnostics.tls.key', config.diagnostics?.tls?.key);
  if (problems.length > 0) throw new ConfigError(file, problems);
}

/** Secrets named by `*_env` keys must be set at start: an unset one would silently disable a signature. */
export function checkNamedSecrets(config: GatewayConfig, file: string): void {
  const problems: string[] = [];
  const check = (key: string, name: string | undefined) => {
    if (name && !process.env[name]) problems.push(`${key}: environment variable ${name} is not set`);
  };
  for (const [i, hook] of config.notify.webhooks.entries())
    check(`notify.webhooks[${i}].secret_env`, hook.secret_env);
  for (const [i, sink] of config.audit.sinks.entries()) {
    if (sink.type === 'webhook') check(`audit.sinks[${i}].secret_env`, sink.secret_env);
  }
  check('masking.token_secret_env', config.masking.token_secret_env);
  for (const [i, issuer] of config.identity.issuers.entries())
    check(`identity.issuers[${i}].console_client_secret_env`, issuer.console_client_secret_env);
  if (problems.length > 0) throw new ConfigError(file, problems);
}
