/**
 * `config.loaded`, written at each gateway start: the configuration's hash, its items' hashes, and what
 * was added, removed or changed since the previous `config.loaded` record — so drift of the gateway's
 * own policy over a period is evidence too (SOC 2 CC8.1).
 */
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { type ConfigLoadedData, configLoadedData } from '../../src/shared/config/summary.js';
import type { Store } from '../store/types.js';

export async function recordConfigLoaded(
  store: Pick<Store, 'listRecords'>,
  log: { append(input: AuditRecordInput): Promise<unknown> },
  config: GatewayConfig,
  file: string,
): Promise<ConfigLoadedData> {
  const [previous] = await store.listRecords({ type: 'config.loaded', descending: true, limit: 1 });
  const data = configLoadedData(
    config,
    previous && { seq: previous.seq, data: previous.data as Partial<ConfigLoadedData> },
  );
  await log.append({ type: 'config.loaded', data: { file, ...data } });
  return data;
}
