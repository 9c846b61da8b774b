/**
 * Startup parameters are session settings like any other: each one a client sends (directly, or as
 * `-c name=value` / `--name=value` in `options`) is judged by policy as the equivalent `SET` would be,
 * and the settings the gateway holds for the session (a read-only session's
 * default_transaction_read_only) cannot be overridden. Pure.
 */
import type { Identity } from '../../src/shared/identity.js';
import type { Decision } from '../../src/shared/statement.js';
import { classify } from '../sql/classify.js';
import { quoteIdentifier, quoteLiteral } from '../sql/names.js';
import { parseBoolean } from '../sql/settings.js';
import { AGENT_SETTINGS_RULE } from './agents.js';
import type { DecideOptions, PolicyEngine } from './engine.js';

export interface StartupSetting {
  name: string;
  value: string;
}

export interface StartupJudgement {
  /** What to send upstream as startup parameters (the client's, then the gateway's held ones). */
  upstream: Record<string, string>;
  /** Settings the gateway holds for the session (lower-case name → value). */
  held: Map<string, string>;
  /** The first parameter policy refuses, with the decision. */
  refused?: { setting: StartupSetting; decision: Decision };
}

/**
 * What drivers send at every connect on their own: how values print and the client's name. Refusing
 * them would refuse every psql or JDBC connection of an identity whose policy has no `session` rule,
 * so only an explicit deny rule (or a side channel) refuses them; an agent, which may not change
 * session settings, may still connect with them.
 */
const DRIVER_PARAMETERS = new Set([
  'application_name',
  'datestyle',
  'timezone',
  'extra_float_digits',
  'intervalstyle',
]);

/** The gateway parses SQL as UTF-8, so the client encoding is always UTF8 (startup.ts refuses others). */
const GATEWAY_HELD = new Map([['client_encoding', 'UTF8']]);

export function judgeStartup(
  engine: PolicyEngine,
  identity: Identity,
  connection: string,
  settings: readonly StartupSetting[],
  opts: DecideOptions = {},
): StartupJudgement {
  const held = new Map<string, string>();
  if (!engine.mayWrite(identity, connection, opts)) held.set('default_transaction_read_only', 'on');
  const upstream: Record<string, string> = {};
  for (const setting of settings) {
    const key = setting.name.toLowerCase();
    if (GATEWAY_HELD.has(key)) continue;
    const holds = held.get(key === 'transaction_read_only' ? 'default_transaction_read_only' : key);
    if (holds !== undefined && parseBoolean(setting.value) !== parseBoolean(holds)) {
      return {
        upstream,
        held,
        refused: {
          setting,
          decision: {
            action: 'deny',
            policy: null,
            rule: 'read-only-session',
            reason: `this identity may not write on "${connection}", so its sessions are read-only (${key} stays ${holds})`,
          },
        },
      };
    }
    const decision = engine.decideAll(identity, connection, classify(equivalentSet(setting)), opts).decision;
    const driverDefault =
      DRIVER_PARAMETERS.has(key) &&
      (decision.rule === AGENT_SETTINGS_RULE || decision.rule === 'default-deny');
    if (decision.action !== 'allow' && !driverDefault)
      return { upstream, held, refused: { setting, decision } };
    upstream[key] = setting.value;
  }
  for (const [name, value] of held) upstream[name] = value;
  for (const [name, value] of GATEWAY_HELD) upstream[name] = value;
  return { upstream, held };
}

/** `SET "name" TO 'value'`: what policy judges a startup parameter as. */
export function equivalentSet(setting: StartupSetting): string {
  return `SET ${quoteIdentifier(setting.name.toLowerCase())} TO ${quoteLiteral(setting.value)}`;
}
