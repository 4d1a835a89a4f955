// The language-neutral program the rules run on: for each scope (module level, each function
// body), its statements in order, with the branch and loop structure kept, and for each statement
// the effects that matter here: transforms, state-dict loads, and bindings of names to models.
// The Python and TypeScript/JavaScript front ends build it from tree-sitter trees.

/** A range of the analysed text as UTF-16 offsets. */
export interface Span {
  start: number;
  end: number;
}

export type TransformKind = 'trace' | 'normalize' | 'init';

export interface TransformEffect {
  type: 'transform';
  kind: TransformKind;
  /** Access path of the model (`model`, `self.model`) or a synthetic one for an anonymous value. */
  model: string;
  span: Span;
  /** The callee as written (`linger.trace_layers`, `lg.init`, `L.linger.init`). */
  callee: string;
  item: Item;
}

export interface LoadEffect {
  type: 'load';
  model: string;
  span: Span;
  /** `model.load_state_dict`, `this.net.loadStateDict`, `linger.load`. */
  callee: string;
  item: Item;
  /** A `linger.load(...)` argument: a load only when that path already names a model. */
  ifTracked: boolean;
}

/** `target = source`: an alias when `source` is a path, a new object when null. */
export interface BindEffect {
  type: 'bind';
  target: string;
  source: string | null;
  at: number;
}

export type Effect = TransformEffect | LoadEffect | BindEffect;

export interface Block {
  id: number;
  items: Item[];
}

interface ItemBase {
  id: number;
  /** The whole statement, for moving it. */
  span: Span;
  parent: Item | null;
  /** The block the statement is in. */
  block: number;
  /** Whether a transform is anywhere inside (a statement holding one is not moved by a fix). */
  hasTransform: boolean;
}

export type Exit = 'return' | 'break' | 'continue' | null;

/** A simple statement: effects in evaluation order; `exit` when it leaves the block. */
export interface StmtItem extends ItemBase {
  k: 'stmt';
  effects: Effect[];
  exit: Exit;
}
/**
 * Mutually exclusive arms (if/elif/else, match, switch); not exhaustive = control may skip all;
 * breakable = a `break` in an arm leaves the branch (switch).
 */
export interface BranchItem extends ItemBase {
  k: 'branch';
  head: Effect[];
  arms: Block[];
  exhaustive: boolean;
  breakable: boolean;
}
/** for / while: the body may run zero or more times; `orelse` is Python's loop `else`. */
export interface LoopItem extends ItemBase {
  k: 'loop';
  head: Effect[];
  body: Block;
  orelse: Block;
}
export interface TryItem extends ItemBase {
  k: 'try';
  body: Block;
  handlers: Block[];
  orelse: Block;
  final: Block;
}
/** with, a braced block, a label: the body runs once, in order. */
export interface SeqItem extends ItemBase {
  k: 'seq';
  head: Effect[];
  body: Block;
}

export type Item = StmtItem | BranchItem | LoopItem | TryItem | SeqItem;

export interface Scope {
  body: Block;
}

/** Builds items with their parent links; shared by both front ends. */
export class FlowBuilder {
  private nextId = 1;

  block(): Block {
    return { id: this.nextId++, items: [] };
  }

  stmt(into: Block, parent: Item | null, span: Span): StmtItem {
    const it: StmtItem = { k: 'stmt', id: this.nextId++, span, parent, block: into.id, hasTransform: false, effects: [], exit: null };
    into.items.push(it);
    return it;
  }

  branch(into: Block, parent: Item | null, span: Span): BranchItem {
    const it: BranchItem = {
      k: 'branch',
      id: this.nextId++,
      span,
      parent,
      block: into.id,
      hasTransform: false,
      head: [],
      arms: [],
      exhaustive: false,
      breakable: false,
    };
    into.items.push(it);
    return it;
  }

  loop(into: Block, parent: Item | null, span: Span): LoopItem {
    const it: LoopItem = {
      k: 'loop',
      id: this.nextId++,
      span,
      parent,
      block: into.id,
      hasTransform: false,
      head: [],
      body: this.block(),
      orelse: this.block(),
    };
    into.items.push(it);
    return it;
  }

  try(into: Block, parent: Item | null, span: Span): TryItem {
    const it: TryItem = {
      k: 'try',
      id: this.nextId++,
      span,
      parent,
      block: into.id,
      hasTransform: false,
      body: this.block(),
      handlers: [],
      orelse: this.block(),
      final: this.block(),
    };
    into.items.push(it);
    return it;
  }

  seq(into: Block, parent: Item | null, span: Span): SeqItem {
    const it: SeqItem = { k: 'seq', id: this.nextId++, span, parent, block: into.id, hasTransform: false, head: [], body: this.block() };
    into.items.push(it);
    return it;
  }

  /** A unique marker for binds (a new object per assignment). */
  mark(): number {
    return this.nextId++;
  }
}

/** Marks `item` and its ancestors as holding a transform. */
export function markTransform(item: Item): void {
  for (let it: Item | null = item; it && !it.hasTransform; it = it.parent) it.hasTransform = true;
}
