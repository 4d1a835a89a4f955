// The conv and linear Int layers' shared forward (docs/fixed-point.md): training runs fake
// quantization with straight-through gradients; eval computes what an integer chip with 32-bit
// accumulators computes, exactly. Conv2dInt, Conv1dInt, ConvTranspose2dInt and LinearInt (their
// own folders) supply the op, the reduction's shape and the BN fold of their weight layout.
import { tf } from '../../../backend/tf';
import { ConvTranspose2d } from '../../../nn/conv';
import { withoutInit } from '../../../nn/init';
import { Module, ModuleError, Parameter } from '../../../nn/module';
import { EXACT, fakeQuant, floorLog2, maxAbs, quantizeCodes, requantize, trainScale, updatedRunning } from '../../../quant/qvalue';
import { Stage } from '../../../state/stateDict';
import { Tensor } from '../../../tensor';
import { NormalizeConvBNBase } from '../../convbn';
import { clampSym } from '../../normalize';
import {
  applyOrigin,
  inputScale,
  IntLayer,
  IntOrigin,
  outputScale,
  quantizedInput,
  readBuf,
  takeParams,
  writeBuf,
  writeExportScale,
} from '../base';

/**
 * A conv or linear Int layer. Training: y = op(fq(x), fq(W)) + fq(b) (bias at s_x·s_w, 32 bit),
 * clampData, then fq(y) at the output scale. Eval: int accumulate of q_x·q_w + q_b, then
 * requantize by shifting (exact; reductions split so float sums stay below 2^24).
 */
export function weightedIntForward(m: Module & IntLayer & WeightedOps, x: Tensor): Tensor {
  m.checkInput(x);
  const sx = inputScale(m, x);
  const xq = new Tensor(quantizedInput(m, x, sx), x.perm);
  const w = clampSym(m.weight.raw, m.normalizeWeight);
  const b = m.bias ? clampSym(m.bias.raw, m.normalizeBias) : null;
  const sw = trainScale(maxAbs(w), m.parameterBits);
  // linger leaves scale_x/scale_w/scale_o alone here: only a carried input scale and an export write them
  if (m.training) {
    writeBuf(m, 'running_w', updatedRunning(readBuf(m, 'running_w'), sw, m.parameterBits));
    const wq = fakeQuant(w, sw, m.parameterBits, false);
    const bq = b && fakeQuant(b, sx * sw, 32, false);
    const yt = m.applyWith(xq, wq, bq);
    const layout = yt.perm;
    const y = clampSym(yt.raw, m.normalizeData);
    const so = outputScale(m, y);
    // linger's backward passes the output quantization straight through (only clamp_data masks)
    return new Tensor(fakeQuant(y, so, m.outBits, false), layout, so);
  }
  // eval: integers all the way; no clamp_data (linger clamps only in training)
  const so = outputScale(m, null);
  writeExportScale(m, 'scale_w', sw);
  const qx = new Tensor(tf.round(tf.mul(xq.raw, sx)), xq.perm);
  const qw = quantizeCodes(w, sw, m.parameterBits);
  const qb = b && tf.cast(tf.floor(tf.add(tf.mul(b, sx * sw), 0.5)), 'int32');
  const exact = exactAccumulate(m, qx, qw);
  const perm = exact.perm;
  let acc = exact.acc;
  // the accumulator is channels-last: the 1-d bias broadcasts (wasm adds [C] far faster than [1,1,1,C])
  if (qb) acc = tf.add(acc, qb);
  const k = floorLog2(so) - floorLog2(sx) - floorLog2(sw);
  const q = requantize(acc, k, m.outBits);
  return new Tensor(tf.div(tf.cast(q, 'float32'), so), perm, so);
}

/** What exactAccumulate needs from a layer: its op, and how to split the reduction. */
export interface WeightedOps {
  weight: Parameter;
  bias: Parameter | null;
  checkInput(x: Tensor): void;
  /** the layer's op with a physical-layout weight and bias */
  applyWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor;
  /** input channels of the reduction, their axis in the physical weight, and groups */
  reduction(): { inputs: number; weightAxis: number; groups: number };
  /** the input restricted to input channels [c0, c1) */
  sliceInput(x: Tensor, c0: number, c1: number): Tensor;
}

/**
 * Σ q_x·q_w as int32, exactly: float32 sums of int products are exact while every partial sum
 * stays below 2^24, bounded per output by 128·Σ|q_w|. Input channels are grouped greedily into
 * chunks under that bound; each chunk's float result is exact and the chunks add in int32.
 */
function exactAccumulate(m: Module & WeightedOps, qx: Tensor, qw: tf.Tensor): { acc: tf.Tensor; perm: readonly number[] | null } {
  const { inputs, weightAxis, groups } = m.reduction();
  // per input channel: the largest Σ|q_w| it contributes to any one output
  const axes = Array.from({ length: qw.rank }, (_, i) => i).filter((a) => a !== weightAxis);
  const perIn = tf.tidy(() => {
    const moved = tf.transpose(tf.abs(qw), [weightAxis, ...axes]);
    const outAxis = m instanceof ConvTranspose2d ? 1 : moved.rank - 1; // outputs: dim 1 for [in, out/g, k, k]
    const sumAxes = Array.from({ length: moved.rank }, (_, i) => i).filter((a) => a !== 0 && a !== outAxis);
    return tf.max(sumAxes.length ? tf.sum(moved, sumAxes) : moved, 1).dataSync() as Float32Array;
  });
  const chunks: [number, number][] = [];
  let start = 0,
    sum = 0;
  for (let c = 0; c < inputs; c++) {
    const v = 128 * perIn[c];
    if (c > start && sum + v >= EXACT) {
      chunks.push([start, c]);
      start = c;
      sum = 0;
    }
    sum += v;
  }
  chunks.push([start, inputs]);
  if (chunks.length === 1) {
    const y = m.applyWith(qx, qw, null);
    return { acc: tf.cast(tf.round(y.raw), 'int32'), perm: y.perm };
  }
  if (groups > 1) {
    throw new ModuleError(
      m,
      `a grouped layer whose accumulator can pass 2^24 (${chunks.length} chunks needed) is not supported for exact eval yet`,
    );
  }
  let acc: tf.Tensor | null = null;
  let perm: readonly number[] | null = null;
  for (const [c0, c1] of chunks) {
    const begin = qw.shape.map((_, i) => (i === weightAxis ? c0 : 0));
    const size = qw.shape.map((s, i) => (i === weightAxis ? c1 - c0 : s));
    const part = m.applyWith(m.sliceInput(qx, c0, c1), tf.slice(qw, begin, size), null);
    perm = part.perm;
    const p = tf.cast(tf.round(part.raw), 'int32');
    acc = acc ? tf.add(acc, p) : p;
  }
  return { acc: acc!, perm };
}

/** The input restricted to channels [c0, c1) (conv layers: logical dim 1). */
export function sliceChannels(x: Tensor, c0: number, c1: number): Tensor {
  const axis = x.perm ? x.perm[1] : 1;
  const begin = x.raw.shape.map((_, i) => (i === axis ? c0 : 0));
  const size = x.raw.shape.map((s, i) => (i === axis ? c1 - c0 : s));
  return new Tensor(tf.slice(x.raw, begin, size), x.perm);
}

/**
 * Moves a float/traced dict's conv + BN entries into this Int layer's folded weight and bias:
 * W' = clampW(W·s), b' = clampB((b − μ)·s + β), s = γ/√(var + ε) with the running statistics.
 * `scaleRows` applies s per output channel of a logical-order weight.
 */
export function migrateFolded(
  m: Module & IntLayer & { fold?: IntOrigin['fold'] },
  sd: Map<string, Tensor>,
  prefix: string,
  from: Stage,
  scaleRows: (w: tf.Tensor, s: tf.Tensor) => tf.Tensor,
): void {
  if (from === 'fixed' || !m.fold) return;
  const { path, bnPath, eps } = m.fold;
  let convKey: string, bnKey: string;
  if (from === 'traced') {
    convKey = `${prefix}conv.`;
    bnKey = `${prefix}bn.`;
  } else {
    const own = path + '.';
    const root = prefix.endsWith(own) ? prefix.slice(0, prefix.length - own.length) : '';
    convKey = prefix;
    bnKey = `${root}${bnPath}.`;
  }
  const get = (k: string) => sd.get(k);
  const W = get(`${convKey}weight`),
    g = get(`${bnKey}weight`),
    beta = get(`${bnKey}bias`),
    rm = get(`${bnKey}running_mean`),
    rv = get(`${bnKey}running_var`);
  if (!W || !g || !beta || !rm || !rv) return; // leave the keys for the strict check to report
  const b = get(`${convKey}bias`);
  const [w2, b2] = tf.tidy(() => {
    const s = tf.mul(g.logical(), tf.rsqrt(tf.add(rv.logical(), eps)));
    const wf = clampSym(scaleRows(W.logical(), s), m.normalizeWeight);
    const b0 = b ? tf.sub(b.logical(), rm.logical()) : tf.neg(rm.logical());
    const bf = clampSym(tf.add(tf.mul(b0, s), beta.logical()), m.normalizeBias);
    return [wf, bf];
  });
  for (const k of ['weight', 'bias']) sd.delete(`${convKey}${k}`);
  for (const k of ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']) sd.delete(`${bnKey}${k}`);
  sd.set(`${prefix}weight`, new Tensor(w2));
  sd.set(`${prefix}bias`, new Tensor(b2));
}
export const scaleDim0 = (w: tf.Tensor, s: tf.Tensor) => tf.mul(w, tf.reshape(s, [s.shape[0], ...Array(w.rank - 1).fill(1)]));

/** The geometry a conv Int layer is built with: the float conv's, with a bias when a BN was folded in. */
type ConvLike = {
  inChannels: number;
  outChannels: number;
  kernelSize: unknown;
  stride: unknown;
  padding: unknown;
  dilation: unknown;
  groups: number;
  bias: unknown;
};

/**
 * A conv Int layer from a float conv (its Parameters carried over) or, with `weights`, from folded
 * values; `make` is the Int class's constructor call with the conv's geometry.
 */
export function convIntFrom<C extends ConvLike, M extends Module & IntLayer & { fold?: IntOrigin['fold'] } & { addQuantBuffers(): void }>(
  make: (c: C, bias: boolean) => M,
  c: C,
  o: IntOrigin,
  weights?: { w: tf.Tensor; b: tf.Tensor },
): M {
  const m = withoutInit(() => make(c, weights ? true : c.bias !== null));
  takeParams(m, c as unknown as Module, weights);
  applyOrigin(m, o);
  m.addQuantBuffers();
  return m;
}

/**
 * init's replacement of a fused ConvBN (traceLayers' NormalizeConvBN*): one conv Int layer whose
 * weight and bias are BN-folded with the running statistics; `fold` says where the BN was, so a
 * float or traced dict can be folded the same way when it loads.
 */
export function fromFused<M extends Module>(fromConv: (conv: Module, o: IntOrigin, weights: { w: tf.Tensor; b: tf.Tensor }) => M) {
  return (m: Module, o: IntOrigin): M => {
    const f = m as NormalizeConvBNBase;
    const fold = f.origin ? { path: f.origin.path, bnPath: f.origin.bnPath, eps: f.bn.eps } : undefined;
    const weights = tf.tidy(() => f.foldedWithRunningStats());
    try {
      return fromConv(f.conv, { ...o, fold }, weights);
    } finally {
      weights.w.dispose();
      weights.b.dispose();
    }
  };
}
