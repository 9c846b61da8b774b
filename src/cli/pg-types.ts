/**
 * JSON values for PostgreSQL's text output, by column type OID (RowDescription), for
 * `hoopctl exec --format json`. Pure. What a program reading the JSON gets:
 *   bool                         → true / false
 *   int2, int4, oid, int8        → number (int8 beyond ±2^53-1 → string: a JSON number would lose digits)
 *   float4, float8               → number (NaN, Infinity, -Infinity → string)
 *   numeric                      → number when the number prints back as the same decimal, else string
 *                                  ("0.1" → 0.1, "1.50" → 1.5, "12345678901234567890.1" → string)
 *   json, jsonb                  → the parsed JSON value
 *   arrays of the types above    → JSON arrays (nested for several dimensions), elements typed as above;
 *     and of text/varchar/name     a literal with explicit bounds ('[0:1]={...}') stays a string
 *   NULL                         → null
 *   everything else (text, dates, uuid, bytea, intervals, ...) → the string PostgreSQL sent
 */

export interface ColumnInfo {
  name: string;
  /** The column's type OID (RowDescription's dataTypeID). */
  typeId: number;
}

type Scalar = (text: string) => unknown;

const integer: Scalar = (t) => {
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : t;
};
const float: Scalar = (t) => {
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
};
const bool: Scalar = (t) => t === 't' || t === 'true';
const json: Scalar = (t) => {
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
};
const text: Scalar = (t) => t;

/** A numeric as a JSON number only when nothing is lost (the value prints back as the same decimal). */
export const numeric: Scalar = (t) => {
  if (!/^[+-]?\d+(\.\d+)?$/.test(t)) return t; // NaN, Infinity, exponent forms
  const n = Number(t);
  const printed = String(n);
  if (!Number.isFinite(n) || /e/i.test(printed)) return t;
  return normalDecimal(printed) === normalDecimal(t) ? n : t;
};

function normalDecimal(t: string): string {
  let s = t.replace(/^\+/, '');
  const negative = s.startsWith('-');
  if (negative) s = s.slice(1);
  let [whole, fraction = ''] = s.split('.');
  whole = whole!.replace(/^0+(?=\d)/, '');
  fraction = fraction.replace(/0+$/, '');
  const out = fraction ? `${whole}.${fraction}` : whole!;
  return negative && out !== '0' ? `-${out}` : out;
}

const SCALARS = new Map<number, Scalar>([
  [16, bool],
  [20, integer],
  [21, integer],
  [23, integer],
  [26, integer],
  [700, float],
  [701, float],
  [1700, numeric],
  [114, json],
  [3802, json],
]);

/** Array type OID → its element's conversion. */
const ARRAYS = new Map<number, Scalar>([
  [1000, bool],
  [1016, integer],
  [1005, integer],
  [1007, integer],
  [1028, integer],
  [1021, float],
  [1022, float],
  [1231, numeric],
  [199, json],
  [3807, json],
  [1009, text],
  [1015, text],
  [1003, text],
  [1014, text],
]);

/** One function per column, built once per result set. */
export function converters(columns: ColumnInfo[]): ((value: string | null) => unknown)[] {
  return columns.map(({ typeId }) => {
    const scalar = SCALARS.get(typeId);
    if (scalar) return (v) => (v === null ? null : scalar(v));
    const element = ARRAYS.get(typeId);
    if (element) return (v) => (v === null ? null : parseArray(v, element));
    return (v) => v;
  });
}

/** PostgreSQL's array literal ({1,2,NULL}, {{a,b},{"c d",e}}) → nested arrays; anything odd stays text. */
export function parseArray(literal: string, element: Scalar): unknown {
  if (!literal.startsWith('{')) return literal; // explicit bounds: '[0:1]={...}'
  let i = 0;
  const parseLevel = (): unknown[] | undefined => {
    if (literal[i] !== '{') return undefined;
    i++;
    const items: unknown[] = [];
    if (literal[i] === '}') {
      i++;
      return items;
    }
    for (;;) {
      if (literal[i] === '{') {
        const inner = parseLevel();
        if (!inner) return undefined;
        items.push(inner);
      } else if (literal[i] === '"') {
        i++;
        let value = '';
        while (i < literal.length && literal[i] !== '"') {
          if (literal[i] === '\\') i++;
          value += literal[i++];
        }
        i++;
        items.push(element(value));
      } else {
        let end = i;
        while (end < literal.length && literal[end] !== ',' && literal[end] !== '}') end++;
        const raw = literal.slice(i, end);
        items.push(raw === 'NULL' ? null : element(raw));
        i = end;
      }
      if (literal[i] === ',') {
        i++;
        continue;
      }
      if (literal[i] === '}') {
        i++;
        return items;
      }
      return undefined;
    }
  };
  const parsed = parseLevel();
  return parsed && i === literal.length ? parsed : literal;
}
