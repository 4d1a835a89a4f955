// What the Python and the TypeScript/JavaScript front ends share: which callees are linger
// transforms and loads (through import aliases), the keyword index that lets them skip code that
// cannot matter, and the emission of effects into the flow being built.
import type { Node } from '@vscode/tree-sitter-wasm';
import { FlowBuilder, markTransform, type Block, type Effect, type Item, type Scope, type Span, type TransformKind } from './flow';

/** linger's transforms, in both spellings (Python snake_case, this engine's camelCase). */
export const TRANSFORM_KIND: Readonly<Record<string, TransformKind>> = {
  trace_layers: 'trace',
  traceLayers: 'trace',
  normalize_layers: 'normalize',
  normalizeLayers: 'normalize',
  init: 'init',
};
export const LOAD_METHODS: ReadonlySet<string> = new Set(['load_state_dict', 'loadStateDict']);
/** nn.Module methods that return the module itself, so `model = model.cuda()` keeps the model. */
export const SELF_METHODS: ReadonlySet<string> = new Set([
  'cuda',
  'cpu',
  'to',
  'train',
  'eval',
  'float',
  'half',
  'double',
  'bfloat16',
  'type',
  'requires_grad_',
  'share_memory',
  'apply',
  'to_empty',
  'requiresGrad_',
]);

/** Names bound to linger in the file (import aliases), collected as the front end meets them. */
export interface LingerNames {
  /** Names of the linger module / namespace object: `linger`, `lg` (`lg.init`). */
  modules: Set<string>;
  /** Names of the package whose `linger` member is the namespace: `L` in `import * as L from 'linger-studio'`. */
  packages: Set<string>;
  /** Local name → linger function (`linit` → `init`, from `from linger import init as linit`). */
  functions: Map<string, string>;
}

export function defaultNames(): LingerNames {
  return { modules: new Set(['linger']), packages: new Set(), functions: new Map() };
}

export type CalleeClass = { type: 'transform'; kind: TransformKind } | { type: 'lingerLoad' } | null;

/** Whether a dotted callee path is a linger transform or `linger.load`, given the names in scope. */
export function classifyCallee(path: string, names: LingerNames): CalleeClass {
  const parts = path.split('.');
  let fn = parts[parts.length - 1];
  if (parts.length === 1) {
    const f = names.functions.get(fn);
    if (f === undefined) return null;
    fn = f;
  } else if (parts.length === 2) {
    if (!names.modules.has(parts[0])) return null;
  } else if (parts.length === 3) {
    if (!(names.packages.has(parts[0]) && parts[1] === 'linger')) return null;
  } else {
    return null;
  }
  if (Object.prototype.hasOwnProperty.call(TRANSFORM_KIND, fn)) return { type: 'transform', kind: TRANSFORM_KIND[fn] };
  if (fn === 'load') return { type: 'lingerLoad' };
  return null;
}

const BASE_KEYWORDS = ['linger', 'load_state_dict', 'loadStateDict'];

/**
 * Offsets of every word that can start an effect (linger, its aliases, the load methods). A
 * statement whose text holds none of them has no transform or load, so the front ends skip its
 * expressions (and a function body or a whole file without one).
 */
export class KeywordIndex {
  private words = new Set<string>();
  private offsets: number[] = [];

  constructor(
    private readonly text: string,
    initial: Iterable<string> = [],
  ) {
    for (const w of BASE_KEYWORDS) this.words.add(w);
    for (const w of initial) this.words.add(w);
    this.reindex();
  }

  /** Adds words (aliases met while walking); re-indexes only when one is new. */
  add(...words: string[]): void {
    let changed = false;
    for (const w of words) {
      if (w && /^[A-Za-z_$][\w$]*$/.test(w) && !this.words.has(w)) {
        this.words.add(w);
        changed = true;
      }
    }
    if (changed) this.reindex();
  }

  /** Whether a keyword starts inside [start, end). */
  has(start: number, end: number): boolean {
    const i = this.firstAtOrAfter(start);
    return i < this.offsets.length && this.offsets[i] < end;
  }

  /**
   * Whether [start, end) can hold a diagnostic: every rule needs two events (a load and a
   * transform, or two transforms) in one scope, and each event's callee holds a keyword of its own.
   */
  mayHoldDiagnostic(start: number, end: number): boolean {
    const i = this.firstAtOrAfter(start);
    return i + 1 < this.offsets.length && this.offsets[i + 1] < end;
  }

  private firstAtOrAfter(start: number): number {
    const o = this.offsets;
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (o[mid] < start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private reindex(): void {
    const alternatives = [...this.words].sort((a, b) => b.length - a.length).map((w) => w.replace(/\$/g, '\\$'));
    const re = new RegExp(`(?<![\\w$])(?:${alternatives.join('|')})(?![\\w$])`, 'g');
    const offsets: number[] = [];
    for (let m = re.exec(this.text); m; m = re.exec(this.text)) offsets.push(m.index);
    this.offsets = offsets;
  }
}

/** The span of a node, as UTF-16 offsets (web-tree-sitter indexes strings in UTF-16). */
export function spanOf(n: Node): Span {
  return { start: n.startIndex, end: n.endIndex };
}

/** Common machinery of a front end: the scopes being built and where effects go. */
export abstract class FrontEnd {
  readonly scopes: Scope[] = [];
  protected readonly b = new FlowBuilder();
  protected readonly names: LingerNames = defaultNames();
  /** Nested function bodies, analysed after the enclosing scope (so top-level imports are known). */
  private readonly queue: Array<() => void> = [];
  /** The statement receiving effects, and the list they go into. */
  protected cur: Item | null = null;
  protected out: Effect[] | null = null;

  constructor(
    protected readonly text: string,
    protected readonly keywords: KeywordIndex,
  ) {}

  protected src(n: Node): string {
    return this.text.slice(n.startIndex, n.endIndex);
  }

  protected relevant(n: Node): boolean {
    return this.keywords.has(n.startIndex, n.endIndex);
  }

  /** Queues a function body as a scope of its own (skipped when it cannot hold a diagnostic). */
  protected queueScope(body: Node | null, build: (body: Node, into: Block) => void): void {
    if (!body || !this.keywords.mayHoldDiagnostic(body.startIndex, body.endIndex)) return;
    this.queue.push(() => {
      const scope: Scope = { body: this.b.block() };
      this.scopes.push(scope);
      build(body, scope.body);
    });
  }

  protected drainQueue(): void {
    for (let i = 0; i < this.queue.length; i++) this.queue[i]();
    this.queue.length = 0;
  }

  /** Runs `fn` with effects going into `effects` of `item`. */
  protected into<T>(item: Item, effects: Effect[], fn: () => T): T {
    const [c, o] = [this.cur, this.out];
    this.cur = item;
    this.out = effects;
    try {
      return fn();
    } finally {
      this.cur = c;
      this.out = o;
    }
  }

  protected emitTransform(kind: TransformKind, model: string, call: Node, callee: string): void {
    if (!this.cur || !this.out) return;
    this.out.push({ type: 'transform', kind, model, span: spanOf(call), callee, item: this.cur });
    markTransform(this.cur);
  }

  protected emitLoad(model: string, call: Node, callee: string, ifTracked: boolean): void {
    if (!this.cur || !this.out) return;
    this.out.push({ type: 'load', model, span: spanOf(call), callee, item: this.cur, ifTracked });
  }

  protected bind(target: string, source: string | null): void {
    if (!this.out) return;
    this.out.push({ type: 'bind', target, source, at: this.b.mark() });
  }

  /** A path for a value with no name (the model argument is an expression): unique per call. */
  protected anonymous(n: Node): string {
    return `<value@${n.startIndex}>`;
  }

  protected calleeText(n: Node): string {
    return this.src(n).replace(/\s+/g, '');
  }

  /** Handles a resolved call: a transform, a `linger.load`, a load method or a self-returning method. */
  protected resolvedCall(
    call: Node,
    fpath: string,
    positional: Array<string | null>,
    keywords: Map<string, string | null>,
    calleeNode: Node,
  ): string | null {
    const c = classifyCallee(fpath, this.names);
    if (c?.type === 'transform') {
      let model: string | null | undefined;
      if (keywords.has('model')) model = keywords.get('model');
      else if (keywords.has('root_model')) model = keywords.get('root_model');
      else model = positional.length > 0 ? positional[0] : undefined;
      const m = model ?? this.anonymous(call);
      this.emitTransform(c.kind, m, call, this.calleeText(calleeNode));
      return m;
    }
    if (c?.type === 'lingerLoad') {
      const callee = this.calleeText(calleeNode);
      const kw = keywords.get('model');
      if (kw) this.emitLoad(kw, call, callee, false);
      else for (const p of positional) if (p) this.emitLoad(p, call, callee, true);
      return null;
    }
    const dot = fpath.lastIndexOf('.');
    if (dot > 0) {
      const method = fpath.slice(dot + 1);
      const receiver = fpath.slice(0, dot);
      if (LOAD_METHODS.has(method)) {
        this.emitLoad(receiver, call, this.calleeText(calleeNode), false);
        return null;
      }
      if (SELF_METHODS.has(method)) return receiver;
    }
    return null;
  }
}
