// Fixed-stage layers (SPEC §5): linger's Int layers with power-of-two scales. Training runs
// fake quantization with straight-through gradients; eval computes what an integer chip with
// 32-bit accumulators computes, exactly.
import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { BatchNorm2d } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvTranspose2d } from '../nn/conv';
import { withoutInit } from '../nn/init';
import { channelsLast, NHWC, pair, Pair } from '../nn/layout';
import { Linear, linearRaw } from '../nn/linear';
import { Buffer, Module, ModuleError, Parameter, parameterFrom } from '../nn/module';
import { avgPool2dRaw, AvgPool2d } from '../nn/pooling';
import { pyIntOrTuple } from '../nn/repr';
import { Stage } from '../state/stateDict';
import { Tensor } from '../tensor';
import {
  EXACT, clampInt, evalScale, fakeQuant, floorLog2, maxAbs, maxPositive, qmax, quantizeCodes, requantize, trainScale, updatedRunning,
} from '../quant/qvalue';
import { clampSym } from './normalize';
import { batchMax, wholeBatchCount } from '../parallel/sync';

export interface QuantBits { dataBits: number; parameterBits: number; outBits: number; }

/** Eval (or export) of a layer that has never seen data. */
export class NotCalibratedError extends ModuleError {
  constructor(m: Module, what: string) {
    super(m, `no data statistics yet (${what} = 0): train in the fixed stage or run linger.calibrate(model, batches) before eval or export`, 'NotCalibratedError');
  }
}

const BUFFERS = ['running_x', 'running_w', 'running_o', 'scale_x', 'scale_w', 'scale_o'] as const;
/** A quantizer buffer: one number, 0 until data is seen. */
export const scalarBuffer = (dtype: 'float32' | 'int32' = 'float32') =>
  parameterFrom(dtype === 'int32' ? new Int32Array(1) : new Float32Array(1), [], null, dtype, false) as Buffer;

/** What every quantized layer shares: its bits, the ahead-ReLU mark, clamps, quantizer buffers. */
export interface IntLayer extends QuantBits {
  aheadRelu: boolean;
  normalizeData: number | null;
  normalizeWeight: number | null;
  normalizeBias: number | null;
}

/** A quantizer buffer's value (every Int layer's buffers are scalars named as linger names them). */
export function readBuf(m: Module, k: string): number {
  return ((m as unknown as Record<string, Buffer>)[k]).raw.dataSync()[0];
}
export function writeBuf(m: Module, k: string, v: number): void {
  const b = (m as unknown as Record<string, Buffer>)[k];
  b.raw.assign(tf.scalar(v, b.raw.dtype as 'float32' | 'int32'));
}
function addBuffers(m: Module): void {
  for (const k of BUFFERS) (m as unknown as Record<string, Buffer>)[k] = scalarBuffer();
}

/**
 * The scale of an input: carried from an Int layer (IQTensor), or chosen from data/statistics —
 * in training 2^⌊log2(B/max|x|)⌋ over the whole batch (`running` ← its EMA), in eval from `running`.
 */
export function inputScale(m: Module & IntLayer, x: Tensor, running = 'running_x'): number {
  if (x.quantScale !== undefined) return x.quantScale;
  if (m.training) {
    const s = trainScale(batchMax(maxAbs(x.raw)), m.dataBits);
    writeBuf(m, running, updatedRunning(readBuf(m, running), s, m.dataBits));
    return s;
  }
  const r = readBuf(m, running);
  if (!(r > 0)) throw new NotCalibratedError(m, running);
  return evalScale(r, m.dataBits);
}

/** Output scale: from the batch `y` in training (positive range with ahead-ReLU), else running_o. */
export function outputScale(m: Module & IntLayer, y: tf.Tensor | null): number {
  if (m.training && y) {
    const s = trainScale(batchMax(m.aheadRelu ? maxPositive(y) : maxAbs(y)), m.outBits);
    writeBuf(m, 'running_o', updatedRunning(readBuf(m, 'running_o'), s, m.outBits));
    return s;
  }
  const r = readBuf(m, 'running_o');
  if (!(r > 0)) throw new NotCalibratedError(m, 'running_o');
  return evalScale(r, m.outBits);
}

/** The input as dequantized codes: x itself when it carries a scale, else quantized here. */
function quantizedInput(m: Module & IntLayer, x: Tensor, sx: number): tf.Tensor {
  if (x.quantScale !== undefined) return x.raw;
  return m.training ? fakeQuant(x.raw, sx, m.dataBits) : tf.div(quantizeCodes(x.raw, sx, m.dataBits), sx);
}

/**
 * A conv or linear Int layer. Training: y = op(fq(x), fq(W)) + fq(b) (bias at s_x·s_w, 32 bit),
 * clampData, then fq(y) at the output scale. Eval: int accumulate of q_x·q_w + q_b, then
 * requantize by shifting (exact; reductions split so float sums stay below 2^24).
 */
function weightedIntForward(m: Module & IntLayer & WeightedOps, x: Tensor): Tensor {
  {
    m.checkInput(x);
    const sx = inputScale(m, x);
    const xq = new Tensor(quantizedInput(m, x, sx), x.perm);
    const w = clampSym(m.weight.raw, m.normalizeWeight);
    const b = m.bias ? clampSym(m.bias.raw, m.normalizeBias) : null;
    const sw = trainScale(maxAbs(w), m.parameterBits);
    writeBuf(m, 'scale_x', sx);
    writeBuf(m, 'scale_w', sw);
    if (m.training) {
      writeBuf(m, 'running_w', updatedRunning(readBuf(m, 'running_w'), sw, m.parameterBits));
      const wq = fakeQuant(w, sw, m.parameterBits, false);
      const bq = b && fakeQuant(b, sx * sw, 32, false);
      const yt = m.applyWith(xq, wq, bq);
      const layout = yt.perm;
      const y = clampSym(yt.raw, m.normalizeData);
      const so = outputScale(m, y);
      writeBuf(m, 'scale_o', so);
      return new Tensor(fakeQuant(y, so, m.outBits), layout, so);
    }
    // eval: integers all the way
    const so = outputScale(m, null);
    writeBuf(m, 'scale_o', so);
    const qx = new Tensor(tf.round(tf.mul(xq.raw, sx)), xq.perm);
    const qw = quantizeCodes(w, sw, m.parameterBits);
    const qb = b && tf.cast(tf.floor(tf.add(tf.mul(b, sx * sw), 0.5)), 'int32');
    let { acc, perm } = exactAccumulate(m, qx, qw);
    // the accumulator is channels-last: the 1-d bias broadcasts (wasm adds [C] far faster than [1,1,1,C])
    if (qb) acc = tf.add(acc, qb);
    if (m.normalizeData !== null) {
      const lim = Math.floor(m.normalizeData * sx * sw);
      acc = clampInt(acc, -lim, lim);
    }
    const k = floorLog2(so) - floorLog2(sx) - floorLog2(sw);
    const q = requantize(acc, k, m.outBits);
    return new Tensor(tf.div(tf.cast(q, 'float32'), so), perm, so);
  }
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
  let start = 0, sum = 0;
  for (let c = 0; c < inputs; c++) {
    const v = 128 * perIn[c];
    if (c > start && sum + v >= EXACT) { chunks.push([start, c]); start = c; sum = 0; }
    sum += v;
  }
  chunks.push([start, inputs]);
  if (chunks.length === 1) {
    const y = m.applyWith(qx, qw, null);
    return { acc: tf.cast(tf.round(y.raw), 'int32'), perm: y.perm };
  }
  if (groups > 1) {
    throw new ModuleError(m, `a grouped layer whose accumulator can pass 2^24 (${chunks.length} chunks needed) is not supported for exact eval yet`);
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

function sliceChannels(x: Tensor, c0: number, c1: number): Tensor {
  const axis = x.perm ? x.perm[1] : 1;
  const begin = x.raw.shape.map((_, i) => (i === axis ? c0 : 0));
  const size = x.raw.shape.map((s, i) => (i === axis ? c1 - c0 : s));
  return new Tensor(tf.slice(x.raw, begin, size), x.perm);
}

function bitsRepr(m: IntLayer): string {
  return `data_bits=${m.dataBits},parameter_bits=${m.parameterBits},o_bits=${m.outBits},ahead_relu:${m.aheadRelu ? 'True' : 'False'}`;
}

/** Settings an Int layer inherits from the float/traced layer it replaces. */
export interface IntOrigin extends QuantBits {
  aheadRelu: boolean;
  normalizeData: number | null;
  normalizeWeight: number | null;
  normalizeBias: number | null;
  /** a BN folded into this layer at init: where it was and how to fold a float/traced dict */
  fold?: { path: string; bnPath: string; eps: number };
}

/** The bits, ahead-ReLU mark, clamps (and a folded BN) init gives an Int layer. */
export function applyOrigin(m: IntLayer & { fold?: IntOrigin['fold'] }, o: IntOrigin): void {
  m.dataBits = o.dataBits;
  m.parameterBits = o.parameterBits;
  m.outBits = o.outBits;
  m.aheadRelu = o.aheadRelu;
  m.normalizeData = o.normalizeData;
  m.normalizeWeight = o.normalizeWeight;
  m.normalizeBias = o.normalizeBias;
  Object.defineProperty(m, 'fold', { value: o.fold, enumerable: false, writable: true });
}

/** Keys of dicts from an earlier stage: the quantizer buffers start empty. */
function quantKeysAddedAfter(from: Stage): string[] {
  return from === 'fixed' ? [] : [...BUFFERS];
}

/**
 * A dict from an earlier stage brings new weights: the quantizer statistics this layer had belong
 * to the old ones, so they restart from empty (and eval asks for calibration again).
 */
function resetQuantState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
  if (from === 'fixed') return;
  for (const k of BUFFERS) if (!sd.has(prefix + k)) sd.set(prefix + k, new Tensor(tf.zeros([])));
}

/**
 * Moves a float/traced dict's conv + BN entries into this Int layer's folded weight and bias:
 * W' = clampW(W·s), b' = clampB((b − μ)·s + β), s = γ/√(var + ε) with the running statistics.
 * `scaleRows` applies s per output channel of a logical-order weight.
 */
function migrateFolded(m: Module & IntLayer & { fold?: IntOrigin['fold'] }, sd: Map<string, Tensor>, prefix: string, from: Stage,
  scaleRows: (w: tf.Tensor, s: tf.Tensor) => tf.Tensor): void {
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
  const W = get(`${convKey}weight`), g = get(`${bnKey}weight`), beta = get(`${bnKey}bias`), rm = get(`${bnKey}running_mean`), rv = get(`${bnKey}running_var`);
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
const scaleDim0 = (w: tf.Tensor, s: tf.Tensor) => tf.mul(w, tf.reshape(s, [s.shape[0], ...Array(w.rank - 1).fill(1)]));

// ---- the layers -------------------------------------------------------------------------------

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ModuleClass = abstract new (...args: any[]) => Module;

/**
 * What every Int layer shares: its bits, ahead-ReLU mark and clamps, the quantizer buffers,
 * printing (the layer's repr, then its bits), the fixed stage, and state-dict migration (dicts
 * from earlier stages restart the quantizer statistics). One definition for all Int layers.
 */
export function quantized<TBase extends ModuleClass>(Base: TBase) {
  abstract class Quantized extends Base implements IntLayer {
    dataBits = 8; parameterBits = 8; outBits = 8; aheadRelu = false;
    normalizeData: number | null = null; normalizeWeight: number | null = null; normalizeBias: number | null = null;
    declare fold?: IntOrigin['fold'];
    declare running_x: Buffer; declare running_w: Buffer; declare running_o: Buffer;
    declare scale_x: Buffer; declare scale_w: Buffer; declare scale_o: Buffer;
    extraRepr(): string { const base = super.extraRepr(); return base ? `${base},${bitsRepr(this)}` : ''; }
    moduleStage(): Stage { return 'fixed'; }
    ownKeysAddedAfter(from: Stage): string[] { return quantKeysAddedAfter(from); }
    migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void { resetQuantState(sd, prefix, from); }
  }
  return Quantized;
}


export class Conv2dInt extends quantized(Conv2d) implements WeightedOps {

  /** From a float conv (its Parameters carried over) or, with `weights`, from folded values. */
  static from(c: Conv2d, o: IntOrigin, weights?: { w: tf.Tensor; b: tf.Tensor }): Conv2dInt {
    const m = withoutInit(() => new Conv2dInt(c.inChannels, c.outChannels, c.kernelSize,
      { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, bias: weights ? true : c.bias !== null }));
    takeParams(m, c, weights);
    applyOrigin(m, o);
    addBuffers(m);
    return m;
  }
  forward(x: Tensor): Tensor { return weightedIntForward(this, x); }
  applyWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor { return this.convWith(x, w, b); }
  reduction() { return { inputs: this.inChannels / this.groups, weightAxis: 2, groups: this.groups }; }
  sliceInput(x: Tensor, c0: number, c1: number): Tensor { return sliceChannels(x, c0, c1); }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    migrateFolded(this, sd, prefix, from, scaleDim0);
    super.migrateState(sd, prefix, from);
  }
}

export class Conv1dInt extends quantized(Conv1d) implements WeightedOps {

  static from(c: Conv1d, o: IntOrigin, weights?: { w: tf.Tensor; b: tf.Tensor }): Conv1dInt {
    const m = withoutInit(() => new Conv1dInt(c.inChannels, c.outChannels, c.kernelSize,
      { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, bias: weights ? true : c.bias !== null }));
    takeParams(m, c, weights);
    applyOrigin(m, o);
    addBuffers(m);
    return m;
  }
  forward(x: Tensor): Tensor { return weightedIntForward(this, x); }
  applyWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor { return this.convWith(x, w, b); }
  reduction() { return { inputs: this.inChannels / this.groups, weightAxis: 1, groups: this.groups }; }
  sliceInput(x: Tensor, c0: number, c1: number): Tensor { return sliceChannels(x, c0, c1); }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    migrateFolded(this, sd, prefix, from, scaleDim0);
    super.migrateState(sd, prefix, from);
  }
}

export class ConvTranspose2dInt extends quantized(ConvTranspose2d) implements WeightedOps {

  static from(c: ConvTranspose2d, o: IntOrigin, weights?: { w: tf.Tensor; b: tf.Tensor }): ConvTranspose2dInt {
    const m = withoutInit(() => new ConvTranspose2dInt(c.inChannels, c.outChannels, c.kernelSize,
      { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, outputPadding: c.outputPadding, bias: weights ? true : c.bias !== null }));
    takeParams(m, c, weights);
    applyOrigin(m, o);
    addBuffers(m);
    return m;
  }
  forward(x: Tensor): Tensor { return weightedIntForward(this, x); }
  applyWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor { return this.convWith(x, w, b); }
  reduction() { return { inputs: this.inChannels, weightAxis: 0, groups: this.groups }; }
  sliceInput(x: Tensor, c0: number, c1: number): Tensor { return sliceChannels(x, c0, c1); }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    const g = this.groups;
    migrateFolded(this, sd, prefix, from, (w, s) => {
      const [inC, outG] = w.shape;
      return tf.mul(w, tf.reshape(tf.tile(tf.reshape(s, [g, 1, outG]), [1, inC / g, 1]), [inC, outG, 1, 1]));
    });
    super.migrateState(sd, prefix, from);
  }
}

export class LinearInt extends quantized(Linear) implements WeightedOps {

  static from(l: Linear, o: IntOrigin): LinearInt {
    const m = withoutInit(() => new LinearInt(l.inFeatures, l.outFeatures, { bias: l.bias !== null }));
    takeParams(m, l);
    applyOrigin(m, o);
    addBuffers(m);
    return m;
  }
  forward(x: Tensor): Tensor { return weightedIntForward(this, x); }
  applyWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor { return linearRaw(x, w as tf.Tensor2D, b as tf.Tensor1D | null); }
  reduction() { return { inputs: this.inFeatures, weightAxis: 0, groups: 1 }; }
  sliceInput(x: Tensor, c0: number, c1: number): Tensor {
    const l = x.logical();
    const s = l.shape;
    return new Tensor(tf.slice(l, s.map((_, i) => (i === s.length - 1 ? c0 : 0)), s.map((v, i) => (i === s.length - 1 ? c1 - c0 : v))));
  }
}

/**
 * BatchNorm as a per-channel multiply-add: a = γ/√(var+ε), c = β − μ·a (batch statistics in
 * training, running ones in eval); a quantized as a parameter, c at s_x·s_a; y = x·a + c.
 */
export class BatchNormInt extends quantized(BatchNorm2d) {

  static from(b: BatchNorm2d, o: IntOrigin): BatchNormInt {
    const m = withoutInit(() => new BatchNormInt(b.numFeatures, { eps: b.eps, momentum: b.momentum, affine: b.affine, trackRunningStats: b.trackRunningStats }));
    takeParams(m, b);
    applyOrigin(m, o);
    addBuffers(m);
    return m;
  }
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    const sx = inputScale(this, x);
    const layout = channelsLast(x.rank);
    const xq = new Tensor(quantizedInput(this, x, sx), x.perm).physical(layout);
    const gamma = this.weight ? clampSym(this.weight.raw, this.normalizeWeight) : tf.ones([this.numFeatures]);
    const beta = this.bias ? clampSym(this.bias.raw, this.normalizeBias) : tf.zeros([this.numFeatures]);
    let mean: tf.Tensor, variance: tf.Tensor;
    if (this.useBatchStats()) {
      // the whole batch's statistics in a data-parallel step (SyncBatchNorm)
      mean = K.wholeBatchChannelMean(xq);
      variance = K.wholeBatchChannelMean(tf.square(tf.sub(xq, mean)));
      this.updateRunningStats(mean, variance, wholeBatchCount(xq.size / this.numFeatures));
    } else {
      mean = this.running_mean!.raw;
      variance = this.running_var!.raw;
    }
    const a = tf.mul(gamma, tf.rsqrt(tf.add(variance, this.eps)));
    const c = tf.sub(beta, tf.mul(mean, a));
    const sa = trainScale(maxAbs(a), this.parameterBits);
    writeBuf(this, 'scale_x', sx);
    writeBuf(this, 'scale_w', sa);
    if (this.training) {
      writeBuf(this, 'running_w', updatedRunning(readBuf(this, 'running_w'), sa, this.parameterBits));
      const y = clampSym(tf.add(tf.mul(xq, fakeQuant(a, sa, this.parameterBits, false)), fakeQuant(c, sx * sa, 32, false)), this.normalizeData);
      const so = outputScale(this, y);
      writeBuf(this, 'scale_o', so);
      return new Tensor(fakeQuant(y, so, this.outBits), layout, so);
    }
    const so = outputScale(this, null);
    writeBuf(this, 'scale_o', so);
    const qx = tf.cast(tf.round(tf.mul(xq, sx)), 'int32');
    const qa = tf.cast(quantizeCodes(a, sa, this.parameterBits), 'int32');
    const qc = tf.cast(tf.floor(tf.add(tf.mul(c, sx * sa), 0.5)), 'int32');
    let acc = tf.add(tf.mul(qx, qa), qc);
    if (this.normalizeData !== null) {
      const lim = Math.floor(this.normalizeData * sx * sa);
      acc = clampInt(acc, -lim, lim);
    }
    const q = requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sa), this.outBits);
    return new Tensor(tf.div(tf.cast(q, 'float32'), so), layout, so);
  }
}

/** Average pooling requantized to the output scale; eval divides the integer window sums exactly. */
export class AvgPool2dInt extends quantized(Module) {
  constructor(readonly kernelSize: number | Pair, readonly stride: number | Pair, readonly padding: number | Pair) {
    super();
    addBuffers(this);
  }
  static from(p: AvgPool2d, o: IntOrigin): AvgPool2dInt {
    const m = new AvgPool2dInt(p.kernelSize, p.stride, p.padding);
    applyOrigin(m, o);
    return m;
  }
  forward(x: Tensor): Tensor {
    const k = pair(this.kernelSize, 'kernel_size'), s = pair(this.stride, 'stride'), p = pair(this.padding, 'padding');
    const sx = inputScale(this, x);
    writeBuf(this, 'scale_x', sx);
    const xq = new Tensor(quantizedInput(this, x, sx), x.perm);
    const y = avgPool2dRaw(xq, this, k, s, p);
    if (this.training) {
      const so = outputScale(this, y.raw);
      writeBuf(this, 'scale_o', so);
      return new Tensor(fakeQuant(y.raw, so, this.outBits), NHWC, so);
    }
    const so = outputScale(this, null);
    writeBuf(this, 'scale_o', so);
    const area = k[0] * k[1];
    // window sums of codes are exact integers; q = ⌊sum·s_o/(s_x·area) + 0.5⌋ = ⌊(2·sum·num + den)/(2·den)⌋
    const sum = tf.cast(tf.round(tf.mul(y.raw, sx * area)), 'int32');
    const e = floorLog2(so) - floorLog2(sx);
    const num = e >= 0 ? 2 ** e : 1, den = area * (e >= 0 ? 1 : 2 ** -e);
    const b = qmax(this.outBits);
    const q = clampInt(tf.floorDiv(tf.add(tf.mul(sum, tf.scalar(2 * num, 'int32')), tf.scalar(den, 'int32')), tf.scalar(2 * den, 'int32')), -b - 1, b);
    return new Tensor(tf.div(tf.cast(q, 'float32'), so), NHWC, so);
  }
  extraRepr(): string {
    return `kernel_size=${pyIntOrTuple(this.kernelSize)}, stride=${pyIntOrTuple(this.stride)}, padding=${pyIntOrTuple(this.padding)},${bitsRepr(this)}`;
  }
}

/**
 * Takes the old layer's Parameters and buffers (the same objects: an optimizer built before init
 * keeps them), or folded values as new Parameters.
 */
export function takeParams(to: Module, from: Module, weights?: { w: tf.Tensor; b: tf.Tensor }): void {
  const t = to as unknown as Record<string, unknown>;
  if (weights) {
    const w = t.weight as Parameter, b = t.bias as Parameter;
    w.raw.assign(weights.w);
    b.raw.assign(weights.b);
    return;
  }
  for (const [k, v] of [...from.ownParameters(), ...from.ownBuffers()]) {
    const old = t[k];
    if (old instanceof Tensor && old !== v) old.dispose();
    t[k] = v;
  }
}

const MORE_INT_LAYERS = new Set<ModuleClass>();
/** Int layers defined in other files (recurrent, sequence) join isIntLayer here. */
export function registerIntLayer(c: ModuleClass): void {
  MORE_INT_LAYERS.add(c);
}

export function isIntLayer(m: Module): m is Module & IntLayer {
  for (const c of MORE_INT_LAYERS) if (m instanceof c) return true;
  return m instanceof Conv2dInt || m instanceof Conv1dInt || m instanceof ConvTranspose2dInt || m instanceof LinearInt ||
    m instanceof BatchNormInt || m instanceof AvgPool2dInt || m instanceof IQAdd || m instanceof IQCat;
}

// ---- element-wise ops on quantized tensors ----------------------------------------------------

/**
 * A common output scale for an element-wise op, linger's output scale rule (LINGER-OPS §6):
 * training 2^round(log2(B / max)) (max = 0 → 1) with running_o ← 0.9·running_o + 0.1·max (the raw
 * max); eval 2^round(log2(B / running_o)), capped at `cap` (iqAdd: the smallest input scale).
 */
function opScale(m: Module & IntLayer, max: number, cap: number | null): number {
  if (m.training) {
    writeBuf(m, 'running_o', 0.9 * readBuf(m, 'running_o') + 0.1 * max);
    return max > 0 ? 2 ** Math.round(Math.log2(qmax(m.outBits) / max)) : 1;
  }
  const r = readBuf(m, 'running_o');
  if (!(r > 0)) throw new NotCalibratedError(m, 'running_o');
  const s = evalScale(r, m.outBits);
  return cap === null ? s : Math.min(s, cap);
}

/** Codes of x requantized from scale sx to sz: ⌊q_x·s_z/s_x + 0.5⌋ (exact: the ratio is a power of two). */
function rescale(x: Tensor, sx: number, sz: number, layout: readonly number[] | null): tf.Tensor {
  return tf.floor(tf.add(tf.mul(x.physical(layout), sz), 0.5)); // x = q_x/s_x, so q_x·s_z/s_x = x·s_z
}

function operandScale(m: Module & IntLayer, t: Tensor): number {
  if (t.quantScale !== undefined) return t.quantScale;
  throw new ModuleError(m, 'an operand does not come from a quantized layer (it has no scale); quantize its producer or disable quantization of this op');
}

/** linger's iqAdd: z = clamp(⌊q_x·s_z/s_x + 0.5⌋ + ⌊q_y·s_z/s_y + 0.5⌋, −B−1, B). */
export class IQAdd extends quantized(Module) {
  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    addBuffers(this);
  }
  forward(x: Tensor, y: Tensor): Tensor {
    const sx = operandScale(this, x), sy = operandScale(this, y);
    const layout = x.perm;
    const xr = x.raw, yr = y.physical(layout);
    const max = this.training ? batchMax(Math.max(maxAbs(xr), maxAbs(yr), tf.tidy(() => maxAbs(tf.add(xr, yr))))) : 0;
    const sz = opScale(this, max, Math.min(sx, sy));
    writeBuf(this, 'scale_x', sx);
    writeBuf(this, 'scale_w', sy);
    writeBuf(this, 'scale_o', sz);
    const b = qmax(this.outBits);
    const value = () => tf.div(tf.clipByValue(tf.add(rescale(x, sx, sz, layout), rescale(y, sy, sz, layout)), -b - 1, b), sz);
    return new Tensor(this.training ? K.straightThrough(tf.add(xr, yr), value) : value(), layout, sz);
  }
}

/** linger's iqCat: every input requantized to one common output scale, then concatenated. */
export class IQCat extends quantized(Module) {
  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    addBuffers(this);
  }
  forward(xs: Tensor[], dim: number): Tensor {
    const scales = xs.map((t) => operandScale(this, t));
    const layout = xs[0].perm;
    const max = this.training ? batchMax(Math.max(...xs.map((t) => maxAbs(t.raw)))) : 0;
    const sz = opScale(this, max, null); // linger's iqCat: no cap
    writeBuf(this, 'scale_o', sz);
    const axis = layout ? layout[dim < 0 ? dim + xs[0].rank : dim] : (dim < 0 ? dim + xs[0].rank : dim);
    const b = qmax(this.outBits);
    const value = () => tf.div(tf.clipByValue(tf.concat(xs.map((t, i) => rescale(t, scales[i], sz, layout)), axis), -b - 1, b), sz);
    const carrier = () => tf.concat(xs.map((t) => t.physical(layout)), axis);
    return new Tensor(this.training ? K.straightThrough(carrier(), value) : value(), layout, sz);
  }
}

