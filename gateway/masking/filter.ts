/**
 * The result filter the relay runs for a statement of an identity with masking rules: decides each
 * output column's mask from lineage (cross-checked with RowDescription's table OID and column number),
 * rewrites DataRows in text and binary formats with correct lengths, runs the value detectors on what
 * stays clear, and redacts ErrorResponse/NoticeResponse fields that could echo a masked value. Pure.
 */

import type { ResultFilter } from '../contracts/gate.js';
import type { FieldDescription } from '../pgwire/backend.js';
import { sqlstateClass } from '../pgwire/sqlstate.js';
import type { Catalog } from './catalog.js';
import { type CopyFormat, formatCopyField, parseCopyRows } from './copy.js';
import { detectAndMask } from './detectors.js';
import { columnLineage, type Lineage, mergeLineage, type Output, type ViewCache } from './lineage.js';
import {
  canHoldString,
  copyBytes,
  decodeValue,
  encodeMasked,
  type MaskContext,
  type MaskName,
  maskBytes,
  maskString,
  stricterMask,
  type ValueKind,
  valueKind,
} from './masks.js';
import type { ColumnRule, MaskRules } from './rules.js';

export const FALLBACK_RULE = 'masking-fallback';

export interface ColumnDecision {
  mask?: MaskName;
  rule?: string;
  policy?: string;
  /** lineage: the source's value as is; derived: a transformed value (redacted); fallback: unknown lineage. */
  why?: 'lineage' | 'derived' | 'fallback';
  sources?: string[];
}

/** What the statement record says about one masked output column. */
export interface MaskedColumn {
  column: string;
  position: number;
  mask: MaskName;
  rule: string;
  policy?: string;
  why: NonNullable<ColumnDecision['why']>;
  sources?: string[];
}

/** The mask a column gets from its lineage (undefined: clear). */
export function decideColumn(lineage: Lineage, rules: MaskRules): ColumnDecision {
  if (lineage.unknown)
    return { mask: 'redact', rule: FALLBACK_RULE, why: 'fallback', sources: [...lineage.sources] };
  let strictest: ColumnRule | undefined;
  const masked: string[] = [];
  for (const source of lineage.sources) {
    const rule = rules.column(source);
    if (!rule) continue;
    masked.push(source);
    if (!strictest || stricterMask(strictest.mask, rule.mask) === rule.mask) strictest = rule;
  }
  if (!strictest) return {};
  if (lineage.transformed) {
    // A mask that needs the clear shape (partial, email-domain, token) cannot apply to a derived value.
    const mask = strictest.mask === 'null' ? 'null' : 'redact';
    return { mask, rule: strictest.rule, policy: strictest.policy, why: 'derived', sources: masked };
  }
  return {
    mask: strictest.mask,
    rule: strictest.rule,
    policy: strictest.policy,
    why: 'lineage',
    sources: masked,
  };
}

/** Expand open outputs (`*` over an unknown shape) to `count` columns; a mismatch makes every column unknown. */
export function expandOutputs(outputs: readonly Output[], count: number): Lineage[] {
  const fixed = outputs.filter((o) => !o.open);
  const open = outputs.filter((o) => o.open);
  const everything = () =>
    mergeLineage(
      [...outputs.map((o) => o.lineage), { sources: new Set(), transformed: true, unknown: true }],
      true,
    );
  if (open.length === 0) {
    if (fixed.length === count) return fixed.map((o) => o.lineage);
    return Array.from({ length: count }, everything);
  }
  if (open.length > 1 || count < fixed.length) return Array.from({ length: count }, everything);
  const result: Lineage[] = [];
  for (const o of outputs) {
    if (!o.open) result.push(o.lineage);
    else for (let i = 0; i < count - fixed.length; i++) result.push(o.lineage);
  }
  return result;
}

interface Column {
  decision: ColumnDecision;
  kind: ValueKind;
}

export interface MaskingFilterOptions {
  /** The outputs lineage found; 'unknown' when it could not (every column falls back). */
  outputs: readonly Output[] | 'unknown';
  rules: MaskRules;
  ctx: MaskContext;
  catalog?: Catalog;
  views?: ViewCache;
  /** The statement reads masked (or unknown) data: errors and notices are redacted. */
  redactMessages: boolean;
  /** COPY ... TO STDOUT with `masking.copy: mask`: the rows' format (text or csv); `outputs` are its columns. */
  copy?: CopyFormat;
  /**
   * Work of the statement runs again, unseen, when the transaction commits: a WITH HOLD cursor over
   * masked data, a write's deferred constraints and triggers.
   */
  runsAtCommit?: boolean;
}

export class MaskingFilter implements ResultFilter {
  private layout: Column[] | undefined;
  private types: number[] | undefined;
  private crossChecked: Lineage[] | undefined;
  private anyMasked = false;
  private readonly detect: boolean;

  readonly runsAtCommit: boolean;

  constructor(private readonly options: MaskingFilterOptions) {
    this.detect = options.rules.tags.size > 0;
    this.runsAtCommit = options.runsAtCommit === true;
  }

  /** RowDescription: real types, and a cross-check of lineage against the table OID / column number. */
  columns(fields: FieldDescription[]): void {
    this.types = fields.map((f) => f.typeOid);
    const catalog = this.options.catalog;
    const base =
      this.options.outputs === 'unknown' ? undefined : expandOutputs(this.options.outputs, fields.length);
    this.crossChecked = fields.map((f, i) => {
      const own = base?.[i] ?? { sources: new Set<string>(), transformed: true, unknown: true };
      if (!catalog || f.tableOid === 0 || f.columnNumber <= 0) return own;
      const relation = catalog.byOid(f.tableOid);
      if (!relation) return own;
      const column = relation.columns.find((c) => c.attnum === f.columnNumber);
      if (!column) return own;
      let direct: Lineage;
      if (relation.viewDefinition !== undefined && this.options.views) {
        const shape = this.options.views.get(relation, catalog);
        direct = shape.columns[relation.columns.indexOf(column)]?.lineage ?? {
          sources: new Set(),
          transformed: true,
          unknown: true,
        };
      } else {
        // The column itself, and what a scan of it carries: descendants' rows, generation inputs.
        direct = columnLineage(catalog, relation, column);
      }
      // The database says this column is that source's value: both must agree, so take both.
      return mergeLineage([own, direct], own.transformed);
    });
    this.layout = undefined;
  }

  private resolve(count: number): Column[] {
    const lineages =
      this.crossChecked && this.crossChecked.length === count
        ? this.crossChecked
        : this.options.outputs === 'unknown'
          ? Array.from(
              { length: count },
              () => ({ sources: new Set<string>(), transformed: true, unknown: true }) as Lineage,
            )
          : expandOutputs(this.options.outputs, count);
    const layout = lineages.map((lineage, i) => ({
      decision: decideColumn(lineage, this.options.rules),
      kind: valueKind(this.types?.[i] ?? (lineage.transformed ? undefined : lineage.typeOid)),
    }));
    this.anyMasked = layout.some((c) => c.decision.mask !== undefined);
    this.layout = layout;
    return layout;
  }

  /** The masked output columns as decided so far (for the statement's record). */
  masked(names?: readonly string[]): MaskedColumn[] {
    const layout = this.layout ?? (this.options.outputs === 'unknown' ? [] : this.resolveForEvidence());
    const out: MaskedColumn[] = [];
    layout.forEach((c, i) => {
      if (!c.decision.mask) return;
      out.push({
        column: names?.[i] ?? this.outputName(i),
        position: i + 1,
        mask: c.decision.mask,
        rule: c.decision.rule!,
        ...(c.decision.policy ? { policy: c.decision.policy } : {}),
        why: c.decision.why!,
        ...(c.decision.sources?.length ? { sources: c.decision.sources } : {}),
      });
    });
    return out;
  }

  private resolveForEvidence(): Column[] {
    const outputs = this.options.outputs as readonly Output[];
    if (outputs.some((o) => o.open)) {
      return outputs.map((o) => ({
        decision: decideColumn(o.lineage, this.options.rules),
        kind: 'other' as const,
      }));
    }
    return outputs.map((o) => ({
      decision: decideColumn(o.lineage, this.options.rules),
      kind: 'other' as const,
    }));
  }

  private outputName(i: number): string {
    const outputs = this.options.outputs;
    if (outputs === 'unknown' || outputs.some((o) => o.open)) return `column ${i + 1}`;
    return outputs[i]?.name ?? `column ${i + 1}`;
  }

  // Per-row work areas, reused: where each value starts, its length, its replacement's place in
  // `scratch` and length (-1 NULL, -2 unchanged). Rows are rewritten one at a time, never buffered.
  private starts = new Int32Array(0);
  private lengths = new Int32Array(0);
  private outStart = new Int32Array(0);
  private outLength = new Int32Array(0);
  private scratch = Buffer.allocUnsafe(1 << 16);
  private scratchUsed = 0;

  private reserve(bytes: number): void {
    if (this.scratchUsed + bytes <= this.scratch.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratchUsed + bytes));
    this.scratch.copy(bigger, 0, 0, this.scratchUsed);
    this.scratch = bigger;
  }

  /** Put a replacement computed the slow way (strings) into scratch. */
  private place(i: number, replacement: Buffer | null): void {
    if (replacement === null) {
      this.outLength[i] = -1;
      return;
    }
    this.reserve(replacement.length);
    replacement.copy(this.scratch, this.scratchUsed);
    this.outStart[i] = this.scratchUsed;
    this.outLength[i] = replacement.length;
    this.scratchUsed += replacement.length;
  }

  dataRow(body: Buffer, formats: readonly number[]): Buffer | undefined {
    const count = body.readInt16BE(0);
    const layout = this.layout && this.layout.length === count ? this.layout : this.resolve(count);
    if (!this.anyMasked && !this.detect) return undefined;
    if (this.starts.length < count) {
      this.starts = new Int32Array(count);
      this.lengths = new Int32Array(count);
      this.outStart = new Int32Array(count);
      this.outLength = new Int32Array(count);
    }
    const { ctx } = this.options;
    this.scratchUsed = 0;
    let changed = false;
    let size = 2;
    let offset = 2;
    for (let i = 0; i < count; i++) {
      const length = body.readInt32BE(offset);
      const start = offset + 4;
      this.starts[i] = start;
      this.lengths[i] = length;
      offset = start + (length > 0 ? length : 0);
      const column = layout[i]!;
      const mask = column.decision.mask;
      this.outLength[i] = -2;
      if (length >= 0 && mask) {
        changed = true;
        const format = formats[i] ?? 0;
        if (mask === 'null' || !canHoldString(column.kind)) this.outLength[i] = -1;
        else {
          let written = -1;
          if (column.kind === 'string') {
            this.reserve(length + 16);
            written = maskBytes(body, start, length, mask, this.scratch, this.scratchUsed);
          }
          if (written >= 0) {
            this.outStart[i] = this.scratchUsed;
            this.outLength[i] = written;
            this.scratchUsed += written;
          } else {
            const clear = decodeValue(body.subarray(start, start + length), format, column.kind);
            this.place(i, encodeMasked(maskString(clear, mask, ctx), format, column.kind));
          }
        }
      } else if (length > 0 && this.detect && canHoldString(column.kind)) {
        const format = formats[i] ?? 0;
        const clear = decodeValue(body.subarray(start, start + length), format, column.kind);
        const found = detectAndMask(clear, this.options.rules.tags, ctx);
        if (found) {
          changed = true;
          if (found.nulled) this.outLength[i] = -1;
          else {
            const text = Buffer.from(found.text, 'utf8');
            // Detectors never match across a JSON quote, so masking inside JSON text keeps it valid.
            this.place(
              i,
              column.kind === 'jsonb' && format === 1 ? Buffer.concat([Buffer.from([1]), text]) : text,
            );
          }
        }
      }
      const out = this.outLength[i]!;
      size += 4 + (out >= 0 ? out : out === -1 ? 0 : length > 0 ? length : 0);
    }
    if (!changed) return undefined;
    const out = Buffer.allocUnsafe(size + 5);
    out[0] = 0x44; // 'D'
    out.writeInt32BE(size + 4, 1);
    out.writeInt16BE(count, 5);
    let at = 7;
    for (let i = 0; i < count; i++) {
      const replaced = this.outLength[i]!;
      if (replaced === -2) {
        const length = this.lengths[i]!;
        const start = this.starts[i]!;
        at += copyBytes(body, start - 4, start + (length > 0 ? length : 0), out, at);
      } else if (replaced === -1) {
        out.writeInt32BE(-1, at);
        at += 4;
      } else {
        out.writeInt32BE(replaced, at);
        at += 4 + copyBytes(this.scratch, this.outStart[i]!, this.outStart[i]! + replaced, out, at + 4);
      }
    }
    return out;
  }

  private copyHeaderPending = true;

  /**
   * COPY data: with `copy` (a COPY of masked columns), each row is parsed, its masked fields rewritten
   * (NULL for types that cannot hold the mask) and re-encoded in the COPY's own format; otherwise (an
   * allowed COPY, nothing masked) only the detectors run over the text.
   */
  copyData(body: Buffer): Buffer | undefined {
    const copy = this.options.copy;
    if (copy) return copyDataMessage(Buffer.from(this.maskCopyRows(body.toString('utf8'), copy), 'utf8'));
    if (!this.detect) return undefined;
    const text = body.toString('utf8');
    const found = detectAndMask(text, this.options.rules.tags, this.options.ctx);
    if (!found) return undefined;
    return copyDataMessage(Buffer.from(found.text, 'utf8'));
  }

  private maskCopyRows(data: string, copy: CopyFormat): string {
    const { rows, raws, newline } = parseCopyRows(data, copy);
    const { ctx, rules } = this.options;
    let out = '';
    rows.forEach((row, r) => {
      const raw = raws[r]!;
      if (copy.header && this.copyHeaderPending) {
        // The header line holds column names, not values: as it was.
        this.copyHeaderPending = false;
        out += raw.join(copy.delimiter) + newline;
        return;
      }
      this.copyHeaderPending = false;
      const layout =
        this.layout && this.layout.length === row.length ? this.layout : this.resolve(row.length);
      // Fields left clear keep their bytes (FORCE_QUOTE and all); only rewritten ones are re-encoded.
      const fields = row.map((value, i) => {
        if (value === null) return raw[i]!;
        const column = layout[i]!;
        const mask = column.decision.mask;
        if (mask) {
          if (mask === 'null' || !canHoldString(column.kind)) return copy.null;
          return formatCopyField(maskString(value, mask, ctx), copy);
        }
        if (this.detect) {
          // COPY values are all text: the detectors scan every clear one.
          const found = detectAndMask(value, rules.tags, ctx);
          if (found) return formatCopyField(found.nulled ? null : found.text, copy);
        }
        return raw[i]!;
      });
      out += fields.join(copy.delimiter) + newline;
    });
    return out;
  }

  message(fields: Record<string, string>): Record<string, string> | undefined {
    if (!this.options.redactMessages) return undefined;
    return redactMessageFields(fields);
  }
}

/** A CopyData message ('d') carrying this payload. */
function copyDataMessage(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 5);
  out[0] = 0x64; // 'd'
  out.writeInt32BE(payload.length + 4, 1);
  payload.copy(out, 5);
  return out;
}

const WITHHELD = 'hoop: detail withheld because the statement reads masked columns';

/**
 * An error or notice of a statement that reads masked data, with nothing left that could echo a value:
 * the message says only the SQLSTATE and its class, and the detail, hint, context and internal query
 * are withheld or dropped. Redacting values inside the text is not enough: a value may itself contain
 * the quote that ends the redaction, and many messages print numbers unquoted (`index 1000123456 out
 * of valid range`), so a computed error could spell out any masked value. SQLSTATE, severity, position
 * and object names stay.
 */
export function redactMessageFields(fields: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [code, value] of Object.entries(fields)) {
    switch (code) {
      case 'M':
        out[code] = withheldMessage(fields.C);
        break;
      case 'D':
        out[code] = WITHHELD;
        break;
      case 'H': // hint
      case 'W': // context: may quote the failing row or statement values
      case 'q': // internal query
        break;
      default:
        out[code] = value;
    }
  }
  return out;
}

function withheldMessage(sqlstate: string | undefined): string {
  const kind = sqlstateClass(sqlstate);
  const what = sqlstate ? ` (SQLSTATE ${sqlstate}${kind ? `, ${kind}` : ''})` : '';
  return `hoop: message withheld because the statement reads masked columns${what}`;
}
