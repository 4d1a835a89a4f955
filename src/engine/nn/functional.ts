// torch.nn.functional, the subset the engine's users need. Each op goes through `record` so the
// tracer sees functional calls between modules.
import { tf } from '../backend/tf';
import { flattenOf, quantizedOp, record, Tensor, identity, normAxis } from '../tensor';
import { conv2dHWIO, explicitPads, convTranspose2dRaw } from './conv';
import { HWIO, pair, Pair } from './layout';
import { linearRaw } from './linear';
import { adaptiveAvgPool2dRaw, avgPool2dRaw, maxPool2dRaw } from './pooling';
import { dropoutRaw, softmaxRaw } from './misc';

export const relu = (x: Tensor): Tensor => x.relu();
export const relu6 = (x: Tensor): Tensor => record('relu6', [x], () => new Tensor(tf.relu6(x.raw), x.perm));
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const tanh = (x: Tensor): Tensor => x.tanh();
export const add = (a: Tensor, b: Tensor | number): Tensor => a.add(b);
export const sub = (a: Tensor, b: Tensor | number): Tensor => a.sub(b);
export const mul = (a: Tensor, b: Tensor | number): Tensor => a.mul(b);
export const div = (a: Tensor, b: Tensor | number): Tensor => a.div(b);
export const reshape = (x: Tensor, shape: number[]): Tensor => x.reshape(shape);
export const view = (x: Tensor, shape: number[]): Tensor => x.reshape(shape);
/** torch.flatten: of a quantized tensor, a plain one (as linger's; Tensor.flatten and nn.Flatten keep the scale) */
export const flatten = (x: Tensor, startDim = 0, endDim = -1): Tensor => flattenOf(x, startDim, endDim, false);
export const permute = (x: Tensor, dims: number[]): Tensor => x.permute(dims);
export const mean = (x: Tensor, dim?: number | number[], keepdim = false): Tensor => x.mean(dim, keepdim);
export const sum = (x: Tensor, dim?: number | number[], keepdim = false): Tensor => x.sum(dim, keepdim);
export const clamp = (x: Tensor, min: number | null, max: number | null): Tensor => x.clamp(min, max);
export const softmax = (x: Tensor, dim: number): Tensor => softmaxRaw(x, dim, false);
export const logSoftmax = (x: Tensor, dim: number): Tensor => softmaxRaw(x, dim, true);
export const dropout = (x: Tensor, p = 0.5, training = true): Tensor => dropoutRaw(x, p, training);

/** torch.cat: along a logical dim; tensors sharing a layout concatenate without a transpose. */
export function cat(xs: Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  return record(
    'cat',
    xs,
    () => {
      const q = quantizedOp('cat', xs, dim);
      if (q) return q;
      const r = xs[0].rank;
      const d = normAxis(dim, r);
      const s0 = xs[0].shape;
      for (const x of xs) {
        const s = x.shape;
        if (s.length !== r || s.some((v, i) => i !== d && v !== s0[i])) {
          throw new Error(`cat: sizes of tensors must match except in dimension ${d}: [${s0.join(', ')}] vs [${s.join(', ')}]`);
        }
      }
      const perm = xs[0].perm;
      if (xs.every((x) => (x.perm ?? identity(r)).join() === (perm ?? identity(r)).join())) {
        return new Tensor(
          tf.concat(
            xs.map((x) => x.raw),
            perm ? perm[d] : d,
          ),
          perm,
        );
      }
      return new Tensor(
        tf.concat(
          xs.map((x) => x.logical()),
          d,
        ),
      );
    },
    { dim },
  );
}

export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return record('linear', bias ? [x, weight, bias] : [x, weight], () =>
    linearRaw(x, weight.physical([1, 0]) as tf.Tensor2D, (bias?.logical() ?? null) as tf.Tensor1D | null),
  );
}

export interface Conv2dFnOptions {
  stride?: number | number[];
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
}

/** torch.nn.functional.conv2d (never fused by traceLayers: it is not a module). */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dFnOptions = {}): Tensor {
  return record(
    'conv2d',
    bias ? [x, weight, bias] : [x, weight],
    () => {
      const [, , kh, kw] = weight.shape;
      const k: Pair = [kh, kw];
      const d = pair(opts.dilation ?? 1, 'dilation');
      const p = opts.padding ?? 0;
      const pads = explicitPads(typeof p === 'string' ? p : pair(p, 'padding'), k, d);
      return conv2dHWIO(
        x,
        weight.physical(HWIO) as tf.Tensor4D,
        bias?.logical() ?? null,
        { stride: pair(opts.stride ?? 1, 'stride'), dilation: d, pads },
        opts.groups ?? 1,
      );
    },
    { ...opts },
  );
}

export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: {
    stride?: number | number[];
    padding?: number | number[];
    outputPadding?: number | number[];
    groups?: number;
    dilation?: number | number[];
  } = {},
): Tensor {
  return record(
    'conv_transpose2d',
    bias ? [x, weight, bias] : [x, weight],
    () => {
      const [, , kh, kw] = weight.shape;
      return convTranspose2dRaw(
        x,
        weight.logical(),
        bias?.logical() ?? null,
        {
          kernelSize: [kh, kw],
          stride: pair(opts.stride ?? 1, 'stride'),
          padding: pair(opts.padding ?? 0, 'padding'),
          dilation: pair(opts.dilation ?? 1, 'dilation'),
          outputPadding: pair(opts.outputPadding ?? 0, 'output_padding'),
        },
        opts.groups ?? 1,
      );
    },
    { ...opts },
  );
}

export function maxPool2d(
  x: Tensor,
  kernelSize: number | [number, number],
  stride?: number | [number, number] | null,
  padding: number | [number, number] = 0,
  ceilMode = false,
): Tensor {
  return record(
    'max_pool2d',
    [x],
    () => maxPool2dRaw(x, null, pair(kernelSize, 'kernel_size'), pair(stride ?? kernelSize, 'stride'), pair(padding, 'padding'), ceilMode),
    { kernelSize, stride: stride ?? kernelSize, padding, ceilMode },
  );
}
export function avgPool2d(
  x: Tensor,
  kernelSize: number | [number, number],
  stride?: number | [number, number] | null,
  padding: number | [number, number] = 0,
): Tensor {
  return record(
    'avg_pool2d',
    [x],
    () => avgPool2dRaw(x, null, pair(kernelSize, 'kernel_size'), pair(stride ?? kernelSize, 'stride'), pair(padding, 'padding')),
    { kernelSize, stride: stride ?? kernelSize, padding },
  );
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  return record('adaptive_avg_pool2d', [x], () => adaptiveAvgPool2dRaw(x, pair(outputSize, 'output_size')), { outputSize });
}

export interface CrossEntropyOptions {
  reduction?: 'mean' | 'sum' | 'none';
  labelSmoothing?: number;
}

/**
 * torch.nn.functional.cross_entropy on logits [N, C] with int class indices [N] (or float class
 * probabilities [N, C]); mean over the batch by default.
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const reduction = opts.reduction ?? 'mean';
  const eps = opts.labelSmoothing ?? 0;
  return record('cross_entropy', [input, target], () => {
    if (input.rank !== 2) throw new Error(`crossEntropy: expected logits [N, C], got [${input.shape.join(', ')}]`);
    const [n, c] = input.shape;
    const logp = softmaxRaw(input, 1, true).logical();
    let probs: tf.Tensor;
    if (target.dtype === 'int32') {
      if (target.rank !== 1 || target.shape[0] !== n) {
        throw new Error(`crossEntropy: expected ${n} class indices, got target shape [${target.shape.join(', ')}]`);
      }
      probs = tf.oneHot(target.logical() as tf.Tensor1D, c);
    } else {
      if (target.shape.join() !== input.shape.join()) {
        throw new Error(`crossEntropy: float targets must have the logits' shape [${n}, ${c}], got [${target.shape.join(', ')}]`);
      }
      probs = target.logical();
    }
    if (eps > 0) probs = tf.add(tf.mul(probs, 1 - eps), eps / c);
    const perSample = tf.neg(tf.sum(tf.mul(probs, logp), 1));
    const out = reduction === 'none' ? perSample : reduction === 'sum' ? tf.sum(perSample) : tf.mean(perSample);
    return new Tensor(out);
  });
}

export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: 'mean' | 'sum' | 'none' } = {}): Tensor {
  return record('mse_loss', [input, target], () => {
    const d = tf.sub(input.logical(), target.logical());
    const sq = tf.mul(d, d);
    const r = opts.reduction ?? 'mean';
    return new Tensor(r === 'none' ? sq : r === 'sum' ? tf.sum(sq) : tf.mean(sq));
  });
}

/**
 * torch.bmm: [b, n, m] × [b, m, p] → [b, n, p]. Recorded as 'bmm' (not matmul): the fixed stage
 * can hand it to a BmmInt layer (linger.init with { bmm: true }).
 */
export function bmm(a: Tensor, b: Tensor): Tensor {
  const [sa, sb] = [a.shape, b.shape];
  if (sa.length !== 3 || sb.length !== 3 || sa[0] !== sb[0] || sa[2] !== sb[1]) {
    throw new Error(`bmm: expected [b, n, m] and [b, m, p], got [${sa.join(', ')}] and [${sb.join(', ')}]`);
  }
  return record('bmm', [a, b], () => quantizedOp('bmm', [a, b]) ?? new Tensor(tf.matMul(a.logical(), b.logical())));
}
