/**
 * The session model's lookups through in-flight effects: the same answer as folding every unanswered
 * effect in order (the definition), at a cost that does not grow with the length of the pipeline.
 * libpq's own pipeline tests send hundreds of thousands of Bind/Execute without a Sync; a lookup that
 * read every effect still in flight made that quadratic (minutes for 20 000 rows through the gateway).
 */
import { describe, expect, it } from 'vitest';
import type { PortalDef, Resolution, StatementDef } from '../../../gateway/contracts/names.js';
import {
  type Effect,
  type InFlight,
  type Outcome,
  SessionModel,
  sameDefinition,
  step,
} from '../../../gateway/session/session-model.js';

const statementDef = (model: SessionModel, name: string): StatementDef => ({
  id: model.id(),
  name,
  origin: 'parse',
  text: `select ${name}`,
  runs: undefined,
});

const portalDef = (model: SessionModel, name: string): PortalDef => ({
  id: model.id(),
  name,
  origin: 'bind',
  text: `select ${name}`,
  runs: undefined,
  hold: false,
  resultFormats: [],
});

type Space = 'statement' | 'portal';

/** The definition: fold every unsettled effect, in sending order, over the confirmed state. */
function reference(model: SessionModel, sent: InFlight[], space: Space, name: string, group: number) {
  const snapshot = model.snapshot();
  const confirmed = space === 'statement' ? snapshot.statements.get(name) : snapshot.portals.get(name);
  let possible = new Set<StatementDef | PortalDef | null>([confirmed ?? null]);
  for (const entry of sent)
    if (!entry.settled) possible = step(possible, entry.effect, space, name, entry.group === group);
  const defs = [...possible].filter((d) => d !== null);
  if (defs.length === 0) return 'absent';
  const first = defs[0]!;
  return defs.every((d) => sameDefinition(d, first)) ? `known ${first.id}` : 'unknown';
}

const shown = (r: Resolution<StatementDef | PortalDef>) =>
  r.state === 'known' ? `known ${r.def.id}` : r.state;

/** A small deterministic generator (the sequences must be reproducible from the seed). */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!,
  };
}

const NAMES = ['', 'a', 'b'] as const;
const OUTCOMES: Outcome[] = ['ok', 'ok', 'ok', 'failed', 'skipped'];

function randomEffect(model: SessionModel, rnd: ReturnType<typeof random>): Effect {
  const name = rnd.pick(NAMES);
  switch (rnd.int(10)) {
    case 0:
      return { on: 'statement', op: 'drop', name };
    case 1:
      return { on: 'portal', op: 'drop', name };
    case 2:
      return rnd.pick<Effect>([
        { on: 'statement', op: 'drop-all' },
        { on: 'portal', op: 'drop-all' },
        { on: 'all', op: 'drop-all' },
        { on: 'unnamed', op: 'drop' },
      ]);
    case 3:
      return {
        on: 'transaction',
        event: rnd.pick([{ type: 'begin' }, { type: 'commit' }, { type: 'rollback' }] as const),
      };
    case 4:
    case 5:
    case 6:
      return { on: 'statement', op: 'define', name, def: statementDef(model, name) };
    default:
      return { on: 'portal', op: 'define', name, def: portalDef(model, name) };
  }
}

describe('two possible definitions with the same text', () => {
  const bound = (model: SessionModel, value: string, extra: Partial<PortalDef> = {}): PortalDef => ({
    ...portalDef(model, 'p'),
    text: 'delete from notes where id = $1',
    parameters: [Buffer.from(value)],
    ...extra,
  });
  const parsed = (model: SessionModel, types?: number[]): StatementDef => ({
    ...statementDef(model, ''),
    text: 'select $1',
    parameterTypes: types,
  });
  /** Two segments in flight, each defining the name; the use is judged in a third. */
  function useAfter(defs: [StatementDef, StatementDef] | [PortalDef, PortalDef], model: SessionModel) {
    const space = 'resultFormats' in defs[0] ? 'portal' : 'statement';
    const name = defs[0].name;
    for (const [i, def] of defs.entries())
      model.expect({ on: space, op: 'define', name, def } as Effect, i + 1);
    const view = model.view(3);
    return shown(space === 'portal' ? view.portal(name) : view.statement(name));
  }

  it('a portal bound twice with other values (the first Bind made to fail) is unknown, not judged with the first values', () => {
    const model = new SessionModel();
    expect(useAfter([bound(model, 'abc'), bound(model, '6')], model)).toBe('unknown');
  });

  it('a portal bound twice with the same values, formats and statement is the one definition', () => {
    const model = new SessionModel();
    const first = bound(model, '6');
    expect(useAfter([first, bound(model, '6')], model)).toBe(`known ${first.id}`);
  });

  it('other formats, result formats or search_paths make another definition', () => {
    for (const extra of [
      { parameterFormats: [1] },
      { resultFormats: [1] },
      { searchPaths: ['archive, public'] },
      { hold: true },
    ]) {
      const model = new SessionModel();
      expect(useAfter([bound(model, '6'), bound(model, '6', extra)], model)).toBe('unknown');
    }
  });

  it('the unnamed statement re-parsed with the same text in each segment stays known; other parameter types do not', () => {
    const same = new SessionModel();
    const first = parsed(same, [23]);
    expect(useAfter([first, parsed(same, [23])], same)).toBe(`known ${first.id}`);
    const other = new SessionModel();
    expect(useAfter([parsed(other, [23]), parsed(other, [25])], other)).toBe('unknown');
    expect(sameDefinition(parsed(other), parsed(other, []))).toBe(true);
  });
});

describe('session model lookups through in-flight effects', () => {
  it('answer as folding every unanswered effect in order does (300 random sequences)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = random(seed);
      const model = new SessionModel();
      const sent: InFlight[] = [];
      let group = 1;
      for (let i = 0; i < 40; i++) {
        const action = rnd.int(10);
        if (action < 5) sent.push(model.expect(randomEffect(model, rnd), group));
        else if (action < 8) {
          // The server answers in order, mostly; a held statement whose record failed settles out of order.
          const open = sent.filter((e) => !e.settled);
          const entry = action < 7 ? open[0] : open.length > 0 ? rnd.pick(open) : undefined;
          if (entry) model.settle(entry, rnd.pick(OUTCOMES), rnd.int(4) === 0 ? 'ROLLBACK' : undefined);
        } else if (action === 8) group++;
        else if (sent.every((e) => e.settled)) model.ready(rnd.pick(['I', 'T', 'E'] as const));
        for (const space of ['statement', 'portal'] as const)
          for (const name of NAMES) {
            const view = model.view(group);
            const got = space === 'statement' ? view.statement(name) : view.portal(name);
            expect(`${seed}/${i} ${space} "${name}": ${shown(got)}`).toBe(
              `${seed}/${i} ${space} "${name}": ${reference(model, sent, space, name, group)}`,
            );
          }
      }
      expect(model.pending).toBe(sent.filter((e) => !e.settled).length);
    }
  });

  it('read a few effects per lookup however long the pipeline (20 000 Bind/Execute, no Sync)', () => {
    const model = new SessionModel();
    // Count every time the model looks at an effect: a lookup that folded the whole pipeline would
    // read about n²/2 of them (2·10⁸ here), the indexed one a handful per message.
    let reads = 0;
    const counted = (effect: Effect): Effect =>
      new Proxy(effect, {
        get(target, key, receiver) {
          reads++;
          return Reflect.get(target, key, receiver);
        },
      });
    const insert = statementDef(model, 'insertion');
    model.settle(model.expect({ on: 'statement', op: 'define', name: 'insertion', def: insert }, 1), 'ok');
    const n = 20_000;
    const binds: InFlight[] = [];
    for (let i = 0; i < n; i++) {
      // Bind "insertion" to the unnamed portal, then Execute it: one lookup each, answers not yet read.
      expect(model.view(2).statement('insertion')).toEqual({ state: 'known', def: insert });
      const def = portalDef(model, '');
      binds.push(model.expect(counted({ on: 'portal', op: 'define', name: '', def }), 2));
      expect(model.view(2).portal('')).toEqual({ state: 'known', def });
    }
    for (const bind of binds) model.settle(bind, 'ok');
    expect(model.pending).toBe(0);
    expect(reads).toBeLessThan(50 * n);
  });
});
