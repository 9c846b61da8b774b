/**
 * Webhooks for approval and access events (`notify.webhooks[]`). Fire and forget: a delivery runs
 * beside the statement, never in its way; failures retry with exponential backoff and are logged.
 *
 * Body (format json): `{ "event": "approval.requested", "time": "...", "gateway": "...", "data": {...} }`,
 * signed with `X-Hoop-Signature: sha256=<hex HMAC-SHA256 of the body>` when `secret_env` names a secret.
 * Format slack: `{ "text": "...", "blocks": [...] }`, what a Slack (or Mattermost) incoming webhook takes.
 */
import { createHmac } from 'node:crypto';
import type { GatewayConfig } from '../../src/shared/config/schema.js';

export type NotifyEvent =
  | 'approval.requested'
  | 'approval.granted'
  | 'approval.rejected'
  | 'approval.expired'
  | 'approval.withdrawn'
  | 'access.requested'
  | 'access.granted'
  | 'access.rejected'
  | 'access.expired'
  | 'policy.blocked';

export interface NotifyPayload {
  /** One line a person reads in chat. */
  summary: string;
  /** The command that decides it, when there is one. */
  command?: string;
  data: Record<string, unknown>;
}

export interface Notifier {
  emit(event: NotifyEvent, payload: NotifyPayload): void;
  /** Resolves when every delivery started so far has finished (tests, shutdown). */
  idle(): Promise<void>;
}

export interface NotifierOptions {
  attempts?: number;
  backoffMs?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  onError?: (url: string, err: Error) => void;
}

type Webhook = GatewayConfig['notify']['webhooks'][number];

export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function bodyFor(
  webhook: Pick<Webhook, 'format'>,
  event: NotifyEvent,
  payload: NotifyPayload,
  time: string,
): string {
  if (webhook.format === 'slack') {
    const text = `hoop: ${payload.summary}${payload.command ? `\n\`${payload.command}\`` : ''}`;
    const statement = typeof payload.data.statement === 'string' ? payload.data.statement : undefined;
    return JSON.stringify({
      text,
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: `*${event}* — ${payload.summary}` } },
        ...(statement
          ? [{ type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${statement.slice(0, 2900)}\`\`\`` } }]
          : []),
        ...(payload.command
          ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `\`${payload.command}\`` }] }]
          : []),
      ],
    });
  }
  return JSON.stringify({
    event,
    time,
    summary: payload.summary,
    command: payload.command,
    data: payload.data,
  });
}

export function createNotifier(webhooks: readonly Webhook[], options: NotifierOptions = {}): Notifier {
  const attempts = options.attempts ?? 5;
  const backoffMs = options.backoffMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const env = options.env ?? process.env;
  const inflight = new Set<Promise<void>>();

  const deliver = async (webhook: Webhook, event: NotifyEvent, payload: NotifyPayload) => {
    const body = bodyFor(webhook, event, payload, new Date().toISOString());
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-hoop-event': event };
    const secret = webhook.secret_env ? env[webhook.secret_env] : undefined;
    if (secret) headers['x-hoop-signature'] = signBody(body, secret);
    let delay = backoffMs;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const response = await fetch(webhook.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return;
        throw new Error(`answered ${response.status}`);
      } catch (err) {
        if (attempt === attempts) {
          options.onError?.(
            webhook.url,
            new Error(`${event} not delivered after ${attempts} attempts: ${(err as Error).message}`),
          );
          return;
        }
        await new Promise((r) => setTimeout(r, delay).unref());
        delay *= 2;
      }
    }
  };

  return {
    emit(event, payload) {
      for (const webhook of webhooks) {
        if (
          webhook.events &&
          !webhook.events.some((e) => e === event || (e.endsWith('.*') && event.startsWith(e.slice(0, -1))))
        ) {
          continue;
        }
        const p = deliver(webhook, event, payload).finally(() => inflight.delete(p));
        inflight.add(p);
      }
    },
    async idle() {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
  };
}
