// TypeScript / TSX / JavaScript front end: a tree-sitter tree → the flow of flow.ts. Scopes: the
// program, and each function body (declarations, methods, arrow functions and function
// expressions such as test callbacks) separately.
import type { Node } from '@vscode/tree-sitter-wasm';
import type { Block, Effect, Exit, Item, Scope } from './flow';
import { classifyCallee, FrontEnd, KeywordIndex, SELF_METHODS, spanOf, TRANSFORM_KIND } from './frontend';

/** `a.b.c` / `this.model` / `a?.b`, spaces allowed around the dots. */
const DOTTED = /^(?:this|[A-Za-z_$][\w$]*)(?:\s*\??\.\s*#?[A-Za-z_$][\w$]*)+$/;
/** The method name at the end of a callee's text. */
const METHOD = /\.\s*([A-Za-z_$][\w$]*)$/;
/** Wrappers that do not change which object an expression is. */
const TRANSPARENT = new Set([
  'parenthesized_expression',
  'non_null_expression',
  'as_expression',
  'satisfies_expression',
  'type_assertion',
  'await_expression',
]);
const FUNCTIONS = new Set([
  'arrow_function',
  'function_expression',
  'function',
  'generator_function',
  'generator_function_declaration',
  'function_declaration',
  'method_definition',
]);
const SKIP_STATEMENTS = new Set([
  'comment',
  'empty_statement',
  'interface_declaration',
  'type_alias_declaration',
  'enum_declaration',
  'ambient_declaration',
  'module',
  'internal_module',
  'debugger_statement',
  'hash_bang_line',
  'import_alias',
]);
const PATTERNS = new Set([
  'object_pattern',
  'array_pattern',
  'pair_pattern',
  'rest_pattern',
  'assignment_pattern',
  'shorthand_property_identifier_pattern',
  'object_assignment_pattern',
]);

/** Module specifiers taken as this engine: the package, its subpaths, and relative paths to the engine's source. */
function isEngineModule(spec: string): boolean {
  return spec === 'linger-studio' || spec.startsWith('linger-studio/') || /(^|\/)(engine|linger)(\/index)?(\.[cm]?[jt]s)?$/.test(spec);
}

export class EcmaFrontEnd extends FrontEnd {
  constructor(text: string, keywords: KeywordIndex) {
    super(text, keywords);
  }

  run(root: Node): Scope[] {
    const scope: Scope = { body: this.b.block() };
    this.scopes.push(scope);
    this.statements(root, scope.body, null);
    this.drainQueue();
    return this.scopes;
  }

  private statements(n: Node, into: Block, parent: Item | null): void {
    for (const c of n.namedChildren) if (c) this.statement(c, into, parent);
  }

  /** A statement body that may be a block or a single statement. */
  private body(n: Node | null, into: Block, parent: Item): void {
    if (!n) return;
    if (n.type === 'statement_block') this.statements(n, into, parent);
    else this.statement(n, into, parent);
  }

  private statement(n: Node, into: Block, parent: Item | null): void {
    const t = n.type;
    if (SKIP_STATEMENTS.has(t)) return;
    switch (t) {
      case 'import_statement':
        this.importStatement(n);
        return;
      case 'export_statement': {
        const d = n.childForFieldName('declaration');
        if (d) {
          this.statement(d, into, parent);
          return;
        }
        const v = n.childForFieldName('value');
        if (v) this.simple(n, into, parent, null);
        return;
      }
      case 'function_declaration':
      case 'generator_function_declaration':
        this.queueFunction(n);
        return;
      case 'class_declaration':
      case 'abstract_class_declaration':
      case 'class':
        this.classBody(n);
        return;
      case 'statement_block': {
        const it = this.b.seq(into, parent, spanOf(n));
        this.statements(n, it.body, it);
        return;
      }
      case 'labeled_statement': {
        const it = this.b.seq(into, parent, spanOf(n));
        this.body(n.childForFieldName('body'), it.body, it);
        return;
      }
      case 'ERROR':
        this.statements(n, into, parent);
        return;
      case 'if_statement':
        this.ifStatement(n, into, parent);
        return;
      case 'switch_statement':
        this.switchStatement(n, into, parent);
        return;
      case 'for_statement':
      case 'for_in_statement':
      case 'while_statement':
      case 'do_statement':
        this.loop(n, into, parent);
        return;
      case 'try_statement':
        this.tryStatement(n, into, parent);
        return;
      case 'return_statement':
      case 'throw_statement':
        this.simple(n, into, parent, 'return');
        return;
      case 'break_statement':
        this.simple(n, into, parent, 'break');
        return;
      case 'continue_statement':
        this.simple(n, into, parent, 'continue');
        return;
      case 'lexical_declaration':
      case 'variable_declaration':
        this.declaration(n, into, parent);
        return;
      default:
        this.simple(n, into, parent, null);
    }
  }

  private simple(n: Node, into: Block, parent: Item | null, exit: Exit): void {
    const deep = this.relevant(n);
    let assign: Node | null = null;
    if (!deep) {
      if (n.type === 'expression_statement') {
        const e = n.namedChild(0);
        if (e && e.type === 'assignment_expression') assign = e;
      }
      if (!assign && exit === null) return;
    }
    const it = this.b.stmt(into, parent, spanOf(n));
    it.exit = exit;
    if (deep)
      this.into(it, it.effects, () => {
        for (const c of n.namedChildren) if (c) this.value(c, true);
      });
    else if (assign) this.into(it, it.effects, () => this.value(assign, false));
  }

  private declaration(n: Node, into: Block, parent: Item | null): void {
    const deep = this.relevant(n);
    const it = this.b.stmt(into, parent, spanOf(n));
    this.into(it, it.effects, () => {
      for (const d of n.namedChildren) {
        if (!d || d.type !== 'variable_declarator') continue;
        const name = d.childForFieldName('name');
        const value = d.childForFieldName('value');
        if (deep && name && value) this.importBinding(name, value);
        const v = value ? this.value(value, deep) : null;
        if (name) this.bindTarget(name, v);
      }
    });
  }

  private head(it: Item, effects: Effect[], n: Node | null): void {
    if (!n) return;
    this.into(it, effects, () => this.value(n, this.relevant(n)));
  }

  private ifStatement(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.branch(into, parent, spanOf(n));
    this.head(it, it.head, n.childForFieldName('condition'));
    const cons = this.b.block();
    it.arms.push(cons);
    this.body(n.childForFieldName('consequence'), cons, it);
    const alt = n.childForFieldName('alternative');
    if (alt) {
      const blk = this.b.block();
      it.arms.push(blk);
      const inner = alt.type === 'else_clause' ? (alt.namedChildren.find((c) => c && c.type !== 'comment') ?? null) : alt;
      this.body(inner, blk, it);
      it.exhaustive = true;
    }
  }

  private switchStatement(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.branch(into, parent, spanOf(n));
    this.head(it, it.head, n.childForFieldName('value'));
    it.breakable = true;
    const body = n.childForFieldName('body');
    for (const c of body?.namedChildren ?? []) {
      if (!c || (c.type !== 'switch_case' && c.type !== 'switch_default')) continue;
      if (c.type === 'switch_default') it.exhaustive = true;
      const blk = this.b.block();
      it.arms.push(blk);
      const value = c.childForFieldName('value');
      for (const s of c.namedChildren) if (s && (!value || s.id !== value.id)) this.statement(s, blk, it);
    }
  }

  private loop(n: Node, into: Block, parent: Item | null): void {
    const init = n.type === 'for_statement' ? n.childForFieldName('initializer') : null;
    const declares = init !== null && (init.type === 'lexical_declaration' || init.type === 'variable_declaration');
    if (init && declares) this.declaration(init, into, parent); // runs once, before the loop
    const it = this.b.loop(into, parent, spanOf(n));
    if (n.type === 'for_statement') {
      if (init && !declares) this.head(it, it.head, init);
      this.head(it, it.head, n.childForFieldName('condition'));
    } else if (n.type === 'for_in_statement') {
      this.head(it, it.head, n.childForFieldName('right'));
      const left = n.childForFieldName('left');
      if (left) this.into(it, it.head, () => this.bindTarget(left, null));
    } else {
      this.head(it, it.head, n.childForFieldName('condition'));
    }
    this.body(n.childForFieldName('body'), it.body, it);
    if (n.type === 'for_statement') {
      const inc = n.childForFieldName('increment');
      if (inc && this.relevant(inc)) {
        const s = this.b.stmt(it.body, it, spanOf(inc));
        this.into(s, s.effects, () => this.value(inc, true));
      }
    }
  }

  private tryStatement(n: Node, into: Block, parent: Item | null): void {
    const it = this.b.try(into, parent, spanOf(n));
    this.body(n.childForFieldName('body'), it.body, it);
    const handler = n.childForFieldName('handler');
    if (handler) {
      const blk = this.b.block();
      it.handlers.push(blk);
      this.body(handler.childForFieldName('body'), blk, it);
    }
    const fin = n.childForFieldName('finalizer');
    if (fin) this.body(fin.childForFieldName('body'), it.final, it);
  }

  private queueFunction(n: Node): void {
    const body = n.childForFieldName('body');
    if (!body) return;
    this.queueScope(body, (b, blk) => {
      if (b.type === 'statement_block') this.statements(b, blk, null);
      else {
        // an arrow function's expression body
        const it = this.b.stmt(blk, null, spanOf(b));
        this.into(it, it.effects, () => this.value(b, true));
      }
    });
  }

  private classBody(n: Node): void {
    if (!this.relevant(n)) return;
    const body = n.childForFieldName('body');
    for (const m of body?.namedChildren ?? []) {
      if (!m) continue;
      if (m.type === 'method_definition') this.queueFunction(m);
      else if (m.type === 'class_static_block') this.queueFunction(m);
      else if (this.relevant(m)) {
        // field initializers may hold functions
        const v = m.childForFieldName('value');
        if (v) this.nested(v);
      }
    }
  }

  /** Queues the functions inside an expression that is not otherwise evaluated. */
  private nested(n: Node): void {
    if (FUNCTIONS.has(n.type)) {
      this.queueFunction(n);
      return;
    }
    if (n.type === 'class') {
      this.classBody(n);
      return;
    }
    for (const c of n.namedChildren) if (c && this.relevant(c)) this.nested(c);
  }

  // ---- imports -------------------------------------------------------------------------------

  private importStatement(n: Node): void {
    const source = n.childForFieldName('source');
    const spec = source ? this.src(source).slice(1, -1) : '';
    const clause = n.namedChildren.find((c) => c?.type === 'import_clause');
    if (!clause) return;
    for (const c of clause.namedChildren) {
      if (!c) continue;
      if (c.type === 'identifier' || c.type === 'namespace_import') {
        // import L from '…' / import * as L from '…': L.linger.init
        const id = c.type === 'identifier' ? c : c.namedChildren.find((x) => x?.type === 'identifier');
        if (id && isEngineModule(spec)) this.addPackage(this.src(id));
      } else if (c.type === 'named_imports') {
        for (const s of c.namedChildren) {
          if (s?.type !== 'import_specifier') continue;
          const name = s.childForFieldName('name');
          const alias = s.childForFieldName('alias');
          if (name) this.importName(this.src(name), this.src(alias ?? name), spec);
        }
      }
    }
  }

  /** `linger` from any module is this engine's namespace; transform names only from the engine. */
  private importName(name: string, local: string, spec: string): void {
    if (name === 'linger') {
      this.names.modules.add(local);
      this.keywords.add(local);
      return;
    }
    if (!isEngineModule(spec) && !this.names.modules.has(spec)) return;
    if (Object.prototype.hasOwnProperty.call(TRANSFORM_KIND, name) || name === 'load') {
      this.names.functions.set(local, name);
      this.keywords.add(local);
    }
  }

  private addPackage(name: string): void {
    this.names.packages.add(name);
    this.keywords.add(name);
  }

  /** `const { linger } = require('linger-studio')`, `const L = require(...)`, `const { init } = linger`. */
  private importBinding(name: Node, value: Node): void {
    let v = value;
    while (TRANSPARENT.has(v.type)) {
      const c = v.namedChild(0);
      if (!c) return;
      v = c;
    }
    let spec: string | null = null;
    if (v.type === 'call_expression') {
      const fn = v.childForFieldName('function');
      const args = v.childForFieldName('arguments');
      const first = args?.namedChild(0);
      if (fn && (this.src(fn) === 'require' || fn.type === 'import') && first?.type === 'string') spec = this.src(first).slice(1, -1);
      if (spec === null) return;
      if (name.type === 'identifier') {
        if (isEngineModule(spec)) this.addPackage(this.src(name));
        return;
      }
    } else if (v.type === 'identifier' && this.names.modules.has(this.src(v))) {
      spec = this.src(v); // destructuring the linger namespace: names are transforms
    } else if (v.type === 'member_expression') {
      // const lg = L.linger
      const o = v.childForFieldName('object');
      const p = v.childForFieldName('property');
      if (o && p && this.names.packages.has(this.src(o)) && this.src(p) === 'linger' && name.type === 'identifier') {
        this.names.modules.add(this.src(name));
        this.keywords.add(this.src(name));
      }
      return;
    } else {
      return;
    }
    if (name.type !== 'object_pattern') return;
    for (const p of name.namedChildren) {
      if (!p) continue;
      if (p.type === 'shorthand_property_identifier_pattern') this.importName(this.src(p), this.src(p), spec);
      else if (p.type === 'pair_pattern') {
        const k = p.childForFieldName('key');
        const val = p.childForFieldName('value');
        if (k && val?.type === 'identifier') this.importName(this.src(k), this.src(val), spec);
      }
    }
  }

  // ---- expressions ---------------------------------------------------------------------------

  private path(n: Node | null): string | null {
    if (!n) return null;
    const t = n.type;
    if (t === 'member_expression') {
      // read from the text when it is a plain chain: one call into the tree instead of one per dot
      const s = this.src(n);
      if (DOTTED.test(s)) return s.replace(/[\s?]/g, '');
    }
    switch (t) {
      case 'identifier':
      case 'property_identifier':
      case 'shorthand_property_identifier':
        return this.src(n);
      case 'this':
        return 'this';
      case 'member_expression': {
        const o = this.path(n.childForFieldName('object'));
        const p = n.childForFieldName('property');
        return o && p && (p.type === 'property_identifier' || p.type === 'private_property_identifier') ? `${o}.${this.src(p)}` : null;
      }
      default:
        if (TRANSPARENT.has(n.type) && n.type !== 'await_expression') return this.path(n.namedChild(0));
        return null;
    }
  }

  private value(n: Node | null, deep: boolean): string | null {
    if (!n) return null;
    const t = n.type;
    switch (t) {
      case 'identifier':
      case 'this':
        return this.path(n);
      case 'member_expression': {
        const p = this.path(n);
        if (p === null && deep) this.value(n.childForFieldName('object'), true);
        return p;
      }
      case 'call_expression':
        return this.call(n, deep);
      case 'assignment_expression': {
        const v = this.value(n.childForFieldName('right'), deep);
        const left = n.childForFieldName('left');
        if (left) this.bindTarget(left, v);
        return v;
      }
      case 'augmented_assignment_expression':
        if (deep) this.value(n.childForFieldName('right'), true);
        return null;
      case 'comment':
      case 'string':
      case 'template_string':
      case 'number':
      case 'regex':
      case 'true':
      case 'false':
      case 'null':
      case 'undefined':
      case 'type_annotation':
      case 'type_arguments':
        return null;
      default:
        if (TRANSPARENT.has(t)) {
          let r: string | null = null;
          for (const c of n.namedChildren)
            if (c && c.type !== 'comment' && !c.type.endsWith('type') && c.type !== 'type_identifier') r = this.value(c, deep);
          return r;
        }
        if (FUNCTIONS.has(t)) {
          if (deep) this.queueFunction(n);
          return null;
        }
        if (t === 'class') {
          if (deep) this.classBody(n);
          return null;
        }
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
      if (!method || !SELF_METHODS.has(method[1]) || fn.type !== 'member_expression') return null;
      return this.value(fn.childForFieldName('object'), false);
    }
    let calleePath = this.path(fn);
    if (calleePath === null && fn.type === 'member_expression') {
      const recv = this.value(fn.childForFieldName('object'), true);
      const method = fn.childForFieldName('property');
      if (recv && method) calleePath = `${recv}.${this.src(method)}`;
    } else if (calleePath === null) {
      this.value(fn, true);
    }
    const positional: Array<string | null> = [];
    const args = n.childForFieldName('arguments');
    // the arguments' values matter for a linger call; for any other call only what is inside them
    const needValues = calleePath !== null && classifyCallee(calleePath, this.names) !== null;
    if (args && !needValues && !this.relevant(args)) {
      // nothing to see
    } else if (args && args.type === 'arguments') {
      let spread = false;
      for (const a of args.namedChildren) {
        if (!a || a.type === 'comment') continue;
        if (a.type === 'spread_element') {
          this.value(a, true);
          spread = true;
          continue;
        }
        const v = this.value(a, true);
        if (!spread) positional.push(v);
      }
    } else if (args) {
      this.value(args, true); // a tagged template
    }
    if (calleePath === null) return null;
    return this.resolvedCall(n, calleePath, positional, new Map(), fn);
  }

  private bindTarget(t: Node, v: string | null): void {
    const p = this.path(t);
    if (p !== null) {
      this.bind(p, v);
      return;
    }
    if (PATTERNS.has(t.type)) {
      for (const c of t.namedChildren) {
        if (!c) continue;
        if (c.type === 'shorthand_property_identifier_pattern') this.bind(this.src(c), null);
        else if (c.type === 'pair_pattern') {
          const val = c.childForFieldName('value');
          if (val) this.bindTarget(val, null);
        } else if (c.type === 'assignment_pattern' || c.type === 'object_assignment_pattern') {
          const l = c.childForFieldName('left');
          if (l) this.bindTarget(l, null);
        } else this.bindTarget(c, null);
      }
    }
  }
}
