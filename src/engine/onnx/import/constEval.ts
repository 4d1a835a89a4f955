// Constant values of an imported ONNX graph (initializers, Constant nodes, folded shapes) and the
// plain-JS arithmetic on them that the ops' `fold`s share. PyTorch exports shape arithmetic around
// view/reshape (Shape → Gather → Unsqueeze → Concat → Reshape); each op's own file (ops/<Op>.ts)
// evaluates it, at import for what is static and at each forward for what depends on the input's
// shape (docs/onnx.md, "Import from PyTorch").

/** A constant: row-major values, float (float32) or int (exact JS integers). */
export interface ConstValue {
  kind: 'const';
  dims: number[];
  dtype: 'float' | 'int';
  data: ArrayLike<number>;
}

/** The largest constant the evaluator makes (ConstantOfShape, Expand, Range): 2^24 values. */
const MAX_CONST = 1 << 24;

export function constValue(dims: number[], dtype: 'float' | 'int', data: ArrayLike<number>): ConstValue {
  return { kind: 'const', dims, dtype, data };
}
export function isConst(v: unknown): v is ConstValue {
  return typeof v === 'object' && v !== null && (v as ConstValue).kind === 'const';
}
export function sizeOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
/** The values as plain integers (for shapes, axes, indices). */
export function intsOf(v: ConstValue, what: string): number[] {
  const out = Array.from(v.data);
  if (out.some((x) => !Number.isFinite(x))) throw new Error(`${what} must be finite integers`);
  return out.map((x) => Math.trunc(x));
}
export function scalarOf(v: ConstValue, what: string): number {
  if (v.data.length !== 1) throw new Error(`${what} must be a single value, got shape [${v.dims.join(', ')}]`);
  return v.data[0];
}

export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}
export function normAxis(a: number, rank: number, what: string): number {
  const r = a < 0 ? a + rank : a;
  if (!Number.isInteger(r) || r < 0 || r >= Math.max(rank, 1)) throw new Error(`${what}: axis ${a} is out of range for rank ${rank}`);
  return r;
}
export function checkSize(n: number, what: string): void {
  if (!Number.isFinite(n) || n > MAX_CONST) throw new Error(`${what}: ${n} values is too large a constant`);
}
export function fillConst(dims: number[], dtype: 'float' | 'int', fill: (i: number) => number): ConstValue {
  const n = sizeOf(dims);
  const data = dtype === 'float' ? new Float32Array(n) : new Array<number>(n);
  for (let i = 0; i < n; i++) data[i] = fill(i);
  return constValue(dims, dtype, data);
}

/** numpy broadcasting of two shapes. */
export function broadcastDims(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1,
      y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${what}: shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

export function broadcastIndex(outDims: number[], inDims: number[]): (i: number) => number {
  const os = strides(outDims),
    is = strides(inDims);
  const off = outDims.length - inDims.length;
  return (i) => {
    let j = 0;
    for (let d = 0; d < outDims.length; d++) {
      const c = Math.floor(i / os[d]) % outDims[d];
      const k = d - off;
      if (k >= 0 && inDims[k] !== 1) j += c * is[k];
    }
    return j;
  };
}

export function binary(a: ConstValue, b: ConstValue, f: (x: number, y: number) => number, what: string, intDiv = false): ConstValue {
  const dims = broadcastDims(a.dims, b.dims, what);
  const ia = broadcastIndex(dims, a.dims),
    ib = broadcastIndex(dims, b.dims);
  const dtype = a.dtype === 'int' && b.dtype === 'int' ? 'int' : 'float';
  return fillConst(dims, dtype, (i) => {
    const v = f(a.data[ia(i)], b.data[ib(i)]);
    // integer Div truncates toward zero (onnxruntime's integer kernels)
    return dtype === 'int' ? (intDiv ? Math.trunc(v) : v) : v;
  });
}

export function transpose(v: ConstValue, perm: number[]): ConstValue {
  const r = v.dims.length;
  if (perm.length !== r || new Set(perm).size !== r || perm.some((p) => p < 0 || p >= r))
    throw new Error(`Transpose: perm [${perm.join(', ')}] does not fit rank ${r}`);
  const dims = perm.map((p) => v.dims[p]);
  const is = strides(v.dims),
    os = strides(dims);
  return fillConst(dims, v.dtype, (i) => {
    let j = 0;
    for (let d = 0; d < r; d++) j += (Math.floor(i / os[d]) % dims[d]) * is[perm[d]];
    return v.data[j];
  });
}

/** Reshape target with ONNX's 0 (copy) and −1 (infer) entries resolved. */
export function reshapeTarget(inDims: readonly number[], shape: number[], allowZero: boolean, what: string): number[] {
  const size = sizeOf(inDims);
  const out = shape.map((d, i) => (d === 0 && !allowZero ? (i < inDims.length ? inDims[i] : NaN) : d));
  if (out.some((d) => Number.isNaN(d) || d < -1 || !Number.isInteger(d))) throw new Error(`${what}: invalid shape [${shape.join(', ')}]`);
  const unknown = out.filter((d) => d === -1).length;
  if (unknown > 1) throw new Error(`${what}: more than one -1 in shape [${shape.join(', ')}]`);
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  if (unknown) {
    if (known === 0 || size % known !== 0) throw new Error(`${what}: cannot reshape [${inDims.join(', ')}] to [${shape.join(', ')}]`);
    return out.map((d) => (d === -1 ? size / known : d));
  }
  if (known !== size) throw new Error(`${what}: cannot reshape [${inDims.join(', ')}] (${size} values) to [${out.join(', ')}]`);
  return out;
}

/** Shape's output for input dims `dims`: the [start, end) range of them (opset 15's attributes). */
export function shapeValue(dims: readonly number[], attrs: { int(name: string, dflt: number): number }): ConstValue {
  const r = dims.length;
  let start = attrs.int('start', 0),
    end = attrs.int('end', r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = Math.max(0, Math.min(r, start));
  end = Math.max(start, Math.min(r, end));
  return constValue([end - start], 'int', dims.slice(start, end));
}
