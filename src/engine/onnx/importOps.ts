// ONNX import (SPEC §7), the runtime side: what one graph node computes on runtime values, as a
// registry of one small converter per op type. Shape arithmetic on constants goes through
// constEval; every other node runs the engine's tensor ops. import.ts plans the graph and calls
// `execOp` for the nodes that are neither layers nor module ops.
import { tf } from '../backend/tf';
import * as F from '../nn/functional';
import { Tensor, tensor } from '../tensor';
import {
  CONST_OPS, ConstNode, ConstValue, constValue, evalConst, intsOf, isConst, reshapeTarget, scalarOf, sizeOf,
} from './constEval';
import { Attrs, DT_NAMES } from './proto';

/** A value while the graph runs: a tensor, or a constant (shapes, initializers, folded values). */
export type RtValue = Tensor | ConstValue;

export interface NodeInfo {
  index: number;
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
  /** for errors: node 'name' (Op) */
  what: string;
  /** the PyTorch module path its name encodes (null: no scope in the name) */
  scope: string | null;
}

// ---- constants as tensors ----------------------------------------------------------------------

const STATIC_TENSORS = new WeakMap<ConstValue, Tensor>();
/** A constant as an engine tensor (import-time constants are made once and kept). */
export function constTensor(v: ConstValue): Tensor {
  const cached = STATIC_TENSORS.get(v);
  if (cached && !cached.isDisposed) return cached;
  const t = tensor(Float32Array.from(v.data), v.dims.length ? v.dims : [], 'float32');
  return t;
}
export function keepConstTensor(v: ConstValue): void {
  if (STATIC_TENSORS.has(v)) return;
  const t = tensor(Float32Array.from(v.data), v.dims.length ? v.dims : [], 'float32');
  tf.keep(t.raw);
  STATIC_TENSORS.set(v, t);
}

export const asTensor = (v: RtValue | undefined, what: string): Tensor => {
  if (v === undefined) throw new Error(`${what}: an input is missing`);
  return isConst(v) ? constTensor(v) : v;
};
const asConst = (v: RtValue | undefined, what: string): ConstValue => {
  if (v === undefined || !isConst(v)) throw new Error(`${what} must be a constant (it depends on the input)`);
  return v;
};

// ---- the registry ------------------------------------------------------------------------------

/** What a converter sees: the node, its input values (undefined: an omitted optional input), the opset. */
export interface OpCall {
  n: NodeInfo;
  ins: (RtValue | undefined)[];
  opset: number;
  /** the node as constEval takes it */
  cnode: ConstNode;
  /** input 0 as a tensor */
  x(): Tensor;
  /** an operand of a binary op with `other`: a scalar constant as a number, else a tensor */
  operand(v: RtValue | undefined, other: Tensor): Tensor | number;
}

/** One op's semantics on runtime values; returns the node's outputs in order. */
export type Converter = (c: OpCall) => RtValue[];

const CONVERTERS = new Map<string, Converter>();
function def(ops: string[], fn: Converter): void {
  for (const op of ops) CONVERTERS.set(op, fn);
}

/** One node on runtime values: shape arithmetic on constants, everything else on tensors. */
export function execOp(n: NodeInfo, ins: (RtValue | undefined)[], opset: number): RtValue[] {
  const { op, what, attrs } = n;
  const cnode: ConstNode = { op, opset, what, attrs };
  if (op === 'Shape' && ins[0] && !isConst(ins[0])) return evalConst(cnode, [], (ins[0] as Tensor).shape);
  if (CONST_OPS.has(op) && ins.every((v) => v === undefined || isConst(v))) return evalConst(cnode, ins as (ConstValue | undefined)[]);
  const fn = CONVERTERS.get(op);
  if (!fn) {
    if (CONST_OPS.has(op)) throw new Error(`${what}: ${op} on a computed tensor is not supported (only on shapes and constants)`);
    throw new Error(`${what}: unsupported op '${op}'`);
  }
  return fn({
    n, ins, opset, cnode,
    x: () => asTensor(ins[0], what),
    operand: (v, other) => {
      if (v === undefined) throw new Error(`${what}: an input is missing`);
      if (isConst(v) && v.data.length === 1 && v.dims.length <= other.rank) return v.data[0];
      return asTensor(v, what);
    },
  });
}

// ---- converters ----------------------------------------------------------------------------------

def(['Identity', 'Dropout'], ({ n, ins }) => {
  if (n.op === 'Dropout' && n.outputs[1]) throw new Error(`${n.what}: the dropout mask output is not supported`);
  return [ins[0]!];
});

def(['Add', 'Sub', 'Mul', 'Div'], ({ n, ins, operand }) => {
  const a = ins[0], b = ins[1];
  const method = n.op.toLowerCase() as 'add' | 'sub' | 'mul' | 'div';
  if (a !== undefined && !isConst(a)) return [a[method](operand(b, a))];
  const bt = asTensor(b, n.what);
  const at = asTensor(a, n.what);
  return [at[method](bt)];
});

const UNARY: Record<string, 'relu' | 'sigmoid' | 'tanh' | 'exp' | 'log' | 'sqrt' | 'neg' | 'abs'> = {
  Relu: 'relu', Sigmoid: 'sigmoid', Tanh: 'tanh', Exp: 'exp', Log: 'log', Sqrt: 'sqrt', Neg: 'neg', Abs: 'abs',
};
for (const [op, method] of Object.entries(UNARY)) def([op], ({ x }) => [x()[method]()]);

def(['Pow'], ({ n, ins, x }) => [x().pow(scalarOf(asConst(ins[1], `${n.what} exponent`), `${n.what} exponent`))]);

def(['Clip'], ({ n, ins, opset, x }) => {
  const { min, max } = clipBounds(n, ins, opset);
  return [x().clamp(min, max)];
});

def(['MatMul'], ({ n, ins, x }) => [x().matmul(asTensor(ins[1], n.what))]);

def(['Gemm'], ({ n, ins, x }) => {
  const { attrs, what } = n;
  const alpha = attrs.float('alpha', 1), beta = attrs.float('beta', 1);
  let a = x();
  let b = asTensor(ins[1], what);
  if (attrs.int('transA', 0)) a = a.transpose(0, 1);
  if (attrs.int('transB', 0)) b = b.transpose(0, 1);
  let y = a.matmul(b);
  if (alpha !== 1) y = y.mul(alpha);
  if (ins[2] !== undefined) y = y.add(beta === 1 ? asTensor(ins[2], what) : asTensor(ins[2], what).mul(beta));
  return [y];
});

def(['Concat'], ({ n, ins, opset }) => {
  const ts = ins.map((v) => asTensor(v, n.what));
  return [F.cat(ts, n.attrs.int('axis', opset >= 4 ? 0 : 1))];
});

def(['Flatten'], ({ n, x }) => {
  const t = x();
  const r = t.rank;
  let axis = n.attrs.int('axis', 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r) throw new Error(`${n.what}: axis ${n.attrs.int('axis', 1)} is out of range for rank ${r}`);
  if (axis === 1 && r >= 2) return [t.flatten(1)];
  const s = t.shape;
  return [t.reshape([sizeOf(s.slice(0, axis)), sizeOf(s.slice(axis))])];
});

def(['Reshape'], ({ n, ins, x }) => {
  const t = x();
  const shape = intsOf(asConst(ins[1], `${n.what} shape`), `${n.what} shape`);
  return [t.reshape(reshapeTarget(t.shape, shape, n.attrs.int('allowzero', 0) === 1, n.what))];
});

def(['Transpose'], ({ n, x }) => {
  const t = x();
  const perm = n.attrs.ints('perm') ?? t.shape.map((_, i) => t.rank - 1 - i);
  return [t.permute(perm)];
});

def(['Unsqueeze', 'Squeeze'], ({ n, ins, cnode, x }) => {
  const t = x();
  const shape = evalConst(cnode, [constValue(t.shape, 'int', new Array(0)), ...ins.slice(1).map((v) => (v === undefined ? undefined : asConst(v, `${n.what} axes`)))])[0].dims;
  return [t.reshape(shape)];
});

def(['Softmax', 'LogSoftmax'], ({ n, opset, x }) => {
  const t = x();
  const r = t.rank;
  let axis = n.attrs.int('axis', opset >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) throw new Error(`${n.what}: axis out of range for rank ${r}`);
  const fn = n.op === 'Softmax' ? F.softmax : F.logSoftmax;
  if (opset >= 13 || axis === r - 1) return [fn(t, axis)];
  // before opset 13 the op works on the input flattened to 2-d at `axis`
  const s = t.shape;
  return [fn(t.reshape([sizeOf(s.slice(0, axis)), sizeOf(s.slice(axis))]), 1).reshape(s)];
});

def(['MaxPool', 'AveragePool'], ({ n, x }) => {
  const p = poolGeometry(n, 0);
  const t = x();
  return [n.op === 'MaxPool' ? F.maxPool2d(t, p.kernel, p.stride, p.padding, p.ceil) : F.avgPool2d(t, p.kernel, p.stride, p.padding)];
});

def(['GlobalAveragePool'], ({ n, x }) => {
  const t = x();
  if (t.rank !== 4) throw new Error(`${n.what}: only 4-d (NCHW) inputs are supported, got rank ${t.rank}`);
  return [F.adaptiveAvgPool2d(t, 1)];
});

def(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin'], ({ n, ins, opset, x }) => {
  const { op, what, attrs } = n;
  const t = x();
  const axesIn = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
  const axes = axesIn ? (ins[1] ? intsOf(asConst(ins[1], `${what} axes`), `${what} axes`) : undefined) : attrs.ints('axes');
  const keep = attrs.int('keepdims', 1) === 1;
  const dims = axes && axes.length ? axes : t.shape.map((_, i) => i);
  const m = { ReduceMean: 'mean', ReduceSum: 'sum', ReduceMax: 'max', ReduceMin: 'min' }[op] as 'mean' | 'sum' | 'max' | 'min';
  return [t[m](dims, keep)];
});

def(['Cast'], ({ n, x }) => {
  const to = n.attrs.int('to', 1);
  if (to !== 1 && to !== 11 && to !== 10) throw new Error(`${n.what}: casting a tensor to ${DT_NAMES[to] ?? to} is not supported (float models only)`);
  return [x()];
});

/** Gather with constant indices on a computed tensor (`h[-1]`, `y[:, -1]`). */
def(['Gather'], ({ n, ins, x }) => {
  const t = x();
  const idx = asConst(ins[1], `${n.what} indices`);
  const r = t.rank;
  let axis = n.attrs.int('axis', 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) throw new Error(`${n.what}: axis ${n.attrs.int('axis', 0)} is out of range for rank ${r}`);
  const d = t.shape[axis];
  const ids = intsOf(idx, `${n.what} indices`).map((i) => {
    const j = i < 0 ? i + d : i;
    if (j < 0 || j >= d) throw new Error(`${n.what}: index ${i} is out of range for a dimension of size ${d}`);
    return j;
  });
  // a single index (x[:, -1]) is a recorded select, which traces and exports
  if (idx.dims.length === 0) return [t.select(axis, ids[0])];
  const s = t.shape;
  const g = tf.gather(t.logical(), tf.tensor1d(ids, 'int32'), axis);
  return [new Tensor(tf.reshape(g, [...s.slice(0, axis), ...idx.dims, ...s.slice(axis + 1)]))];
});

/** Slice with constant starts/ends/axes and positive steps on a computed tensor. */
def(['Slice'], ({ n, ins, opset, x }) => {
  const t = x();
  const { what, attrs } = n;
  const s = t.shape, r = s.length;
  const ints = (i: number, label: string) => (ins[i] === undefined ? undefined : intsOf(asConst(ins[i], `${what} ${label}`), `${what} ${label}`));
  const starts = opset >= 10 ? ints(1, 'starts') ?? [] : attrs.ints('starts') ?? [];
  const ends = opset >= 10 ? ints(2, 'ends') ?? [] : attrs.ints('ends') ?? [];
  const axes = (opset >= 10 ? ints(3, 'axes') : attrs.ints('axes')) ?? starts.map((_, i) => i);
  const steps = (opset >= 10 ? ints(4, 'steps') : undefined) ?? starts.map(() => 1);
  if (starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length) throw new Error(`${what}: starts, ends, axes and steps differ in length`);
  const begin = s.map(() => 0), end = [...s], stride = s.map(() => 1);
  axes.forEach((a0, i) => {
    const a = a0 < 0 ? a0 + r : a0;
    if (a < 0 || a >= r) throw new Error(`${what}: axis ${a0} is out of range for rank ${r}`);
    if (steps[i] < 1) throw new Error(`${what}: slicing a computed tensor with step ${steps[i]} is not supported`);
    const d = s[a];
    const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
    begin[a] = clamp(starts[i]);
    end[a] = Math.max(begin[a], clamp(ends[i]));
    stride[a] = steps[i];
  });
  // unit steps are recorded narrows, which trace and export
  if (stride.every((v) => v === 1)) return [begin.reduce((v, b, a) => (b === 0 && end[a] === s[a] ? v : v.narrow(a, b, end[a] - b)), t)];
  return [new Tensor(tf.stridedSlice(t.logical(), begin, end, stride))];
});

// ---- helpers shared with the importer --------------------------------------------------------------

function clipBounds(n: NodeInfo, ins: (RtValue | undefined)[], opset: number): { min: number | null; max: number | null } {
  if (opset < 11) {
    const min = n.attrs.has('min') ? n.attrs.float('min', 0) : null;
    const max = n.attrs.has('max') ? n.attrs.float('max', 0) : null;
    return { min, max };
  }
  const b = (i: number) => (ins[i] === undefined ? null : scalarOf(asConst(ins[i], `${n.what} bound`), `${n.what} bound`));
  return { min: b(1), max: b(2) };
}

export interface PoolGeometry { kernel: [number, number]; stride: [number, number]; padding: [number, number]; ceil: boolean }

/** 2-d pooling attributes, with `extraPad` from an absorbed Pad; symmetric padding only. */
export function poolGeometry(n: NodeInfo, extraPad: number | [number, number]): PoolGeometry {
  const { attrs, what } = n;
  const autoPad = attrs.string('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new Error(`${what}: auto_pad ${autoPad} is not supported`);
  const k = attrs.ints('kernel_shape');
  if (!k || k.length !== 2) throw new Error(`${what}: only 2-d pooling is supported (kernel_shape ${JSON.stringify(k)})`);
  const s = attrs.ints('strides') ?? [1, 1];
  const pads = autoPad === 'VALID' ? [0, 0, 0, 0] : attrs.ints('pads') ?? [0, 0, 0, 0];
  const d = attrs.ints('dilations') ?? [1, 1];
  if (d.some((v) => v !== 1)) throw new Error(`${what}: dilated pooling is not supported`);
  if (s.length !== 2 || pads.length !== 4) throw new Error(`${what}: malformed strides or pads`);
  if (pads[0] !== pads[2] || pads[1] !== pads[3]) throw new Error(`${what}: asymmetric padding [${pads.join(', ')}] is not supported`);
  checkGeometry(what, [...k, ...s], 1);
  checkGeometry(what, pads, 0);
  const extra = Array.isArray(extraPad) ? extraPad : [extraPad, extraPad];
  if (n.op === 'AveragePool' && (pads[0] || pads[1]) && n.attrs.int('count_include_pad', 0) !== 1) {
    throw new Error(`${what}: average pooling that excludes the padding from the count is not supported (PyTorch's default count_include_pad=True is)`);
  }
  if (n.op === 'AveragePool' && n.attrs.int('ceil_mode', 0)) throw new Error(`${what}: ceil_mode average pooling is not supported`);
  return { kernel: [k[0], k[1]], stride: [s[0], s[1]], padding: [pads[0] + extra[0], pads[1] + extra[1]], ceil: n.attrs.int('ceil_mode', 0) === 1 };
}

/** Kernel sizes, strides, dilations and pads: integers in a range an engine layer can hold. */
export function checkGeometry(what: string, vals: number[], min: number): void {
  for (const v of vals) {
    if (!Number.isInteger(v) || v < min || v > 4096) throw new Error(`${what}: geometry value ${v} is out of range`);
  }
}
