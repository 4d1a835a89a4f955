import { tf } from './backend/tf';
import { rng } from './random';
import { stopGradient } from './backend/kernels';
import { track, untrack } from './memory';

export type DType = 'float32' | 'int32';

/**
 * The engine's tensor: a TF.js tensor plus the permutation that maps the logical (PyTorch, NCHW)
 * axes onto the physical ones. TF.js is NHWC-native, so conv activations live as NHWC with
 * `perm = [0, 3, 1, 2]` and conv weights as HWIO with `perm = [3, 2, 0, 1]`; `shape`, `dataSync()`
 * and `data()` always answer in logical order, and the transpose happens only when an op really
 * needs the logical memory order (reshape/view, dataSync). `permute` only rewrites `perm`.
 *
 * logical axis i is physical axis perm[i]; the logical tensor is tf.transpose(raw, perm).
 */
export class Tensor {
  readonly raw: tf.Tensor;
  readonly perm: readonly number[] | null;
  /**
   * Set on the output of a fixed-point layer (linger's IQTensor): the values are int codes / this
   * power-of-two scale, and the next Int layer takes them as they are. Ops that keep codes
   * (relu, max-pool, reshape, permute) keep the scale; any other op drops it.
   */
  readonly quantScale?: number;

  constructor(raw: tf.Tensor, perm: readonly number[] | null = null, quantScale?: number) {
    this.raw = raw;
    this.perm = perm && !isIdentity(perm) ? perm : null;
    if (quantScale !== undefined) this.quantScale = quantScale;
    if (this.perm && this.perm.length !== raw.rank) {
      throw new Error(`internal: permutation ${JSON.stringify(perm)} does not fit a rank-${raw.rank} tensor`);
    }
    // released when no engine Tensor holding it is reachable (memory.ts)
    track(this, raw, false);
  }

  get shape(): number[] {
    const s = this.raw.shape;
    return this.perm ? this.perm.map((p) => s[p]) : s.slice();
  }
  get dtype(): DType {
    return this.raw.dtype as DType;
  }
  get rank(): number {
    return this.raw.rank;
  }
  get size(): number {
    return this.raw.size;
  }
  dim(): number {
    return this.raw.rank;
  }
  numel(): number {
    return this.raw.size;
  }
  get isDisposed(): boolean {
    return this.raw.isDisposed;
  }

  /** The TF.js tensor in logical (PyTorch) order; a transpose only when the layout differs. */
  logical(): tf.Tensor {
    return this.perm ? tf.transpose(this.raw, this.perm as number[]) : this.raw;
  }

  /** The TF.js tensor in the given physical layout (a permutation of the logical axes). */
  physical(perm: readonly number[] | null): tf.Tensor {
    const want = perm && !isIdentity(perm) ? perm : null;
    if (sameperm(this.perm, want)) return this.raw;
    // from raw (layout this.perm) to layout want: logical = transpose(raw, this.perm);
    // target = transpose(logical, inverse(want)) = transpose(raw, compose)
    const inv = want ? inverse(want) : identity(this.rank);
    const cur = this.perm ?? identity(this.rank);
    const t = inv.map((i) => cur[i]);
    if (isIdentity(t)) return this.raw;
    if (movesOnlyUnitAxes(this.raw.shape, t)) {
      return tf.reshape(
        this.raw,
        t.map((i) => this.raw.shape[i]),
      );
    }
    return tf.transpose(this.raw, t);
  }

  dataSync(): Float32Array | Int32Array {
    const l = this.logical();
    const d = l.dataSync() as Float32Array | Int32Array;
    if (l !== this.raw) l.dispose();
    return d;
  }
  async data(): Promise<Float32Array | Int32Array> {
    const l = this.logical();
    const d = (await l.data()) as Float32Array | Int32Array;
    if (l !== this.raw) l.dispose();
    return d;
  }
  /** Nested arrays in logical order (like tensor.tolist()). */
  arraySync(): unknown {
    const l = this.logical();
    const a = l.arraySync();
    if (l !== this.raw) l.dispose();
    return a;
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, not 1`);
    return this.raw.dataSync()[0];
  }
  /**
   * Lets this tensor outlive the module call that made it (a call keeps only what it returns): for
   * an intermediate captured inside forward, like an activation stashed by a hook. It is released
   * when it becomes unreachable, like any other. Returns this tensor.
   */
  keep(): this {
    tf.keep(this.raw);
    return this;
  }
  /** Releases the storage now (optional: an unreachable Tensor is released anyway). Idempotent. */
  dispose(): void {
    untrack(this, this.raw);
    this.raw.dispose();
  }
  toString(): string {
    return `tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype})`;
  }

  // ---- element-wise (layout-preserving when both sides share it) ---------------------------
  add(o: Tensor | number): Tensor {
    return record('add', [this, o], () => (typeof o !== 'number' && quantizedOpHook?.('add', [this, o])) || binary(this, o, tf.add));
  }
  sub(o: Tensor | number): Tensor {
    return record('sub', [this, o], () => binary(this, o, tf.sub));
  }
  mul(o: Tensor | number): Tensor {
    return record(
      'mul',
      [this, o],
      () =>
        (typeof o === 'number' ? quantizedOpHook?.('mul', [this], undefined, { scalar: o }) : quantizedOpHook?.('mul', [this, o])) ||
        binary(this, o, tf.mul),
    );
  }
  div(o: Tensor | number): Tensor {
    return record('div', [this, o], () => binary(this, o, tf.div));
  }
  neg(): Tensor {
    return record('neg', [this], () => unary(this, tf.neg));
  }
  abs(): Tensor {
    return record('abs', [this], () => unary(this, tf.abs));
  }
  exp(): Tensor {
    return record('exp', [this], () => unary(this, tf.exp));
  }
  log(): Tensor {
    return record('log', [this], () => unary(this, tf.log));
  }
  sqrt(): Tensor {
    return record('sqrt', [this], () => unary(this, tf.sqrt));
  }
  relu(): Tensor {
    return record('relu', [this], () => new Tensor(tf.relu(this.raw), this.perm, this.quantScale));
  }
  sigmoid(): Tensor {
    return record('sigmoid', [this], () => quantizedOpHook?.('sigmoid', [this]) || unary(this, tf.sigmoid));
  }
  tanh(): Tensor {
    return record('tanh', [this], () => quantizedOpHook?.('tanh', [this]) || unary(this, tf.tanh));
  }
  clamp(min: number | null, max: number | null): Tensor {
    return record(
      'clamp',
      [this],
      () =>
        quantizedOpHook?.('clamp', [this], undefined, { min, max }) ||
        unary(this, (t) => tf.clipByValue(t, min ?? -Infinity, max ?? Infinity)),
      { min, max },
    );
  }
  pow(e: number): Tensor {
    return record('pow', [this], () => unary(this, (t) => tf.pow(t, e)), { exponent: e });
  }
  float(): Tensor {
    return this.dtype === 'float32' ? this : new Tensor(tf.cast(this.raw, 'float32'), this.perm);
  }
  int(): Tensor {
    return this.dtype === 'int32' ? this : new Tensor(tf.cast(this.raw, 'int32'), this.perm);
  }
  eq(o: Tensor | number): Tensor {
    return binary(this, o, tf.equal);
  }
  /** Index of the maximum along a dimension (int32), like torch.argmax. */
  argmax(dim: number): Tensor {
    const d = normAxis(dim, this.rank);
    const { axes, perm } = reduceLayout(this, [d], false);
    return new Tensor(tf.argMax(this.raw, axes[0]), perm);
  }

  // ---- reductions ----------------------------------------------------------------------------
  sum(dim?: number | number[], keepdim = false): Tensor {
    return record(
      'sum',
      [this],
      () => quantizedOpHook?.('sum', [this], undefined, { dim, keepdim }) || reduce(this, dim, keepdim, tf.sum),
      { dim, keepdim },
    );
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return record('mean', [this], () => reduce(this, dim, keepdim, tf.mean), { dim, keepdim });
  }
  max(dim?: number | number[], keepdim = false): Tensor {
    return record('max', [this], () => reduce(this, dim, keepdim, tf.max), { dim, keepdim });
  }
  min(dim?: number | number[], keepdim = false): Tensor {
    return record('min', [this], () => reduce(this, dim, keepdim, tf.min), { dim, keepdim });
  }

  // ---- shape ---------------------------------------------------------------------------------
  /** torch.reshape / view: `-1` infers one dimension. Works on the logical (row-major) order. */
  reshape(shape: number[]): Tensor {
    return record(
      'reshape',
      [this],
      () => {
        const target = inferShape(shape, this.size, this.shape);
        return new Tensor(tf.reshape(this.logical(), target), null, this.quantScale);
      },
      { shape: [...shape] },
    );
  }
  view(...shape: (number | number[])[]): Tensor {
    return this.reshape(shape.flat());
  }
  /** Tensor.flatten: a quantized tensor stays quantized (linger's IQTensor.flatten); torch.flatten is F.flatten. */
  flatten(startDim = 0, endDim = -1): Tensor {
    return flattenOf(this, startDim, endDim, true);
  }
  /** torch.permute: free, only the layout record changes. */
  permute(...dims: (number | number[])[]): Tensor {
    return record('permute', [this], () => {
      const d = dims.flat().map((x) => normAxis(x, this.rank));
      if (d.length !== this.rank || new Set(d).size !== d.length) {
        throw new Error(`permute: dims [${d.join(', ')}] are not a permutation of ${this.rank} axes`);
      }
      const cur = this.perm ?? identity(this.rank);
      return new Tensor(
        this.raw,
        d.map((i) => cur[i]),
        this.quantScale,
      );
    });
  }
  transpose(dim0: number, dim1: number): Tensor {
    const d = identity(this.rank);
    const a = normAxis(dim0, this.rank);
    const b = normAxis(dim1, this.rank);
    [d[a], d[b]] = [d[b], d[a]];
    return this.permute(d);
  }
  get T(): Tensor {
    return this.permute(identity(this.rank).reverse());
  }
  squeeze(dim?: number): Tensor {
    const s = this.shape;
    const keep = s.filter((v, i) => (dim === undefined ? v !== 1 : i !== normAxis(dim, s.length) || v !== 1));
    return this.reshape(keep);
  }
  unsqueeze(dim: number): Tensor {
    const s = this.shape;
    const d = normAxis(dim, s.length + 1);
    return this.reshape([...s.slice(0, d), 1, ...s.slice(d)]);
  }
  /** torch.narrow: `length` entries of `dim` from `start` (negative counts from the end). Keeps the scale. */
  narrow(dim: number, start: number, length: number): Tensor {
    const s = this.shape;
    const d = normAxis(dim, s.length);
    const from = start < 0 ? start + s[d] : start;
    if (!Number.isInteger(from) || !Number.isInteger(length) || from < 0 || length < 0 || from + length > s[d]) {
      throw new Error(`narrow: start ${start} and length ${length} are out of range for dimension ${dim} of size ${s[d]}`);
    }
    return record(
      'narrow',
      [this],
      () => {
        const begin = s.map((_, i) => (i === d ? from : 0));
        const size = s.map((v, i) => (i === d ? length : v));
        return new Tensor(tf.slice(this.logical(), begin, size), null, this.quantScale);
      },
      { dim: d, start: from, length },
    );
  }
  /** torch.select, `x[:, i]`: entry `index` of `dim` (negative counts from the end), that dimension removed. */
  select(dim: number, index: number): Tensor {
    return this.narrow(dim, index, 1).squeeze(dim);
  }
  matmul(o: Tensor): Tensor {
    return record('matmul', [this, o], () => new Tensor(tf.matMul(this.logical(), o.logical())));
  }
  clone(): Tensor {
    return new Tensor(tf.clone(this.raw), this.perm, this.quantScale);
  }
  detach(): Tensor {
    return new Tensor(stopGradient(this.raw), this.perm, this.quantScale);
  }
}

// ---- layout arithmetic ---------------------------------------------------------------------
export function identity(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
export function isIdentity(p: readonly number[]): boolean {
  return p.every((v, i) => v === i);
}
export function inverse(p: readonly number[]): number[] {
  const r = new Array<number>(p.length);
  p.forEach((v, i) => {
    r[v] = i;
  });
  return r;
}
function sameperm(a: readonly number[] | null, b: readonly number[] | null): boolean {
  if (!a || !b) return !a && !b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
/** A transpose that moves only size-1 axes relative to each other is a reshape. */
function movesOnlyUnitAxes(shape: readonly number[], t: readonly number[]): boolean {
  const big = t.filter((i) => shape[i] !== 1);
  return big.every((v, i) => i === 0 || v > big[i - 1]);
}
export function normAxis(a: number, rank: number): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r >= Math.max(rank, 1)) throw new Error(`dimension ${a} is out of range for a ${rank}-d tensor`);
  return r;
}
function inferShape(shape: number[], size: number, from: number[]): number[] {
  const known = shape.filter((v) => v !== -1).reduce((p, q) => p * q, 1);
  const unknown = shape.filter((v) => v === -1).length;
  if (unknown > 1) throw new Error('reshape: only one dimension can be -1');
  const out = shape.map((v) => (v === -1 ? size / known : v));
  if (out.some((v) => !Number.isInteger(v) || v < 0) || out.reduce((p, q) => p * q, 1) !== size) {
    throw new Error(`shape '[${shape.join(', ')}]' is invalid for input of size ${size} (shape [${from.join(', ')}])`);
  }
  return out;
}

/** Physical axes and resulting layout of a reduction over logical dims. */
function reduceLayout(t: Tensor, dims: number[], keepdim: boolean): { axes: number[]; perm: number[] | null } {
  const cur = t.perm ?? identity(t.rank);
  const axes = dims.map((d) => cur[d]);
  if (keepdim) return { axes, perm: t.perm ? [...cur] : null };
  const kept = cur.filter((_, i) => !dims.includes(i));
  const sorted = [...kept].sort((a, b) => a - b);
  return { axes, perm: kept.map((p) => sorted.indexOf(p)) };
}

function reduce(
  t: Tensor,
  dim: number | number[] | undefined,
  keepdim: boolean,
  fn: (x: tf.Tensor, axis: number[], keep: boolean) => tf.Tensor,
): Tensor {
  if (dim === undefined) return new Tensor(fn(t.raw, identity(t.rank), false));
  const dims = (Array.isArray(dim) ? dim : [dim]).map((d) => normAxis(d, t.rank));
  const { axes, perm } = reduceLayout(t, dims, keepdim);
  return new Tensor(fn(t.raw, axes, keepdim), perm);
}

function unary(t: Tensor, fn: (x: tf.Tensor) => tf.Tensor): Tensor {
  return new Tensor(fn(t.raw), t.perm);
}

function binary(a: Tensor, b: Tensor | number, fn: (x: tf.Tensor, y: tf.Tensor | number) => tf.Tensor): Tensor {
  if (typeof b === 'number') return new Tensor(fn(a.raw, b), a.perm);
  if (sameperm(a.perm, b.perm) && a.rank === b.rank) return new Tensor(fn(a.raw, b.raw), a.perm);
  if (b.size === 1 && !b.perm) return new Tensor(fn(a.raw, tf.reshape(b.raw, [])), a.perm);
  if (a.size === 1 && !a.perm) return new Tensor(fn(tf.reshape(a.raw, []), b.raw), b.perm);
  // Different layouts: bring b into a's layout when ranks match, else compute in logical order.
  if (a.rank === b.rank && a.perm) return new Tensor(fn(a.raw, b.physical(a.perm)), a.perm);
  return new Tensor(fn(a.logical(), b.logical()));
}

// ---- fixed-point element-wise ops --------------------------------------------------------
/**
 * Set while a fixed-stage model runs: called for every tensor op a linger op of the fixed stage can
 * take (linger/ops/registry.ts: add and cat of two tensors, mul (tensor or number), sum, sigmoid,
 * tanh, clamp, F.bmm, linger.channelShuffle), in call order, with `attrs` such as mul's number
 * operand, sum's dims, clamp's bounds; undefined computes the op in float.
 */
export type QuantizedOpName = string;
export interface QuantizedOpAttrs {
  scalar?: number;
  dim?: number | number[];
  keepdim?: boolean;
  min?: number | null;
  max?: number | null;
  [k: string]: unknown;
}
export type QuantizedOpHook = (op: QuantizedOpName, args: Tensor[], dim?: number, attrs?: QuantizedOpAttrs) => Tensor | undefined;
let quantizedOpHook: QuantizedOpHook | null = null;
export function withQuantizedOps<T>(hook: QuantizedOpHook, fn: () => T): T {
  const prev = quantizedOpHook;
  quantizedOpHook = hook;
  try {
    return fn();
  } finally {
    quantizedOpHook = prev;
  }
}
export function quantizedOp(op: QuantizedOpName, args: Tensor[], dim?: number, attrs?: QuantizedOpAttrs): Tensor | undefined {
  return quantizedOpHook ? quantizedOpHook(op, args, dim, attrs) : undefined;
}

// ---- op recording (the tracer installs a recorder; otherwise a direct call) ---------------
export type OpRecorder = (op: string, inputs: (Tensor | number)[], output: Tensor, attrs?: Record<string, unknown>) => void;
let recorder: OpRecorder | null = null;
let recordDepth = 0;
/** Runs `body`, then tells the active recorder (if any) about the op; nested ops are not recorded. */
export function record(op: string, inputs: (Tensor | number)[], body: () => Tensor, attrs?: Record<string, unknown>): Tensor {
  if (!recorder) return body();
  recordDepth++;
  let out: Tensor;
  try {
    out = body();
  } finally {
    recordDepth--;
  }
  if (recordDepth === 0) recorder(op, inputs, out, attrs);
  return out;
}
/** Installs a recorder for the duration of `fn` (used by the tracer). */
export function withRecorder<T>(r: OpRecorder, fn: () => T): T {
  const prev = recorder;
  recorder = r;
  try {
    return fn();
  } finally {
    recorder = prev;
  }
}
/** Suspends recording inside a module's own forward (module calls are recorded as one node). */
export function withoutRecording<T>(fn: () => T): T {
  recordDepth++;
  try {
    return fn();
  } finally {
    recordDepth--;
  }
}

// ---- factories ------------------------------------------------------------------------------
type Nested = number | Nested[];
/**
 * Flattens `x`; `keepScale` false drops its quantization (torch.flatten of linger's IQTensor is a
 * plain tensor: the next Int layer quantizes it again, docs/fixed-point.md#conformance-with-linger-111).
 */
export function flattenOf(x: Tensor, startDim: number, endDim: number, keepScale: boolean): Tensor {
  return record('flatten', [x], () => {
    const s = x.shape;
    const a = normAxis(startDim, s.length);
    const b = normAxis(endDim, s.length);
    if (a > b) throw new Error(`flatten: start_dim ${startDim} comes after end_dim ${endDim}`);
    const merged = s.slice(a, b + 1).reduce((p, q) => p * q, 1);
    return new Tensor(tf.reshape(x.logical(), [...s.slice(0, a), merged, ...s.slice(b + 1)]), null, keepScale ? x.quantScale : undefined);
  });
}

function flattenValues(v: Nested | ArrayLike<number>): { values: number[]; shape: number[] } {
  if (typeof v === 'number') return { values: [v], shape: [] };
  if (Array.isArray(v)) {
    if (v.length === 0) return { values: [], shape: [0] };
    const parts = v.map((x) => flattenValues(x));
    const inner = parts[0].shape;
    for (const p of parts) {
      if (p.shape.join() !== inner.join()) throw new Error('tensor(): ragged nested array');
    }
    return { values: parts.flatMap((p) => p.values), shape: [v.length, ...inner] };
  }
  return { values: Array.from(v as ArrayLike<number>), shape: [(v as ArrayLike<number>).length] };
}

/** tensor(values, shape?, dtype?) — values nested arrays or a flat typed array, in logical order. */
export function tensor(values: Nested | ArrayLike<number>, shape?: number[], dtype: DType = 'float32'): Tensor {
  if (ArrayBuffer.isView(values) && shape) {
    return new Tensor(tf.tensor(values as Float32Array | Int32Array, shape, dtype));
  }
  const f = flattenValues(values as Nested);
  const s = shape ?? f.shape;
  const n = s.reduce((p, q) => p * q, 1);
  if (n !== f.values.length) {
    throw new Error(`tensor(): ${f.values.length} values do not fill shape [${s.join(', ')}]`);
  }
  return new Tensor(tf.tensor(f.values, s, dtype));
}
export function zeros(shape: number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(tf.zeros(shape, dtype));
}
export function ones(shape: number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(tf.ones(shape, dtype));
}
export function full(shape: number[], value: number, dtype: DType = 'float32'): Tensor {
  return new Tensor(tf.fill(shape, value, dtype));
}
/** Standard normal values from the engine's seedable generator (manualSeed). */
export function randn(shape: number[]): Tensor {
  const n = shape.reduce((p, q) => p * q, 1);
  return new Tensor(tf.tensor(rng().normalArray(n), shape, 'float32'));
}
/** Uniform values in [low, high) from the engine's seedable generator. */
export function rand(shape: number[], low = 0, high = 1): Tensor {
  const n = shape.reduce((p, q) => p * q, 1);
  return new Tensor(tf.tensor(rng().uniformArray(n, low, high), shape, 'float32'));
}
export function arange(n: number): Tensor {
  return new Tensor(tf.range(0, n, 1, 'int32'));
}
/** Releases every tensor made inside fn except the ones it returns (like tf.tidy). */
export function tidy<T extends Tensor | Tensor[] | number | void>(fn: () => T): T {
  let result: T | undefined;
  tf.tidy(() => {
    result = fn();
    const keep = result instanceof Tensor ? [result.raw] : Array.isArray(result) ? result.map((t) => t.raw) : [];
    return keep as unknown as tf.Tensor[];
  });
  return result as T;
}
