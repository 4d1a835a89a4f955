// Python front end: a tree-sitter-python tree → the flow of flow.ts. Scopes: the module, and
// each function and class body separately. Statements whose text holds no linger keyword are only
// looked at for the names they bind (`model = MyNet()`, `net = model`), never walked deeply.
import type { Node } from '@vscode/tree-sitter-wasm';
import type { Block, Effect, Exit, Item, Scope } from './flow';
import { classifyCallee, FrontEnd, KeywordIndex, SELF_METHODS, spanOf, TRANSFORM_KIND } from './frontend';

/** `a.b.c`, with optional spaces around the dots (no comment or call inside). */
const DOTTED = /^[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)+$/;
/** The method name at the end of a callee's text. */
const METHOD = /\.\s*([A-Za-z_]\w*)$/;
const SEQUENCE_TARGETS = new Set(['pattern_list', 'tuple_pattern', 'list_pattern', 'tuple', 'list', 'expression_list']);
/** Expressions whose body does not run where it is written. */
const DEFERRED = new Set(['lambda', 'list_comprehension', 'dictionary_comprehension', 'set_comprehension', 'generator_expression']);

export class PythonFrontEnd extends FrontEnd {
  constructor(text: string, keywords: KeywordIndex) {
    super(text, keywords);
  }

  run(root: Node): Scope[] {
    const scope: Scope = { body: this.b.block() };
    this.scopes.push(scope);
    this.block(root, scope.body, null);
    this.drainQueue();
    return this.scopes;
  }

  private block(n: Node, into: Block, parent: Item | null): void {
    for (const c of n.namedChildren) if (c) this.statement(c, into, parent);
  }

  private statement(n: Node, into: Block, parent: Item | null): void {
    switch (n.type) {
      case 'comment':
      case 'pass_statement':
      case 'global_statement':
      case 'nonlocal_statement':
      case 'future_import_statement':
      case 'type_alias_statement':
        return;
      case 'import_statement':
        this.importStatement(n);
        return;
      case 'import_from_statement':
        this.importFrom(n);
        return;
      case 'function_definition':
      case 'class_definition':
        this.queueScope(n.childForFieldName('body'), (body, blk) => this.block(body, blk, null));
        return;
      case 'decorated_definition': {
        const d = n.childForFieldName('definition');
        if (d) this.statement(d, into, parent);
        return;
      }
      case 'block':
      case 'ERROR':
        this.block(n, into, parent);
        return;
      case 'if_statement':
        this.ifStatement(n, into, parent);
        return;
      case 'for_statement':
      case 'while_statement':
        this.loop(n, into, parent);
        return;
      case 'try_statement':
        this.tryStatement(n, into, parent);
        return;
      case 'with_statement':
        this.withStatement(n, into, parent);
        return;
      case 'match_statement':
        this.matchStatement(n, into, parent);
        return;
      case 'return_statement':
      case 'raise_statement':
        this.simple(n, into, parent, 'return');
        return;
      case 'break_statement':
        this.simple(n, into, parent, 'break');
        return;
      case 'continue_statement':
        this.simple(n, into, parent, 'continue');
        return;
      case 'delete_statement': {
        const it = this.b.stmt(into, parent, spanOf(n));
        this.into(it, it.effects, () => {
          for (const t of n.namedChildren) if (t) this.bindTarget(t, null);
        });
        return;
      }
      default:
        this.simple(n, into, parent, null);
    }
  }

  /** An expression statement (or anything else): deep when it holds a keyword, else binds only. */
  private simple(n: Node, into: Block, parent: Item | null, exit: Exit): void {
    const deep = this.relevant(n);
    if (!deep && exit === null) {
      const e = n.type === 'expression_statement' ? n.namedChild(0) : null;
      if (!e || e.type !== 'assignment') return; // no keyword, no binding: nothing to see
    }
    const it = this.b.stmt(into, parent, spanOf(n));
    it.exit = exit;
    if (deep) this.into(it, it.effects, () => this.walk(n));
    else if (exit === null) this.into(it, it.effects, () => this.assignment(n.namedChild(0)!, false));
  }

  private walk(n: Node): void {
    if (
      n.type === 'expression_statement' ||
      n.type === 'return_statement' ||
      n.type === 'raise_statement' ||
      n.type === 'delete_statement' ||
      n.type === 'ERROR'
    ) {
      for (const c of n.namedChildren) if (c) this.value(c, true);
    } else {
      this.value(n, true);
    }
  }

  private head(it: Item, effects: Effect[], n: Node | null, bindTargets?: Node | null): void {
    if (!n && !bindTargets) return;
    this.into(it, effects, () => {
      if (n) {
        if (this.relevant(n)) this.value(n, true);
      }
      if (bindTargets) this.bindTarget(bindTargets, null);
    });
  }

  private ifStatement(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.branch(into, parent, spanOf(n));
    this.head(it, it.head, n.childForFieldName('condition'));
    const arm = (body: Node | null) => {
      const blk = this.b.block();
      it.arms.push(blk);
      if (body) this.block(body, blk, it);
    };
    arm(n.childForFieldName('consequence'));
    for (const c of n.namedChildren) {
      if (!c) continue;
      if (c.type === 'elif_clause') {
        this.head(it, it.head, c.childForFieldName('condition'));
        arm(c.childForFieldName('consequence'));
      } else if (c.type === 'else_clause') {
        arm(c.childForFieldName('body'));
        it.exhaustive = true;
      }
    }
  }

  private loop(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.loop(into, parent, spanOf(n));
    if (n.type === 'for_statement') this.head(it, it.head, n.childForFieldName('right'), n.childForFieldName('left'));
    else this.head(it, it.head, n.childForFieldName('condition'));
    const body = n.childForFieldName('body');
    if (body) this.block(body, it.body, it);
    const alt = n.childForFieldName('alternative');
    const altBody = alt?.childForFieldName('body');
    if (altBody) this.block(altBody, it.orelse, it);
  }

  private tryStatement(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.try(into, parent, spanOf(n));
    const body = n.childForFieldName('body');
    if (body) this.block(body, it.body, it);
    for (const c of n.namedChildren) {
      if (!c) continue;
      if (c.type === 'except_clause' || c.type === 'except_group_clause') {
        const blk = this.b.block();
        it.handlers.push(blk);
        const inner = c.namedChildren.find((x) => x?.type === 'block');
        if (inner) this.block(inner, blk, it);
      } else if (c.type === 'else_clause') {
        const b = c.childForFieldName('body');
        if (b) this.block(b, it.orelse, it);
      } else if (c.type === 'finally_clause') {
        const inner = c.namedChildren.find((x) => x?.type === 'block');
        if (inner) this.block(inner, it.final, it);
      }
    }
  }

  private withStatement(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.seq(into, parent, spanOf(n));
    const clause = n.namedChildren.find((c) => c?.type === 'with_clause');
    if (clause) {
      for (const item of clause.namedChildren) {
        const v = item?.childForFieldName('value');
        if (!v) continue;
        if (v.type === 'as_pattern') {
          const target = v.childForFieldName('alias');
          this.head(it, it.head, v.namedChild(0), target);
        } else {
          this.head(it, it.head, v);
        }
      }
    }
    const body = n.childForFieldName('body');
    if (body) this.block(body, it.body, it);
  }

  private matchStatement(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.branch(into, parent, spanOf(n));
    this.head(it, it.head, n.childForFieldName('subject'));
    const body = n.childForFieldName('body');
    for (const c of body?.namedChildren ?? []) {
      if (c?.type !== 'case_clause') continue;
      const blk = this.b.block();
      it.arms.push(blk);
      const cons = c.childForFieldName('consequence');
      if (cons) this.block(cons, blk, it);
    }
  }

  // ---- imports -------------------------------------------------------------------------------

  private importStatement(n: Node): void {
    // import linger / import linger as lg
    for (const c of n.namedChildren) {
      if (!c) continue;
      if (c.type === 'dotted_name' && this.src(c) === 'linger') this.names.modules.add('linger');
      else if (c.type === 'aliased_import') {
        const name = c.childForFieldName('name');
        const alias = c.childForFieldName('alias');
        if (name && alias && this.src(name) === 'linger') this.addModule(this.src(alias));
      }
    }
  }

  private importFrom(n: Node): void {
    const mod = n.childForFieldName('module_name');
    if (!mod) return;
    const m = this.src(mod);
    if (m !== 'linger' && !m.startsWith('linger.')) return;
    for (const c of n.namedChildren) {
      if (!c || c.id === mod.id) continue;
      if (c.type === 'wildcard_import') {
        for (const f of [...Object.keys(TRANSFORM_KIND), 'load']) this.addFunction(f, f);
      } else if (c.type === 'dotted_name') {
        const f = this.src(c);
        this.addFunction(f, f);
      } else if (c.type === 'aliased_import') {
        const name = c.childForFieldName('name');
        const alias = c.childForFieldName('alias');
        if (name && alias) this.addFunction(this.src(alias), this.src(name));
      }
    }
  }

  private addModule(name: string): void {
    this.names.modules.add(name);
    this.keywords.add(name);
  }

  private addFunction(local: string, imported: string): void {
    if (!Object.prototype.hasOwnProperty.call(TRANSFORM_KIND, imported) && imported !== 'load') return;
    this.names.functions.set(local, imported);
    this.keywords.add(local);
  }

  // ---- expressions ---------------------------------------------------------------------------

  /** A dotted access path (`model`, `self.model`), or null for any other expression. */
  private path(n: Node | null): string | null {
    if (!n) return null;
    const t = n.type;
    if (t === 'identifier') return this.src(n);
    if (t !== 'attribute') return null;
    // read from the text: one call into the tree instead of one per dot
    const s = this.src(n);
    return DOTTED.test(s) ? s.replace(/\s+/g, '') : null;
  }

  /**
   * Emits the effects of evaluating `n` (when `deep`) and returns the path of the model it
   * evaluates to, when it is one (`model`, `linger.init(model)`, `model.cuda()`).
   */
  private value(n: Node | null, deep: boolean): string | null {
    if (!n) return null;
    switch (n.type) {
      case 'identifier':
        return this.src(n);
      case 'attribute': {
        const p = this.path(n);
        if (p === null && deep) this.value(n.childForFieldName('object'), true);
        return p;
      }
      case 'call':
        return this.call(n, deep);
      case 'parenthesized_expression':
      case 'await': {
        let r: string | null = null;
        for (const c of n.namedChildren) if (c && c.type !== 'comment') r = this.value(c, deep);
        return r;
      }
      case 'assignment':
        return this.assignment(n, deep);
      case 'augmented_assignment':
        if (deep) this.value(n.childForFieldName('right'), true);
        return null;
      case 'named_expression': {
        const v = this.value(n.childForFieldName('value'), deep);
        const name = this.path(n.childForFieldName('name'));
        if (name) this.bind(name, v);
        return v;
      }
      case 'comment':
      case 'string':
      case 'integer':
      case 'float':
      case 'true':
      case 'false':
      case 'none':
        return null;
      default:
        if (DEFERRED.has(n.type)) return null;
        if (deep) for (const c of n.namedChildren) if (c) this.value(c, true);
        return null;
    }
  }

  private call(n: Node, deep: boolean): string | null {
    const fn = n.childForFieldName('function');
    if (!fn) return null;
    if (!deep) {
      // only `x.cuda()`-style self-returning calls matter without a keyword
      const method = METHOD.exec(this.src(fn));
      if (!method || !SELF_METHODS.has(method[1]) || fn.type !== 'attribute') return null;
      return this.value(fn.childForFieldName('object'), false);
    }
    const fpath = this.path(fn);
    let calleePath = fpath;
    if (fpath === null && fn.type === 'attribute') {
      // `MyNet().cuda()`: evaluate the receiver; `model.cuda().eval()` keeps the model
      const recv = this.value(fn.childForFieldName('object'), true);
      const method = fn.childForFieldName('attribute');
      if (recv && method) calleePath = `${recv}.${this.src(method)}`;
    } else if (fpath === null) {
      this.value(fn, true);
    }
    const positional: Array<string | null> = [];
    const keywords = new Map<string, string | null>();
    const args = n.childForFieldName('arguments');
    // the arguments' values matter for a linger call; for any other call only the calls inside them do
    const needValues = calleePath !== null && classifyCallee(calleePath, this.names) !== null;
    if (args && args.type === 'argument_list' && (needValues || this.relevant(args))) {
      let splat = false;
      for (const a of args.namedChildren) {
        if (!a || a.type === 'comment') continue;
        if (a.type === 'keyword_argument') {
          const name = a.childForFieldName('name');
          const v = this.value(a.childForFieldName('value'), true);
          if (name) keywords.set(this.src(name), v);
        } else if (a.type === 'list_splat' || a.type === 'dictionary_splat') {
          this.value(a, true);
          splat = true;
        } else {
          const v = this.value(a, true);
          if (!splat) positional.push(v);
        }
      }
    }
    if (calleePath === null) return null;
    return this.resolvedCall(n, calleePath, positional, keywords, fn);
  }

  private assignment(n: Node, deep: boolean): string | null {
    if (n.type !== 'assignment') return deep ? this.value(n, true) : null;
    // a = b = value: targets left to right, one value
    const targets: Node[] = [];
    let cur: Node = n;
    let right: Node | null;
    for (;;) {
      const left = cur.childForFieldName('left');
      if (left) targets.push(left);
      right = cur.childForFieldName('right');
      if (right && right.type === 'assignment') {
        cur = right;
        continue;
      }
      break;
    }
    if (right && targets.length === 1 && SEQUENCE_TARGETS.has(targets[0].type) && SEQUENCE_TARGETS.has(right.type)) {
      // model, opt = linger.init(model), SGD(...): pairwise
      const ls = targets[0].namedChildren.filter((c): c is Node => !!c && c.type !== 'comment');
      const rs = right.namedChildren.filter((c): c is Node => !!c && c.type !== 'comment');
      if (ls.length === rs.length) {
        const vs = rs.map((r) => this.value(r, deep));
        ls.forEach((l, i) => this.bindTarget(l, vs[i]));
        return null;
      }
    }
    const v = right ? this.value(right, deep) : null;
    for (const t of targets) this.bindTarget(t, v);
    return v;
  }

  private bindTarget(t: Node, v: string | null): void {
    const p = this.path(t);
    if (p !== null) {
      this.bind(p, v);
      return;
    }
    if (
      SEQUENCE_TARGETS.has(t.type) ||
      t.type === 'list_splat_pattern' ||
      t.type === 'parenthesized_expression' ||
      t.type === 'as_pattern_target'
    ) {
      for (const c of t.namedChildren) if (c) this.bindTarget(c, null);
    }
  }
}
