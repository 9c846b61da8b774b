/**
 * The relay's edge: where the gateway's own domain answers (typed refusals, notices) become protocol
 * messages. Nothing else in the gateway builds an ErrorResponse for a refused statement.
 */
import type { Notice } from '../contracts/gate.js';
import type { Refusal } from '../contracts/refusal.js';
import { errorResponse, type NoticeFields, noticeResponse } from '../pgwire/backend.js';

export function refusalFields(refusal: Refusal): NoticeFields {
  return {
    severity: 'ERROR',
    code: refusal.sqlstate,
    message: refusal.message,
    detail: refusal.detail,
    hint: refusal.hint,
    position: refusal.position,
    file: refusal.file,
    line: refusal.line,
    routine: refusal.routine,
  };
}

/** The ErrorResponse a client receives for a refused statement. */
export function refusalResponse(refusal: Refusal): Buffer {
  return errorResponse(refusalFields(refusal));
}

export function noticeMessage(notice: Notice): Buffer {
  return noticeResponse({ severity: 'NOTICE', code: '00000', ...notice });
}
