// Constant values of an imported ONNX graph and the ops on them: initializers, Constant nodes and
// the shape arithmetic PyTorch exports around view/reshape (Shape → Gather → Unsqueeze → Concat →
// Reshape). Evaluated in plain JS, at import for what is static and at each forward for what
// depends on the input's shape.

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

function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) { s[i] = acc; acc *= dims[i]; }
  return s;
}
function normAxis(a: number, rank: number, what: string): number {
  const r = a < 0 ? a + rank : a;
  if (!Number.isInteger(r) || r < 0 || r >= Math.max(rank, 1)) throw new Error(`${what}: axis ${a} is out of range for rank ${rank}`);
  return r;
}
function checkSize(n: number, what: string): void {
  if (!Number.isFinite(n) || n > MAX_CONST) throw new Error(`${what}: ${n} values is too large a constant`);
}
function make(dims: number[], dtype: 'float' | 'int', fill: (i: number) => number): ConstValue {
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
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${what}: shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

function broadcastIndex(outDims: number[], inDims: number[]): (i: number) => number {
  const os = strides(outDims), is = strides(inDims);
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

function binary(a: ConstValue, b: ConstValue, f: (x: number, y: number) => number, what: string, intDiv = false): ConstValue {
  const dims = broadcastDims(a.dims, b.dims, what);
  const ia = broadcastIndex(dims, a.dims), ib = broadcastIndex(dims, b.dims);
  const dtype = a.dtype === 'int' && b.dtype === 'int' ? 'int' : 'float';
  return make(dims, dtype, (i) => {
    const v = f(a.data[ia(i)], b.data[ib(i)]);
    // integer Div truncates toward zero (onnxruntime's integer kernels)
    return dtype === 'int' ? (intDiv ? Math.trunc(v) : v) : v;
  });
}

function transpose(v: ConstValue, perm: number[]): ConstValue {
  const r = v.dims.length;
  if (perm.length !== r || new Set(perm).size !== r || perm.some((p) => p < 0 || p >= r)) throw new Error(`Transpose: perm [${perm.join(', ')}] does not fit rank ${r}`);
  const dims = perm.map((p) => v.dims[p]);
  const is = strides(v.dims), os = strides(dims);
  return make(dims, v.dtype, (i) => {
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

/** Ops the evaluator computes when every input is a constant. */
export const CONST_OPS = new Set([
  'Identity', 'Constant', 'Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Cast', 'Slice', 'Add', 'Sub', 'Mul', 'Div', 'Neg',
  'Reshape', 'Transpose', 'ConstantOfShape', 'Range', 'Equal', 'Where', 'Floor', 'Ceil', 'Sqrt', 'Abs', 'Expand', 'Flatten',
]);

export interface ConstNode {
  op: string;
  opset: number;
  what: string;
  attrs: {
    int(name: string, dflt: number): number;
    ints(name: string): number[] | undefined;
    float(name: string, dflt: number): number;
  };
}

/**
 * Evaluates `n` on constant inputs (undefined: an omitted optional input). `Shape` also takes a
 * runtime tensor's dims (passed as `shapeOf`).
 */
export function evalConst(n: ConstNode, ins: (ConstValue | undefined)[], shapeOfInput?: number[]): ConstValue[] {
  const { op, what, attrs, opset } = n;
  const need = (i: number): ConstValue => {
    const v = ins[i];
    if (!v) throw new Error(`${what}: input ${i} is missing`);
    return v;
  };
  switch (op) {
    case 'Identity': return [need(0)];
    case 'Shape': {
      const dims = shapeOfInput ?? need(0).dims;
      const r = dims.length;
      let start = attrs.int('start', 0), end = attrs.int('end', r);
      if (start < 0) start += r;
      if (end < 0) end += r;
      start = Math.max(0, Math.min(r, start));
      end = Math.max(start, Math.min(r, end));
      return [constValue([end - start], 'int', dims.slice(start, end))];
    }
    case 'Gather': {
      const data = need(0), idx = need(1);
      const axis = normAxis(attrs.int('axis', 0), data.dims.length, what);
      const n0 = data.dims[axis];
      const ids = intsOf(idx, `${what} indices`).map((i) => {
        const j = i < 0 ? i + n0 : i;
        if (j < 0 || j >= n0) throw new Error(`${what}: index ${i} is out of range for a dimension of size ${n0}`);
        return j;
      });
      const dims = [...data.dims.slice(0, axis), ...idx.dims, ...data.dims.slice(axis + 1)];
      const outer = sizeOf(data.dims.slice(0, axis)), inner = sizeOf(data.dims.slice(axis + 1));
      const out: number[] = [];
      for (let o = 0; o < outer; o++) for (const j of ids) for (let k = 0; k < inner; k++) out.push(data.data[(o * n0 + j) * inner + k]);
      return [constValue(dims, data.dtype, data.dtype === 'float' ? Float32Array.from(out) : out)];
    }
    case 'Unsqueeze': {
      const x = need(0);
      const axes = opset >= 13 ? intsOf(need(1), `${what} axes`) : attrs.ints('axes') ?? [];
      const r = x.dims.length + axes.length;
      const norm = axes.map((a) => normAxis(a, r, what)).sort((a, b) => a - b);
      const dims = [...x.dims];
      for (const a of norm) dims.splice(a, 0, 1);
      return [constValue(dims, x.dtype, x.data)];
    }
    case 'Squeeze': {
      const x = need(0);
      const given = opset >= 13 ? (ins[1] ? intsOf(ins[1], `${what} axes`) : undefined) : attrs.ints('axes');
      const axes = given ? given.map((a) => normAxis(a, x.dims.length, what)) : x.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      for (const a of axes) if (x.dims[a] !== 1) throw new Error(`${what}: cannot squeeze axis ${a} of size ${x.dims[a]}`);
      return [constValue(x.dims.filter((_, i) => !axes.includes(i)), x.dtype, x.data)];
    }
    case 'Concat': {
      const parts = ins.map((_, i) => need(i));
      if (!parts.length) throw new Error(`${what}: no inputs`);
      const r = parts[0].dims.length;
      const axis = normAxis(attrs.int('axis', 0), r, what);
      for (const p of parts) {
        if (p.dims.length !== r || p.dims.some((d, i) => i !== axis && d !== parts[0].dims[i])) {
          throw new Error(`${what}: shapes [${parts[0].dims.join(', ')}] and [${p.dims.join(', ')}] do not concatenate on axis ${axis}`);
        }
      }
      const dims = [...parts[0].dims];
      dims[axis] = parts.reduce((a, p) => a + p.dims[axis], 0);
      const outer = sizeOf(dims.slice(0, axis));
      const out: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (const p of parts) {
          const chunk = sizeOf(p.dims.slice(axis));
          for (let k = 0; k < chunk; k++) out.push(p.data[o * chunk + k]);
        }
      }
      const dtype = parts.every((p) => p.dtype === 'int') ? 'int' : 'float';
      return [constValue(dims, dtype, dtype === 'float' ? Float32Array.from(out) : out)];
    }
    case 'Cast': {
      const x = need(0);
      const to = attrs.int('to', 1);
      const float = to === 1 || to === 10 || to === 11 || to === 16;
      if (float) return [constValue(x.dims, 'float', Float32Array.from(x.data))];
      if (to === 9) return [constValue(x.dims, 'int', Array.from(x.data, (v) => (v !== 0 ? 1 : 0)))];
      return [constValue(x.dims, 'int', Array.from(x.data, (v) => Math.trunc(v)))];
    }
    case 'Slice': {
      const x = need(0);
      const r = x.dims.length;
      let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
      if (opset >= 10) {
        starts = intsOf(need(1), `${what} starts`);
        ends = intsOf(need(2), `${what} ends`);
        axes = ins[3] ? intsOf(ins[3], `${what} axes`) : undefined;
        steps = ins[4] ? intsOf(ins[4], `${what} steps`) : undefined;
      } else {
        starts = attrs.ints('starts') ?? [];
        ends = attrs.ints('ends') ?? [];
        axes = attrs.ints('axes');
      }
      const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, r, what));
      if (starts.length !== ends.length || ax.length !== starts.length) throw new Error(`${what}: starts, ends and axes differ in length`);
      const lo = x.dims.map(() => 0), step = x.dims.map(() => 1), count = [...x.dims];
      ax.forEach((a, i) => {
        const d = x.dims[a];
        const s = steps?.[i] ?? 1;
        if (s === 0) throw new Error(`${what}: step 0`);
        const clampI = (v: number, min: number, max: number) => Math.max(min, Math.min(max, v));
        let b = starts[i] < 0 ? starts[i] + d : starts[i];
        let e = ends[i] < 0 ? ends[i] + d : ends[i];
        if (s > 0) { b = clampI(b, 0, d); e = clampI(e, 0, d); count[a] = Math.max(0, Math.ceil((e - b) / s)); }
        else { b = clampI(b, -1, d - 1); e = clampI(e, -1, d - 1); count[a] = Math.max(0, Math.ceil((b - e) / -s)); }
        lo[a] = b;
        step[a] = s;
      });
      const is = strides(x.dims), os = strides(count);
      return [make(count, x.dtype, (i) => {
        let j = 0;
        for (let d = 0; d < r; d++) j += (lo[d] + (Math.floor(i / os[d]) % count[d]) * step[d]) * is[d];
        return x.data[j];
      })];
    }
    case 'Add': return [binary(need(0), need(1), (a, b) => a + b, what)];
    case 'Sub': return [binary(need(0), need(1), (a, b) => a - b, what)];
    case 'Mul': return [binary(need(0), need(1), (a, b) => a * b, what)];
    case 'Div': return [binary(need(0), need(1), (a, b) => a / b, what, true)];
    case 'Equal': {
      const r = binary(need(0), need(1), (a, b) => (a === b ? 1 : 0), what);
      return [constValue(r.dims, 'int', Array.from(r.data))];
    }
    case 'Neg': { const x = need(0); return [make(x.dims, x.dtype, (i) => -x.data[i])]; }
    case 'Abs': { const x = need(0); return [make(x.dims, x.dtype, (i) => Math.abs(x.data[i]))]; }
    case 'Floor': { const x = need(0); return [make(x.dims, x.dtype, (i) => Math.floor(x.data[i]))]; }
    case 'Ceil': { const x = need(0); return [make(x.dims, x.dtype, (i) => Math.ceil(x.data[i]))]; }
    case 'Sqrt': { const x = need(0); return [make(x.dims, 'float', (i) => Math.sqrt(x.data[i]))]; }
    case 'Where': {
      const c = need(0), a = need(1), b = need(2);
      const dims = broadcastDims(broadcastDims(c.dims, a.dims, what), b.dims, what);
      const ic = broadcastIndex(dims, c.dims), ia = broadcastIndex(dims, a.dims), ib = broadcastIndex(dims, b.dims);
      return [make(dims, a.dtype === 'int' && b.dtype === 'int' ? 'int' : 'float', (i) => (c.data[ic(i)] ? a.data[ia(i)] : b.data[ib(i)]))];
    }
    case 'Reshape': {
      const x = need(0);
      const shape = opset >= 5 ? intsOf(need(1), `${what} shape`) : attrs.ints('shape') ?? [];
      return [constValue(reshapeTarget(x.dims, shape, attrs.int('allowzero', 0) === 1, what), x.dtype, x.data)];
    }
    case 'Flatten': {
      const x = need(0);
      const axis = attrs.int('axis', 1);
      const a = axis < 0 ? axis + x.dims.length : axis;
      return [constValue([sizeOf(x.dims.slice(0, a)), sizeOf(x.dims.slice(a))], x.dtype, x.data)];
    }
    case 'Transpose': {
      const x = need(0);
      const perm = attrs.ints('perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
      return [transpose(x, perm)];
    }
    case 'ConstantOfShape': {
      const dims = intsOf(need(0), `${what} shape`);
      if (dims.some((d) => d < 0)) throw new Error(`${what}: negative dimension`);
      checkSize(sizeOf(dims), what);
      const fill = ins[1]; // the 'value' attribute, passed as a second input
      const v = fill ? fill.data[0] : 0;
      return [make(dims, fill?.dtype ?? 'float', () => v)];
    }
    case 'Expand': {
      const x = need(0);
      const dims = broadcastDims(x.dims, intsOf(need(1), `${what} shape`), what);
      checkSize(sizeOf(dims), what);
      const ix = broadcastIndex(dims, x.dims);
      return [make(dims, x.dtype, (i) => x.data[ix(i)])];
    }
    case 'Range': {
      const start = scalarOf(need(0), `${what} start`), limit = scalarOf(need(1), `${what} limit`), delta = scalarOf(need(2), `${what} delta`);
      if (delta === 0) throw new Error(`${what}: delta 0`);
      const count = Math.max(0, Math.ceil((limit - start) / delta));
      checkSize(count, what);
      const dtype = need(0).dtype;
      return [make([count], dtype, (i) => start + i * delta)];
    }
    default:
      throw new Error(`${what}: the op cannot be evaluated on constants`);
  }
}
