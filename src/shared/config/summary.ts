/**
 * A configuration reduced to named items and a short hash of each (policies, rules, masking rules,
 * connections, issuers, settings), so two `config.loaded` records can say what was added, removed or
 * changed between two starts without carrying the configuration itself. Pure.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit-chain.js';
import type { GatewayConfig } from './schema.js';

/** item name → 16 hex digits of SHA-256 over the item's canonical JSON. */
export type ConfigSummary = Record<string, string>;

export interface ConfigDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

/** `data` of a `config.loaded` record. */
export interface ConfigLoadedData {
  /** SHA-256 hex over the canonical JSON of the whole parsed configuration. */
  hash: string;
  items: ConfigSummary;
  /** Against the previous `config.loaded` record; absent on the first start. */
  previous?: { seq: number; hash: string };
  diff?: ConfigDiff;
}

const short = (value: unknown) =>
  createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);

export function configHash(config: GatewayConfig): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

/**
 * Items an operator recognises: `policy:NAME` (who, which connections, roles), `rule:POLICY/RULE`,
 * `masking:POLICY/COLUMNS-OR-TAGS`, `connection:NAME`, `issuer:URL`, and one per settings section.
 * Webhook URLs can hold secrets, so they are named by position only.
 */
export function summarizeConfig(config: GatewayConfig): ConfigSummary {
  const items: ConfigSummary = {};
  for (const p of config.policies) {
    const { rules, masking, ...who } = p;
    items[`policy:${p.name}`] = short(who);
    for (const r of rules) items[`rule:${p.name}/${r.name}`] = short(r);
    for (const m of masking) {
      const what = m.name ?? [...(m.columns ?? []), ...(m.tags ?? []).map((t) => `tag:${t}`)].join(',');
      items[`masking:${p.name}/${what}`] = short(m);
    }
  }
  for (const c of config.connections) items[`connection:${c.name}`] = short(c);
  for (const i of config.identity.issuers) items[`issuer:${i.issuer}`] = short(i);
  config.notify.webhooks.forEach((w, n) => {
    items[`notify:webhook#${n + 1}`] = short(w);
  });
  items['settings:listen'] = short(config.listen);
  items['settings:store'] = short(config.store);
  items['settings:retention'] = short(config.retention);
  items['settings:recording'] = short(config.recording);
  items['settings:audit'] = short(config.audit);
  items['settings:masking'] = short(config.masking);
  return items;
}

export function diffSummaries(before: ConfigSummary, after: ConfigSummary): ConfigDiff {
  const added = Object.keys(after).filter((k) => !(k in before));
  const removed = Object.keys(before).filter((k) => !(k in after));
  const changed = Object.keys(after).filter((k) => k in before && before[k] !== after[k]);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

export function configLoadedData(
  config: GatewayConfig,
  previous?: { seq: number; data: Partial<ConfigLoadedData> },
): ConfigLoadedData {
  const items = summarizeConfig(config);
  const data: ConfigLoadedData = { hash: configHash(config), items };
  if (previous && typeof previous.data.hash === 'string') {
    data.previous = { seq: previous.seq, hash: previous.data.hash };
    data.diff = diffSummaries(previous.data.items ?? {}, items);
  }
  return data;
}
