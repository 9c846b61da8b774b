/**
 * What every builder of the gateway receives: the validated configuration, the logger, the version, the
 * metrics, readiness, the drain state and the list of services to stop at shutdown. Built once by main.ts.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Logger, pino } from 'pino';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { Drain } from '../ops/drain.js';
import { Readiness } from '../ops/health.js';
import { type GatewayMetrics, noMetrics } from '../ops/metrics.js';
import { createPrometheusMetrics, type PrometheusMetrics } from '../ops/prometheus.js';

export interface GatewayContext {
  config: GatewayConfig;
  /** Connection passwords resolved from password_env / password_file, by connection name. */
  passwords: Map<string, string>;
  /** The configuration file (absolute path). */
  configFile: string;
  /** The configuration file's directory: relative paths in it resolve here. */
  baseDir: string;
  logger: Logger;
  version: string;
  /** What the data path reports; `noMetrics` when no diagnostics listener is configured. */
  metrics: GatewayMetrics;
  /** The Prometheus exposition behind `metrics`, served by the diagnostics listener. */
  prometheus?: PrometheusMetrics;
  readiness: Readiness;
  drain: Drain;
  services: Services;
}

/** Background services, stopped in reverse order at shutdown (after sessions ended, before the log closes). */
export class Services {
  private readonly entries: { name: string; stop: () => void | Promise<void> }[] = [];

  add(name: string, stop: () => void | Promise<void>): void {
    this.entries.push({ name, stop });
  }

  async stopAll(onError: (name: string, err: Error) => void): Promise<void> {
    for (const { name, stop } of this.entries.reverse()) {
      try {
        await stop();
      } catch (err) {
        onError(name, err as Error);
      }
    }
  }
}

export function version(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    return JSON.parse(readFileSync(join(here, '..', '..', '..', 'package.json'), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
}

export function createContext(
  configFile: string,
  config: GatewayConfig,
  passwords: Map<string, string>,
): GatewayContext {
  const logger = pino(
    { name: 'hoop-gateway', level: process.env.HOOP_LOG_LEVEL ?? 'info' },
    pino.destination(2),
  );
  const gatewayVersion = version();
  const prometheus = config.diagnostics
    ? createPrometheusMetrics({
        connections: config.connections.map((c) => c.name),
        version: gatewayVersion,
        subjects: config.diagnostics.metrics_subjects,
      })
    : undefined;
  const drain = new Drain();
  return {
    config,
    passwords,
    configFile: resolve(configFile),
    baseDir: dirname(resolve(configFile)),
    logger,
    version: gatewayVersion,
    metrics: prometheus?.metrics ?? noMetrics,
    prometheus,
    readiness: new Readiness().add(drain),
    drain,
    services: new Services(),
  };
}
