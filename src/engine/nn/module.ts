import { tf } from '../backend/tf';
import { Tensor, DType } from '../tensor';
import { isReleasing, maybeCollect, track } from '../memory';
import { checkInterrupt } from '../interrupt';
import { StateDict, Stage, makeStateDict, stageOfDict, stageRank } from '../state/stateDict';

/**
 * A trainable tensor: a tf.Variable in the layout chosen by its layer (e.g. HWIO for a conv
 * weight), presented in PyTorch's logical order. The Variable object stays the same across
 * updates, so tensors returned by stateDict() alias live state like PyTorch's.
 */
export class Parameter extends Tensor {
  declare readonly raw: tf.Variable;
  constructor(value: tf.Tensor, perm: readonly number[] | null = null, trainable = true) {
    super(tf.variable(value, trainable), perm);
    value.dispose();
    // the variable is released with its Parameter (and the views of it), like PyTorch's
    track(this, this.raw, true);
  }
  get variable(): tf.Variable {
    return this.raw;
  }
  /** Replaces the value (logical order), keeping the layout and the Variable. */
  assignLogical(t: Tensor): void {
    if (t.shape.join() !== this.shape.join()) {
      throw new Error(`cannot assign shape [${t.shape.join(', ')}] to a parameter of shape [${this.shape.join(', ')}]`);
    }
    tf.tidy(() => {
      let v = t.physical(this.perm);
      if (v === this.raw) return; // its own value (m.loadStateDict(m.stateDict())): a variable cannot assign itself
      if (v.dtype !== this.raw.dtype) v = tf.cast(v, this.raw.dtype);
      this.raw.assign(v);
    });
  }
}

/** A non-trainable state tensor (running statistics, quantizer state): saved, not optimized. */
export class Buffer extends Parameter {
  constructor(value: tf.Tensor, perm: readonly number[] | null = null) {
    super(value, perm, false);
  }
}

/** An error raised by a module, annotated with its path as it propagates out of nested calls. */
export class ModuleError extends Error {
  path: string[] = [];
  current: Module;
  readonly detail: string;
  readonly moduleType: string;
  constructor(module: Module, detail: string, name = 'ModuleError') {
    super(detail);
    this.name = name;
    this.current = module;
    this.detail = detail;
    this.moduleType = module.typeName();
    this.refresh();
  }
  refresh(): void {
    const where = this.path.length ? `'${this.path.join('.')}'` : 'the root module';
    this.message = `${this.moduleType} at ${where}: ${this.detail}`;
  }
}

/** A wrong input shape, naming the module path and expected vs actual shape. */
export class ShapeError extends ModuleError {
  constructor(module: Module, detail: string) {
    super(module, detail, 'ShapeError');
  }
}

/** A per-module wrapper around its calls (the fixed stage sets one on the root, for iqAdd/iqCat). */
export const CALL_WRAPPER = Symbol.for('linger-studio.callWrapper');
export function setCallWrapper(m: Module, wrap: ((run: () => unknown) => unknown) | undefined): void {
  Object.defineProperty(m, CALL_WRAPPER, { value: wrap, enumerable: false, configurable: true, writable: true });
}

/**
 * A root's hook run first by loadStateDict (the fixed stage's: registers the op layers a dict has
 * keys of, renames older layouts' keys); it may edit the incoming entries and returns an undo,
 * called when the load fails (nothing changes then).
 */
export const BEFORE_LOAD = Symbol.for('linger-studio.beforeLoad');
export type BeforeLoad = (sd: Map<string, Tensor>) => () => void;
export function setBeforeLoad(m: Module, hook: BeforeLoad | undefined): void {
  Object.defineProperty(m, BEFORE_LOAD, { value: hook, enumerable: false, configurable: true, writable: true });
}

/** Hook for the tracer: wraps every module call while a trace runs. */
export type ModuleCallHook = (m: Module, args: unknown[], run: () => unknown) => unknown;
let callHook: ModuleCallHook | null = null;
export function withModuleCallHook<T>(hook: ModuleCallHook, fn: () => T): T {
  const prev = callHook;
  callHook = hook;
  try {
    return fn();
  } finally {
    callHook = prev;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyArgs = any[];

let callDepth = 0;
let retainIntermediates = 0;
/** True while the ONNX capture runs the model (the only user of withRetainedIntermediates): linger's layers record their eval scales then. */
export function capturingForExport(): boolean {
  return retainIntermediates > 0;
}
/**
 * Runs `fn` with module calls keeping their intermediates (the ONNX capture reads the constants and
 * values made inside forward after the call); the caller releases them, e.g. with a tf.tidy.
 */
export function withRetainedIntermediates<T>(fn: () => T): T {
  retainIntermediates++;
  try {
    return fn();
  } finally {
    retainIntermediates--;
  }
}

/**
 * The TF.js tensors a forward's result holds: a Tensor, or arrays, Maps, Sets and objects (plain
 * or class instances) of them, at any depth. Modules are not entered: what they hold are
 * parameters and buffers, which a scope never releases.
 */
function tensorsIn(v: unknown, out: tf.Tensor[], seen = new Set<object>()): tf.Tensor[] {
  if (v instanceof Tensor) out.push(v.raw);
  else if (v instanceof tf.Tensor) out.push(v);
  else if (v && typeof v === 'object' && !seen.has(v) && !(v instanceof Module) && !ArrayBuffer.isView(v)) {
    seen.add(v);
    const values = v instanceof Map || v instanceof Set ? v.values() : Array.isArray(v) ? v : Object.values(v);
    for (const x of values) tensorsIn(x, out, seen);
  }
  return out;
}

/** Runs fn in a tf.tidy scope that keeps only the tensors fn returns. */
function keepingOnlyResult(fn: () => unknown): unknown {
  let result: unknown;
  tf.tidy(() => {
    result = fn();
    return tensorsIn(result, []);
  });
  return result;
}

/** Modules are callable, as in PyTorch: `this.conv(x)` runs `forward` through `call`. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Module {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (...args: AnyArgs): any;
}

/**
 * PyTorch's nn.Module. Assigning a Module, Parameter or Buffer to a field registers it under the
 * field's name (fields keep their definition order); state-dict keys are dotted paths.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export abstract class Module {
  declare training: boolean;

  constructor() {
    // The instance is a function so that it can be called; its prototype is the subclass's.
    const self = ((...args: AnyArgs) => self.call(...args)) as unknown as Module;
    Object.setPrototypeOf(self, new.target.prototype);
    Object.defineProperty(self, 'training', { value: true, writable: true, enumerable: false, configurable: true });
    // an arrow function's own 'name' and 'length' would shadow fields of those names
    delete (self as unknown as { name?: string }).name;
    delete (self as unknown as { length?: number }).length;
    return self;
  }

  abstract forward(...args: AnyArgs): unknown;

  /**
   * Runs forward, keeping only what it returns: every other tensor made inside is released when
   * the call returns (buffers it updated are variables and stay). Annotates shape errors with the
   * path of the module that raised them.
   */
  call(...args: AnyArgs): unknown {
    // a safe point for releasing dropped tensors: user code above holds engine Tensors only
    if (callDepth === 0) {
      checkInterrupt(`a call of ${this.constructor.name}`);
      maybeCollect();
    }
    callDepth++;
    try {
      const wrap = (this as unknown as Record<symbol, ((run: () => unknown) => unknown) | undefined>)[CALL_WRAPPER];
      const run = () => (callHook ? callHook(this, args, () => this.forward(...args)) : this.forward(...args));
      const go = () => (wrap ? wrap(run) : run());
      return retainIntermediates || !isReleasing() ? go() : keepingOnlyResult(go);
    } catch (e) {
      if (e instanceof ModuleError && e.current !== this) {
        const name = this.childName(e.current);
        if (name !== undefined) {
          e.path.unshift(name);
          e.current = this;
          e.refresh();
        }
      }
      throw e;
    } finally {
      callDepth--;
    }
  }

  /** The class name PyTorch would print. */
  typeName(): string {
    return this.constructor.name;
  }
  /** PyTorch's extra_repr. */
  extraRepr(): string {
    return '';
  }

  // ---- registration by field -------------------------------------------------------------------
  private ownEntries(): [string, unknown][] {
    return Object.keys(this).map((k) => [k, (this as unknown as Record<string, unknown>)[k]]);
  }
  namedChildren(): [string, Module][] {
    return this.ownEntries().filter((e): e is [string, Module] => e[1] instanceof Module);
  }
  children(): Module[] {
    return this.namedChildren().map((e) => e[1]);
  }
  /** Own parameters (not buffers), in definition order. */
  ownParameters(): [string, Parameter][] {
    return this.ownEntries().filter((e): e is [string, Parameter] => e[1] instanceof Parameter && !(e[1] instanceof Buffer));
  }
  ownBuffers(): [string, Buffer][] {
    return this.ownEntries().filter((e): e is [string, Buffer] => e[1] instanceof Buffer);
  }
  private childName(m: Module): string | undefined {
    return this.namedChildren().find((e) => e[1] === m)?.[0];
  }

  /** Every module of the tree, root first with path '' (PyTorch's named_modules). */
  *namedModules(prefix = ''): IterableIterator<[string, Module]> {
    const seen = new Set<Module>();
    function* walk(m: Module, p: string): IterableIterator<[string, Module]> {
      if (seen.has(m)) return;
      seen.add(m);
      yield [p, m];
      for (const [k, c] of m.namedChildren()) yield* walk(c, p ? `${p}.${k}` : k);
    }
    yield* walk(this, prefix);
  }
  modules(): Module[] {
    return [...this.namedModules()].map((e) => e[1]);
  }
  namedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Parameter>();
    for (const [p, m] of this.namedModules()) {
      for (const [k, v] of m.ownParameters()) {
        if (seen.has(v)) continue;
        seen.add(v);
        out.push([p ? `${p}.${k}` : k, v]);
      }
    }
    return out;
  }
  parameters(): Parameter[] {
    return this.namedParameters().map((e) => e[1]);
  }
  namedBuffers(): [string, Buffer][] {
    const out: [string, Buffer][] = [];
    for (const [p, m] of this.namedModules()) {
      for (const [k, v] of m.ownBuffers()) out.push([p ? `${p}.${k}` : k, v]);
    }
    return out;
  }
  buffers(): Buffer[] {
    return this.namedBuffers().map((e) => e[1]);
  }

  /** The module at a dotted path ('' is this module). */
  getSubmodule(path: string): Module {
    if (!path) return this;
    let m: Module = this;
    for (const k of path.split('.')) {
      const c = (m as unknown as Record<string, unknown>)[k];
      if (!(c instanceof Module)) throw new Error(`${m.typeName()} has no submodule '${k}' (path '${path}')`);
      m = c;
    }
    return m;
  }
  /** Replaces the module at a dotted path in place, so its name (and key order) stay the same. */
  setSubmodule(path: string, replacement: Module): void {
    const parts = path.split('.');
    const last = parts.pop()!;
    const parent = this.getSubmodule(parts.join('.'));
    if (!(last in parent)) throw new Error(`${parent.typeName()} has no submodule '${last}'`);
    (parent as unknown as Record<string, unknown>)[last] = replacement;
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  // ---- state dicts -------------------------------------------------------------------------------
  /** The stage of this model's state: 'float' until a linger transform changes it. */
  stage(): Stage {
    const done = transformsOf(this);
    let best: Stage = done.includes('init') ? 'fixed' : done.length ? 'traced' : 'float';
    for (const m of this.modules()) {
      const s = m.moduleStage();
      if (stageRank(s) > stageRank(best)) best = s;
    }
    return best;
  }
  /** The stage this module's own layout belongs to (linger layers override). */
  moduleStage(): Stage {
    return 'float';
  }

  /**
   * PyTorch's state_dict: each module's parameters, then its buffers, then its children's, keyed
   * by dotted path. The tensors alias live state; the dict carries its stage (non-enumerable).
   */
  stateDict(): StateDict {
    const entries: [string, Tensor][] = [];
    const walk = (m: Module, p: string) => {
      for (const [k, v] of m.ownParameters()) entries.push([p + k, v]);
      for (const [k, v] of m.ownBuffers()) entries.push([p + k, v]);
      for (const [k, c] of m.namedChildren()) walk(c, `${p}${k}.`);
    };
    walk(this, '');
    return makeStateDict(entries, this.stage());
  }

  /**
   * Hook for layers whose keys differ between stages (PyTorch's _load_from_state_dict): rewrite
   * incoming entries under `prefix` into this module's layout. Returns nothing; edits `sd`.
   */
  migrateState(_sd: Map<string, Tensor>, _prefix: string, _from: Stage): void {
    /* same keys */
  }

  /**
   * Loads a state dict. strict (default): every missing key, unexpected key and shape mismatch is
   * reported in one error, and nothing changes unless everything fits. Returns what did not match.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const strict = opts.strict ?? true;
    const from = stageOfDict(sd);
    const to = this.stage();
    if (stageRank(from) > stageRank(to)) {
      throw new Error(
        `cannot load a ${from}-stage state dict into a ${to}-stage model: a state dict loads into the same or a later stage only` +
          ` (apply the transforms that produced it first, e.g. ${from === 'fixed' ? 'linger.init' : 'linger.traceLayers'}, then load)`,
      );
    }
    const incoming = new Map<string, Tensor>(Object.entries(sd));
    const undo = (this as unknown as Record<symbol, BeforeLoad | undefined>)[BEFORE_LOAD]?.(incoming);
    for (const [p, m] of this.namedModules()) m.migrateState(incoming, p ? `${p}.` : '', from);
    // tensors a migration made (folded weights, reset statistics) are released after the load
    const given = new Set(Object.values(sd));
    const made = [...incoming.values()].filter((t) => !given.has(t));
    try {
      return this.applyStateDict(incoming, strict, from);
    } catch (e) {
      undo?.();
      throw e;
    } finally {
      for (const t of made) t.dispose();
    }
  }

  private applyStateDict(incoming: Map<string, Tensor>, strict: boolean, from: Stage): { missingKeys: string[]; unexpectedKeys: string[] } {
    const own = this.stateDict();
    const optional = new Set(this.keysAddedAfter(from));
    const missing: string[] = [];
    const mismatched: string[] = [];
    const apply: [Parameter, Tensor][] = [];
    for (const [k, target] of Object.entries(own) as [string, Tensor][]) {
      const v = incoming.get(k);
      if (!v) {
        if (!optional.has(k)) missing.push(k);
        continue;
      }
      incoming.delete(k);
      if (v.shape.join() !== target.shape.join()) {
        mismatched.push(`${k}: checkpoint has [${v.shape.join(', ')}], model has [${target.shape.join(', ')}]`);
        continue;
      }
      apply.push([target as Parameter, v]);
    }
    const unexpected = [...incoming.keys()];
    if (mismatched.length || (strict && (missing.length || unexpected.length))) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing keys: ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(', ')}`);
      if (mismatched.length) parts.push(`shape mismatches: ${mismatched.join('; ')}`);
      throw new Error(`error loading state dict into ${this.typeName()} (nothing was changed):\n  ${parts.join('\n  ')}`);
    }
    for (const [p, v] of apply) p.assignLogical(v);
    lingerRecord(this).loadedAfter = transformsOf(this).length;
    return { missingKeys: missing, unexpectedKeys: unexpected };
  }

  /** State keys that a transform later than `from` added (filled by training, not by the dict). */
  keysAddedAfter(from: Stage): string[] {
    const out: string[] = [];
    for (const [p, m] of this.namedModules()) {
      for (const k of m.ownKeysAddedAfter(from)) out.push(p ? `${p}.${k}` : k);
    }
    return out;
  }
  ownKeysAddedAfter(_from: Stage): string[] {
    return [];
  }

  // ---- printing ----------------------------------------------------------------------------------
  /** Exactly PyTorch's Module.__repr__. */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra ? extra.split('\n') : [];
    const childLines = this.namedChildren().map(([k, c]) => `(${k}): ${addIndent(c.toString(), 2)}`);
    const lines = [...extraLines, ...childLines];
    let s = `${this.typeName()}(`;
    if (lines.length) {
      if (extraLines.length === 1 && childLines.length === 0) s += extraLines[0];
      else s += '\n  ' + lines.join('\n  ') + '\n';
    }
    return s + ')';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** The linger transforms applied to a root model, in order, and when a state dict was loaded. */
export type TransformName = 'trace' | 'normalize' | 'init';
interface LingerRecord {
  transforms: TransformName[];
  loadedAfter?: number;
}
const LINGER = Symbol.for('linger-studio.record');
function lingerRecord(m: Module): LingerRecord {
  const host = m as unknown as Record<symbol, LingerRecord>;
  if (!host[LINGER]) Object.defineProperty(m, LINGER, { value: { transforms: [] }, enumerable: false });
  return host[LINGER];
}
export function transformsOf(m: Module): readonly TransformName[] {
  return lingerRecord(m).transforms;
}
export function recordTransform(m: Module, t: TransformName): void {
  lingerRecord(m).transforms.push(t);
}
/** How many transforms had been applied when loadStateDict last succeeded (undefined: never). */
export function lastLoadAt(m: Module): number | undefined {
  return lingerRecord(m).loadedAfter;
}

function addIndent(s: string, n: number): string {
  const lines = s.split('\n');
  if (lines.length === 1) return s;
  const pad = ' '.repeat(n);
  return [lines[0], ...lines.slice(1).map((l) => pad + l)].join('\n');
}

/** Makes a Parameter from logical-order values, stored in `perm` layout. */
export function parameterFrom(
  values: Float32Array | Int32Array,
  logicalShape: number[],
  perm: readonly number[] | null = null,
  dtype: DType = 'float32',
  trainable = true,
): Parameter {
  const logical = tf.tensor(values, logicalShape, dtype);
  const phys = perm ? tf.transpose(logical, inversePerm(perm)) : logical;
  if (phys !== logical) logical.dispose();
  return trainable ? new Parameter(phys, perm) : new Buffer(phys, perm);
}
function inversePerm(p: readonly number[]): number[] {
  const r = new Array<number>(p.length);
  p.forEach((v, i) => {
    r[v] = i;
  });
  return r;
}
