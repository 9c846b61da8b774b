/**
 * What `hoopctl exec` shows while a statement waits for approval: a spinner on a terminal, plain
 * progress lines otherwise (CI logs show when it started waiting, and that it still is). The gateway
 * says a statement is held with a NoticeResponse whose routine is `hoop_approval_waiting`.
 */
import { formatDuration } from '../../shared/duration.js';
import { ce, info, type Progress, progress } from '../output.js';
import type { PgError } from '../pg-session.js';

/** Routines of the gateway's approval refusals that end `hoopctl exec` with exit code 5. */
export const APPROVAL_ROUTINES = new Set([
  'hoop_approval_rejected',
  'hoop_approval_expired',
  'hoop_approval_withdrawn',
  'hoop_approval_pending',
  'hoop_approval_invalid',
]);

export function approvalIdOf(message: string): string | undefined {
  return /#(\d+)/.exec(message)?.[1];
}

export interface ApprovalWatcher {
  /** Handle a notice; true when it was about an approval (and shown). */
  notice(n: PgError): boolean;
  /** The statement finished (failure = its error): end the spinner with the outcome. */
  finish(failure?: PgError): void;
}

export function createApprovalWatcher(options: { intervalMs?: number } = {}): ApprovalWatcher {
  let current: { id: string; spinner: Progress; since: number; timer: NodeJS.Timeout } | undefined;
  const stop = () => {
    if (current) clearInterval(current.timer);
  };
  return {
    notice(n) {
      if (n.routine === 'hoop_approval_waiting') {
        const id = approvalIdOf(n.message) ?? '?';
        const base = n.message.replace(/^hoop: /, '');
        stop();
        const spinner = progress(`${base}\n  ${n.detail ?? `hoopctl approve ${id}`}`);
        const since = Date.now();
        const timer = setInterval(() => {
          spinner.update(
            `still ${base} — ${formatDuration(Math.round((Date.now() - since) / 1000) * 1000)} so far`,
          );
        }, options.intervalMs ?? 30_000);
        timer.unref();
        current = { id, spinner, since, timer };
        return true;
      }
      if (n.routine === 'hoop_approval_granted') {
        const text = n.message.replace(/^hoop: /, '');
        if (current) {
          stop();
          current.spinner.succeed(text + (n.detail ? ` (${n.detail})` : ''));
          current = undefined;
        } else info(`${ce.dim('NOTICE:')} ${text}`);
        return true;
      }
      return false;
    },
    finish(failure) {
      if (!current) return;
      stop();
      if (failure) current.spinner.fail(`approval #${current.id}: ${failure.message.replace(/^hoop: /, '')}`);
      else current.spinner.stop();
      current = undefined;
    },
  };
}

/**
 * The CLI's own end to an approval wait, for a gateway that stops answering: `onExpire` runs `ms` after
 * the statement started waiting, unless it was granted first. `expired()` names the request it gave up on.
 */
export function approvalDeadline(
  ms: number,
  onExpire: () => void,
): { notice(n: PgError): void; expired(): string | undefined; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  let gaveUpOn: string | undefined;
  return {
    notice(n) {
      if (n.routine === 'hoop_approval_waiting' && !timer) {
        timer = setTimeout(() => {
          gaveUpOn = approvalIdOf(n.message) ?? '?';
          onExpire();
        }, ms);
      }
      if (n.routine === 'hoop_approval_granted' && timer) {
        clearTimeout(timer);
        timer = undefined;
      }
    },
    expired: () => gaveUpOn,
    clear: () => clearTimeout(timer),
  };
}
