// Export of the functional and tensor ops a forward records (F.conv2d, reshape, permute, sum, …):
// standard ONNX ops at every stage; in the thinker dialect the layout ops keep int8 codes as they
// are. Where this engine version records no attribute (clamp bounds, pow exponents, reduction
// axes), they are read off the traced values, or the export fails naming the op.
import { tf } from '../../backend/tf';
import { explicitPads } from '../../nn/conv';
import { pair } from '../../nn/layout';
import { tensorOp } from '../../linger/ops/registry';
import { identity, inverse, isIdentity, normAxis, Tensor } from '../../tensor';
import type { CapturedCall } from '../capture';
import { DT } from '../proto';
import type { ExportContext } from './context';
import { adaptiveAvgPool, linearNode, logicalValues, tidyValue } from './nodes';
import { ThinkerUnsupportedError, transposeNode } from './thinkerRules';

export function lowerTensorOp(ctx: ExportContext, c: CapturedCall): void {
  const g = ctx.g;
  const op = c.target;
  // an op with a definition of its own (a linger op without a layer, e.g. channel_shuffle)
  const own = tensorOp(op)?.lowerCall;
  if (own) return own(ctx, c);
  const scope = '';
  const inT = c.inputs;
  const x0 = inT[0];
  const f = (i: number) => ctx.floatName(ctx.value(inT[i]), `/${op}`);
  const outT = c.outputs[0];
  const single = (type: string, attrs: Record<string, number | number[]> = {}) =>
    ctx.out(c, { name: g.op(type, [f(0)], `${scope}/${type}`, attrs) });
  const binary: Record<string, string> = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div' };
  const unary: Record<string, string> = {
    neg: 'Neg',
    abs: 'Abs',
    exp: 'Exp',
    log: 'Log',
    sqrt: 'Sqrt',
    relu: 'Relu',
    sigmoid: 'Sigmoid',
    tanh: 'Tanh',
  };
  if (binary[op]) return ctx.out(c, { name: g.op(binary[op], [f(0), f(1)], `/${binary[op]}`) });
  if (op === 'relu' && ctx.mode === 'thinker') {
    const v = ctx.value(x0);
    return ctx.out(c, { name: g.op('Relu', [v.name], '/Relu'), ...(v.int8Scale !== undefined ? { int8Scale: v.int8Scale } : {}) });
  }
  if (unary[op]) return single(unary[op]);
  const xT = x0 as Tensor;
  if ((op === 'relu6' || op === 'clamp') && ctx.mode === 'thinker') {
    throw new ThinkerUnsupportedError(
      'a float clamp is an ONNX Clip, which tpacker cannot pack alone (its ClipAttrs serializer fails) and drops after a conv; ' +
        'use a clamp linger quantizes (iqClamp bounds), or clamp outside the model',
    );
  }
  switch (op) {
    case 'relu6':
      return ctx.out(c, { name: g.op('Clip', [f(0), g.scalar(0), g.scalar(6)], '/Clip') });
    case 'clamp': {
      const { min, max } = clampBounds(c);
      const ins = [f(0), min === null ? '' : g.scalar(min), max === null ? '' : g.scalar(max)];
      while (ins[ins.length - 1] === '') ins.pop();
      return ctx.out(c, { name: g.op('Clip', ins, '/Clip') });
    }
    case 'pow':
      return ctx.out(c, { name: g.op('Pow', [f(0), g.scalar(powExponent(c))], '/Pow') });
    case 'reshape':
    case 'flatten': {
      const v = ctx.value(xT);
      const src = ctx.mode === 'thinker' ? v : { name: f(0) };
      // x.flatten(1): an ONNX Flatten, as linger's (torch's) thinker export writes it
      if (op === 'flatten' && ctx.mode === 'thinker' && xT.rank > 2 && outT.rank === 2 && outT.shape[0] === xT.shape[0]) {
        return ctx.out(c, {
          name: g.op('Flatten', [src.name], '/Flatten', { axis: 1 }),
          ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}),
        });
      }
      // a dimension the model asked to infer (reshape(-1, …), e.g. the batch) stays inferred
      const asked = op === 'reshape' ? (c.attrs?.shape as number[] | undefined) : undefined;
      return ctx.out(c, {
        name: ctx.reshapeNode(src.name, xT.shape, outT.shape, '', asked),
        ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}),
      });
    }
    case 'narrow': {
      const v = ctx.value(xT);
      const src = ctx.mode === 'thinker' ? v : { name: f(0) };
      const a = c.attrs as { dim: number; start: number; length: number };
      const i64 = (what: string, x: number) => g.initializer(what, [1], DT.INT64, [x]);
      const y = g.op('Slice', [src.name, i64('starts', a.start), i64('ends', a.start + a.length), i64('axes', a.dim)], '/Slice');
      return ctx.out(c, { name: y, ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}) });
    }
    case 'permute': {
      const cur = xT.perm ?? identity(xT.rank);
      const inv = inverse(cur);
      const perm = (outT.perm ?? identity(outT.rank)).map((p) => inv[p]);
      const v = ctx.value(xT);
      const src = ctx.mode === 'thinker' ? v : { name: f(0) };
      if (isIdentity(perm)) return ctx.out(c, src);
      const y = transposeNode(ctx, src.name, xT.shape, perm, '');
      return ctx.out(c, { name: y, ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}) });
    }
    case 'matmul':
    case 'bmm':
      return ctx.out(c, { name: g.op('MatMul', [f(0), f(1)], '/MatMul') });
    case 'sum':
    case 'mean':
    case 'max':
    case 'min': {
      const { axes, keep } = reductionAxes(c);
      const type = { sum: 'ReduceSum', mean: 'ReduceMean', max: 'ReduceMax', min: 'ReduceMin' }[op];
      if (axes && axes.length === 0) return ctx.out(c, { name: g.op('Identity', [f(0)], '/Identity') });
      return ctx.out(c, { name: ctx.reduceNode(type, f(0), axes, keep, '') });
    }
    case 'cat': {
      const dim = normAxis(Number(c.attrs?.dim ?? 0), xT.rank);
      return ctx.out(c, {
        name: g.op(
          'Concat',
          inT.map((_, i) => f(i)),
          '/Concat',
          { axis: dim },
        ),
      });
    }
    case 'softmax':
    case 'log_softmax': {
      const dim = normAxis(Number(c.attrs?.dim ?? -1), xT.rank);
      return single(op === 'softmax' ? 'Softmax' : 'LogSoftmax', { axis: dim });
    }
    case 'linear': {
      const [, w, b] = inT as Tensor[];
      const wv = ctx.isProduced(w) ? null : logicalValues(w.raw, w.perm);
      if (wv && (!b || !ctx.isProduced(b))) {
        return ctx.out(c, { name: linearNode(g, f(0), xT.rank, wv, b ? logicalValues(b.raw, b.perm).values : null, '', 'linear') });
      }
      let y = g.op('MatMul', [f(0), g.op('Transpose', [f(1)], '/Transpose', { perm: [1, 0] })], '/MatMul');
      if (b) y = g.op('Add', [y, f(2)], '/Add');
      return ctx.out(c, { name: y });
    }
    case 'conv2d':
    case 'conv_transpose2d': {
      const a = (c.attrs ?? {}) as {
        stride?: number | number[];
        padding?: number | number[] | string;
        dilation?: number | number[];
        groups?: number;
        outputPadding?: number | number[];
      };
      const w = inT[1] as Tensor;
      const [, , kh, kw] = w.shape;
      const k: [number, number] = [kh, kw];
      const d = pair(a.dilation ?? 1, 'dilation');
      const s = pair(a.stride ?? 1, 'stride');
      const ins = inT.map((_, i) => f(i));
      if (op === 'conv2d') {
        const p = a.padding ?? 0;
        const pads = explicitPads(typeof p === 'string' ? (p as 'same' | 'valid') : pair(p, 'padding'), k, d);
        return ctx.out(c, {
          name: g.op('Conv', ins, '/Conv', {
            dilations: d,
            group: a.groups ?? 1,
            kernel_shape: k,
            pads: [pads[0][0], pads[1][0], pads[0][1], pads[1][1]],
            strides: s,
          }),
        });
      }
      const p = pair((a.padding as number | number[]) ?? 0, 'padding');
      return ctx.out(c, {
        name: g.op('ConvTranspose', ins, '/ConvTranspose', {
          dilations: d,
          group: a.groups ?? 1,
          kernel_shape: k,
          pads: [p[0], p[1], p[0], p[1]],
          strides: s,
          output_padding: pair(a.outputPadding ?? 0, 'output_padding'),
        }),
      });
    }
    case 'max_pool2d':
    case 'avg_pool2d':
    case 'adaptive_avg_pool2d': {
      const a = c.attrs as
        | {
            kernelSize?: number | number[];
            stride?: number | number[] | null;
            padding?: number | number[];
            ceilMode?: boolean;
            outputSize?: number | number[];
          }
        | undefined;
      if (op === 'adaptive_avg_pool2d' && a?.outputSize !== undefined) {
        return ctx.out(c, { name: adaptiveAvgPool(g, f(0), xT.shape, pair(a.outputSize, 'output_size'), '') });
      }
      if (!a || a.kernelSize === undefined) {
        throw new Error(
          `F.${op === 'max_pool2d' ? 'maxPool2d' : op === 'avg_pool2d' ? 'avgPool2d' : 'adaptiveAvgPool2d'} records no window attributes in this engine version; use the nn module (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d) in the model`,
        );
      }
      const k = pair(a.kernelSize, 'kernel_size'),
        s = pair(a.stride ?? a.kernelSize, 'stride'),
        p = pair(a.padding ?? 0, 'padding');
      const type = op === 'max_pool2d' ? 'MaxPool' : 'AveragePool';
      return single(type, {
        kernel_shape: k,
        strides: s,
        pads: [p[0], p[1], p[0], p[1]],
        ...(op === 'max_pool2d' ? { ceil_mode: a.ceilMode ? 1 : 0 } : { count_include_pad: 1 }),
      });
    }
    default:
      throw new Error(`no ONNX export for the op '${op}'`);
  }
}

/** Tensor.clamp's bounds: recorded ones, else read off the traced values where they are hit. */
export function clampBounds(c: CapturedCall): { min: number | null; max: number | null } {
  const a = c.attrs as { min?: number | null; max?: number | null } | undefined;
  if (a && ('min' in a || 'max' in a)) return { min: a.min ?? null, max: a.max ?? null };
  const x = (c.inputs[0] as Tensor).dataSync(),
    y = c.outputs[0].dataSync();
  let lo: number | null = null,
    hi: number | null = null;
  for (let i = 0; i < x.length; i++) {
    if (y[i] > x[i]) lo = y[i];
    else if (y[i] < x[i]) hi = y[i];
  }
  if (lo === null || hi === null) {
    throw new Error(
      'this engine version records no clamp bounds and the dummy input does not reach ' +
        `${lo === null && hi === null ? 'either bound' : lo === null ? 'the lower bound' : 'the upper bound'}; use a dummy input that is clamped on both sides, or a normalize layer`,
    );
  }
  return { min: lo, max: hi };
}

/** Tensor.pow's exponent: recorded, else the common exponent that reproduces the traced values. */
function powExponent(c: CapturedCall): number {
  const a = c.attrs as { exponent?: number } | undefined;
  if (a?.exponent !== undefined) return a.exponent;
  const x = (c.inputs[0] as Tensor).dataSync(),
    y = c.outputs[0].dataSync();
  for (const e of [2, 3, 0.5, -1, 4, -0.5, -2, 1, 0]) {
    let ok = true;
    for (let i = 0; i < x.length && ok; i++) {
      const want = Math.pow(x[i], e);
      ok = Number.isNaN(want) ? Number.isNaN(y[i]) : Math.abs(want - y[i]) <= 1e-5 * Math.max(1, Math.abs(want));
    }
    if (ok) return e;
  }
  throw new Error('this engine version records no pow exponent and it is none of 2, 3, 0.5, −1, 4, −0.5, −2');
}

/**
 * The axes of a sum/mean/max/min (this engine version records none): from the shapes, and where
 * two choices of axes fit the shapes, from the traced values.
 */
function reductionAxes(c: CapturedCall): { axes: number[] | null; keep: boolean } {
  const a = c.attrs as { dim?: number | number[]; keepdim?: boolean } | undefined;
  const x = c.inputs[0] as Tensor;
  const inS = x.shape,
    outS = c.outputs[0].shape;
  if (a && a.dim !== undefined) {
    const dims = (Array.isArray(a.dim) ? a.dim : [a.dim]).map((d) => normAxis(d, inS.length));
    return { axes: dims, keep: a.keepdim ?? false };
  }
  if (outS.length === 0) return { axes: null, keep: false };
  if (outS.length === inS.length) {
    // keepdim: reduced axes are size 1 in the output
    const axes = inS.map((_, i) => i).filter((i) => outS[i] === 1 && inS[i] !== 1);
    return { axes, keep: true };
  }
  const drop = inS.length - outS.length;
  const cands: number[][] = [];
  const choose = (start: number, left: number, acc: number[]) => {
    if (left === 0) {
      const kept = inS.filter((_, i) => !acc.includes(i));
      if (kept.join() === outS.join()) cands.push([...acc]);
      return;
    }
    for (let i = start; i < inS.length; i++) choose(i + 1, left - 1, [...acc, i]);
  };
  choose(0, drop, []);
  if (cands.length === 0) throw new Error(`cannot tell which axes reduce [${inS.join(', ')}] to [${outS.join(', ')}]`);
  const distinct = new Map<string, number[]>();
  for (const cand of cands) distinct.set(cand.filter((i) => inS[i] !== 1).join(), cand);
  if (distinct.size === 1) return { axes: cands[0], keep: false };
  const fn = { sum: tf.sum, mean: tf.mean, max: tf.max, min: tf.min }[c.target as 'sum' | 'mean' | 'max' | 'min'];
  const got = c.outputs[0].dataSync();
  const fits = [...distinct.values()].filter((axes) =>
    tidyValue(() => {
      const r = fn(x.logical(), axes, false).dataSync();
      return r.every((v, i) => Math.abs(v - got[i]) <= 1e-6 * Math.max(1, Math.abs(v)));
    }),
  );
  if (fits.length !== 1)
    throw new Error(`cannot tell which axes reduce [${inS.join(', ')}] to [${outS.join(', ')}] (this engine version records none)`);
  return { axes: fits[0], keep: false };
}
