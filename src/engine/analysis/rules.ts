// The rules (docs/contract.md#load-order-diagnostics) over one scope's flow. The scope is run once, statement by statement; the
// state says, for each model, which transforms may have been applied on some path to here and
// which loads are waiting for a transform. Arms of a branch start from the same state and are
// merged after it (so exclusive branches never see each other); a loop body runs once (a load in
// a training loop after the last transform is fine); a return/raise/break ends its path.
import type { LoadOrderCode, SourceLanguage } from './diagnostic';
import type { Block, Effect, Item, LoadEffect, Scope, Span, TransformEffect, TransformKind } from './flow';

export interface Finding {
  code: LoadOrderCode;
  span: Span;
  message: string;
  /** LINGER001/002: the load, and the last transform of its model that runs after it. */
  load?: LoadEffect;
  lastTransform?: TransformEffect;
}

export interface RuleContext {
  language: SourceLanguage;
  /** "line 7" for a file, "cell 3, line 2" for a notebook. */
  where(offset: number): string;
  /** performance.now() after which the check stops with RuleDeadlineError */
  deadline?: number;
}

/** The rule check passed its deadline: what it found so far is incomplete. */
export class RuleDeadlineError extends Error {
  constructor() {
    super('checking the rules took longer than the time budget');
    this.name = 'RuleDeadlineError';
  }
}

interface LoadRec {
  load: LoadEffect;
  prev: TransformEffect | null;
}
interface Facts {
  transforms: TransformEffect[];
  pending: LoadRec[];
  seen: LoadEffect[];
}

class State {
  dead = false;
  /** The keys of `vars` that are attribute paths (`self.model`): few, so a rebinding checks only them. */
  private readonly dotted = new Set<string>();

  /** Facts objects this state may change in place; the others are shared with clones (copy on write). */
  private readonly owned = new Set<Facts>();

  constructor(
    readonly vars: Map<string, string>,
    readonly facts: Map<string, Facts>,
    owned: Iterable<Facts> = [],
  ) {
    for (const k of vars.keys()) if (k.includes('.')) this.dotted.add(k);
    for (const f of owned) this.owned.add(f);
  }

  /** The facts of a model, to change. */
  factsFor(id: string): Facts {
    let f = this.facts.get(id);
    if (!f) {
      f = { transforms: [], pending: [], seen: [] };
    } else if (!this.owned.has(f)) {
      f = { transforms: f.transforms.slice(), pending: f.pending.slice(), seen: f.seen.slice() };
    } else {
      return f;
    }
    this.facts.set(id, f);
    this.owned.add(f);
    return f;
  }

  static empty(): State {
    return new State(new Map(), new Map());
  }

  set(path: string, id: string): void {
    this.vars.set(path, id);
    if (path.includes('.')) this.dotted.add(path);
  }

  delete(path: string): void {
    this.vars.delete(path);
    this.dotted.delete(path);
  }

  /** Forgets `path.*`: the attributes of what the name held before. */
  dropAttributes(path: string): void {
    if (this.dotted.size === 0) return;
    const prefix = `${path}.`;
    for (const k of [...this.dotted]) if (k.startsWith(prefix)) this.delete(k);
  }

  clone(): State {
    // both states now share the facts objects: neither may change them in place any more
    this.owned.clear();
    const s = new State(new Map(this.vars), new Map(this.facts));
    s.dead = this.dead;
    return s;
  }
}

function rootOf(path: string): string {
  const dot = path.indexOf('.');
  return dot < 0 ? path : path.slice(0, dot);
}

/**
 * The roots (`model`, `self`) of the paths that transforms and loads use, closed over aliasing
 * (`net = model` makes `model` matter when `net` does). A bind of any other name cannot change
 * which model an effect applies to, so the rules skip it (a long script's many plain variables
 * then cost nothing at each branch).
 */
function relevantRoots(scope: Scope): Set<string> {
  const roots = new Set<string>();
  const binds: Array<{ target: string; source: string }> = [];
  const effects = (es: Effect[]) => {
    for (const e of es) {
      if (e.type === 'bind') {
        if (e.source !== null) binds.push({ target: rootOf(e.target), source: rootOf(e.source) });
      } else roots.add(rootOf(e.model));
    }
  };
  const block = (b: Block): void => {
    for (const it of b.items) item(it);
  };
  const item = (it: Item): void => {
    switch (it.k) {
      case 'stmt':
        effects(it.effects);
        break;
      case 'seq':
        effects(it.head);
        block(it.body);
        break;
      case 'branch':
        effects(it.head);
        it.arms.forEach(block);
        break;
      case 'loop':
        effects(it.head);
        block(it.body);
        block(it.orelse);
        break;
      case 'try':
        block(it.body);
        it.handlers.forEach(block);
        block(it.orelse);
        block(it.final);
        break;
    }
  };
  block(scope.body);
  for (let changed = true; changed;) {
    changed = false;
    for (const b of binds)
      if (roots.has(b.target) && !roots.has(b.source)) {
        roots.add(b.source);
        changed = true;
      }
  }
  return roots;
}

function byStart<T extends { span: Span }>(a: T, b: T): number {
  return a.span.start - b.span.start;
}

const PY_NAMES: Record<TransformKind, string> = { trace: 'trace_layers', normalize: 'normalize_layers', init: 'init' };
const TS_NAMES: Record<TransformKind, string> = { trace: 'traceLayers', normalize: 'normalizeLayers', init: 'init' };

export class ScopeChecker {
  readonly findings: Finding[] = [];
  /** Where `break` and `continue` go: the enclosing loops and switches, innermost last. */
  private readonly jumps: Array<{ loop: boolean; breaks: State[]; continues: State[] }> = [];
  /** For each load, the last transform of its model that ran after it on some path. */
  private readonly lastAfter = new Map<LoadEffect, TransformEffect>();
  private readonly reported = new Set<string>();
  /** The finding of each reported load (a load is reported once). */
  private readonly findingOf = new Map<LoadEffect, Finding>();
  private ticks = 0;

  constructor(private readonly cx: RuleContext) {}

  /** Roots of the names that can reach a transform or a load; binds of other names are skipped. */
  private relevantRoots = new Set<string>();

  run(scope: Scope): Finding[] {
    this.relevantRoots = relevantRoots(scope);
    this.block(scope.body, State.empty());
    for (const f of this.findings) if (f.load) f.lastTransform = this.lastAfter.get(f.load);
    return this.findings;
  }

  private block(b: Block, s: State): State {
    for (const it of b.items) {
      if (s.dead) break;
      s = this.item(it, s);
    }
    return s;
  }

  private item(it: Item, s: State): State {
    switch (it.k) {
      case 'stmt': {
        this.effects(it.effects, s);
        if (it.exit === 'return') s.dead = true;
        else if (it.exit === 'break' || it.exit === 'continue') {
          const target = [...this.jumps].reverse().find((j) => j.loop || it.exit === 'break');
          if (target) (it.exit === 'break' ? target.breaks : target.continues).push(s.clone());
          s.dead = true;
        }
        return s;
      }
      case 'seq':
        this.effects(it.head, s);
        return this.block(it.body, s);
      case 'branch': {
        this.effects(it.head, s);
        if (it.breakable) this.jumps.push({ loop: false, breaks: [], continues: [] });
        const outs = it.arms.map((arm) => this.block(arm, s.clone()));
        if (it.breakable) outs.push(...this.jumps.pop()!.breaks);
        if (!it.exhaustive) outs.push(s);
        return this.merge(outs, it.id);
      }
      case 'loop': {
        this.effects(it.head, s);
        this.jumps.push({ loop: true, breaks: [], continues: [] });
        const body = this.block(it.body, s.clone());
        const ctx = this.jumps.pop()!;
        let after = this.merge([s, body, ...ctx.continues], it.id);
        if (it.orelse.items.length > 0 && !after.dead) after = this.block(it.orelse, after);
        return this.merge([after, ...ctx.breaks], it.id);
      }
      case 'try': {
        const body = this.block(it.body, s.clone());
        // a handler starts from the state before the body: the usual exception is the guarded
        // call itself failing (`try: model.load_state_dict(...) except: model = linger.init(model)`)
        const outs = it.handlers.map((h) => this.block(h, s.clone()));
        const orelse = body.dead ? body : this.block(it.orelse, body);
        let after = this.merge([orelse, ...outs], it.id);
        if (it.final.items.length > 0) {
          const wasDead = after.dead;
          after.dead = false;
          after = this.block(it.final, after);
          if (wasDead) after.dead = true;
        }
        return after;
      }
    }
  }

  private merge(states: State[], at: number): State {
    const live = states.filter((x) => !x.dead);
    if (live.length === 0) {
      const d = states[0] ?? State.empty();
      d.dead = true;
      return d;
    }
    if (live.length === 1) return live[0];
    const vars = new Map<string, string>();
    const conflicts = new Map<string, Set<string>>();
    for (const st of live) {
      for (const [k, id] of st.vars) {
        const have = vars.get(k);
        if (have === undefined) vars.set(k, id);
        else if (have !== id) {
          const set = conflicts.get(k) ?? new Set([have]);
          set.add(id);
          conflicts.set(k, set);
        }
      }
    }
    // union of what may be true on either path, deduplicated through sets (linear in the facts)
    const acc = new Map<string, { transforms: Set<TransformEffect>; pending: Map<LoadEffect, LoadRec>; seen: Set<LoadEffect> }>();
    const add = (id: string, f: Facts) => {
      let g = acc.get(id);
      if (!g) {
        g = { transforms: new Set(), pending: new Map(), seen: new Set() };
        acc.set(id, g);
      }
      for (const t of f.transforms) g.transforms.add(t);
      for (const r of f.pending) if (!g.pending.has(r.load)) g.pending.set(r.load, r);
      for (const l of f.seen) g.seen.add(l);
    };
    const shared = new Map<string, Facts>();
    for (const [id, f] of live[0].facts) if (live.every((st) => st.facts.get(id) === f)) shared.set(id, f);
    for (const st of live) for (const [id, f] of st.facts) if (!shared.has(id)) add(id, f);
    for (const [k, ids] of conflicts) {
      // one name, different objects on different paths: a joined id holding what may be true of either
      const joined = `${k}@join${at}`;
      vars.set(k, joined);
      for (const id of ids) {
        for (const st of live) {
          const f = st.facts.get(id);
          if (f) add(joined, f);
        }
      }
    }
    const facts = new Map<string, Facts>(shared);
    const made: Facts[] = [];
    for (const [id, g] of acc) {
      const f: Facts = {
        transforms: [...g.transforms].sort(byStart),
        pending: [...g.pending.values()].sort((a, b) => a.load.span.start - b.load.span.start),
        seen: [...g.seen],
      };
      facts.set(id, f);
      made.push(f);
    }
    return new State(vars, facts, made);
  }

  private lookup(s: State, path: string): string | undefined {
    const id = s.vars.get(path);
    if (id !== undefined) return id;
    // an attribute of a known model is part of it (`model.backbone.load_state_dict`)
    for (let p = path, i = p.lastIndexOf('.'); i > 0; i = p.lastIndexOf('.')) {
      p = p.slice(0, i);
      const pid = s.vars.get(p);
      if (pid !== undefined) return pid;
    }
    return undefined;
  }

  private resolve(s: State, path: string): string {
    let id = this.lookup(s, path);
    if (id === undefined) {
      id = `${path}@in`;
      s.set(path, id);
    }
    return id;
  }

  private effects(effects: Effect[], s: State): void {
    for (const e of effects) {
      if (s.dead) return;
      // the rules cost more than linear time on pathological flows: they end at the parse's deadline
      if (this.cx.deadline !== undefined && (++this.ticks & 255) === 0 && performance.now() > this.cx.deadline)
        throw new RuleDeadlineError();
      if (e.type === 'bind') this.bind(s, e.target, e.source, e.at);
      else if (e.type === 'transform') this.transform(s, e);
      else this.load(s, e);
    }
  }

  private bind(s: State, target: string, source: string | null, at: number): void {
    if (source === target || !this.relevantRoots.has(rootOf(target))) return;
    const id =
      source === null
        ? s.vars.has(target) || this.lookup(s, target) !== undefined
          ? `${target}@${at}`
          : undefined
        : this.resolve(s, source);
    s.dropAttributes(target);
    if (id === undefined)
      s.delete(target); // a fresh object under a name never used for a model
    else s.set(target, id);
  }

  private transform(s: State, t: TransformEffect): void {
    const id = this.resolve(s, t.model);
    const f = s.factsFor(id);
    const same = f.transforms.find((x) => x.kind === t.kind);
    const init = f.transforms.find((x) => x.kind === 'init');
    const norm = f.transforms.find((x) => x.kind === 'normalize');
    if (same && t.kind !== 'normalize') this.report('LINGER004', t.span, this.twiceMessage(t, same));
    else if (init && t.kind !== 'init') this.report('LINGER003', t.span, this.afterInitMessage(t, init));
    else if (norm && t.kind === 'trace') this.report('LINGER005', t.span, this.traceAfterNormalizeMessage(t, norm));
    for (const r of f.pending) {
      if (r.prev) this.report('LINGER001', r.load.span, this.betweenMessage(r.load, r.prev, t), r.load);
      else this.report('LINGER002', r.load.span, this.beforeMessage(r.load, t), r.load);
    }
    f.pending = [];
    for (const l of f.seen) {
      const last = this.lastAfter.get(l);
      if (!last || last.span.start < t.span.start) this.lastAfter.set(l, t);
    }
    f.transforms.push(t);
  }

  private load(s: State, l: LoadEffect): void {
    let id: string | undefined;
    if (l.ifTracked) {
      id = this.lookup(s, l.model);
      if (id === undefined || !s.facts.get(id)?.transforms.length) return;
    } else {
      id = this.resolve(s, l.model);
    }
    const f = s.factsFor(id);
    let prev: TransformEffect | null = null;
    for (const t of f.transforms) if (!prev || t.span.start > prev.span.start) prev = t;
    if (!f.pending.some((r) => r.load === l)) f.pending.push({ load: l, prev });
    if (!f.seen.includes(l)) f.seen.push(l);
  }

  private report(code: LoadOrderCode, span: Span, message: string, load?: LoadEffect): void {
    const key = `${code}:${span.start}:${span.end}`;
    if (this.reported.has(key)) return;
    // a load is reported once: as LINGER001 when some path has a transform before it
    if (load) {
      const other = this.findingOf.get(load);
      if (other) {
        if (other.code === 'LINGER002' && code === 'LINGER001') {
          other.code = code;
          other.message = message;
        }
        return;
      }
    }
    this.reported.add(key);
    const f: Finding = { code, span, message, load };
    this.findings.push(f);
    if (load) this.findingOf.set(load, f);
  }

  // ---- messages: why, and what to do --------------------------------------------------------

  private canonical(kind: TransformKind): string {
    return `linger.${(this.cx.language === 'python' ? PY_NAMES : TS_NAMES)[kind]}`;
  }

  private at(e: { span: Span }): string {
    return this.cx.where(e.span.start);
  }

  private lost(): string {
    return this.cx.language === 'python'
      ? 'or the next transform rebuilds the layers and the loaded weights are lost'
      : 'since the next transform rebuilds the layers the weights were loaded into (in linger they are lost; this engine warns LINGER_LOAD_ORDER)';
  }

  private betweenMessage(l: LoadEffect, prev: TransformEffect, next: TransformEffect): string {
    return (
      `${l.callee}() runs between ${prev.callee} (${this.at(prev)}) and ${next.callee} (${this.at(next)}) on the same model: ` +
      `load the state dict after the last transform, ${this.lost()}`
    );
  }

  private beforeMessage(l: LoadEffect, next: TransformEffect): string {
    return (
      `${l.callee}() runs before ${next.callee} (${this.at(next)}) transforms the same model: load the state dict after the last transform ` +
      `(a checkpoint of an earlier stage still loads into the transformed model), or the transforms replace the layers it was loaded into`
    );
  }

  private twiceMessage(t: TransformEffect, first: TransformEffect): string {
    const what =
      t.kind === 'trace'
        ? 'trace_layers may run only once per model (linger traces one part of the network, once)'
        : 'init may run only once per model (the layers are already fixed-point)';
    return `${t.callee} is applied a second time to the same model (first at ${this.at(first)}): ${what}; remove this call`;
  }

  private afterInitMessage(t: TransformEffect, init: TransformEffect): string {
    return (
      `${t.callee} runs after ${init.callee} (${this.at(init)}) on the same model: ${init.callee} has already replaced the layers ` +
      `with fixed-point ones, so ${this.canonical(t.kind)} must come before it; move this call above ${this.at(init)}`
    );
  }

  private traceAfterNormalizeMessage(t: TransformEffect, norm: TransformEffect): string {
    return (
      `${t.callee} runs after ${norm.callee} (${this.at(norm)}) on the same model: call ${this.canonical('trace')} first, ` +
      `before every other configuration, so fusion sees the original layers; move it above ${this.at(norm)}`
    );
  }
}
