// Fixed-stage LayerNorm, Embedding and bmm (LINGER-OPS §3–§5): linger 1.x's LayerNormInt,
// EmbeddingInt and BmmInt. Training runs fake quantization with straight-through gradients; eval
// computes exactly what an integer chip computes (the LayerNorm core in exact integer arithmetic on
// the host: its sums pass 2^31).
//
// LayerNormInt's kernel (linger's compiled `luna_layernormint`) is not public. This engine reads it
// as an integer square root and a rounding integer division (docs/fixed-point.md):
//   D = N·Σq² − (Σq)² + R(eps·s_x²·N²),  num = N·q − Σq,  r = ⌊√D⌋,
//   nrm = clamp16(⌊(2048·num + r) / (2·max(r, 1))⌋)      (≈ num/√D in Q10, rounded half up)
import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { withoutInit } from '../nn/init';
import { Buffer, Module, ModuleError, ShapeError } from '../nn/module';
import { Embedding, LayerNorm } from '../nn/sequence';
import {
  EXACT, fakeQuant, floorLog2, maxAbs, qmax, quantizeCodes, requantize, trainScale, updatedRunning,
} from '../quant/qvalue';
import { Stage } from '../state/stateDict';
import { Tensor } from '../tensor';
import {
  applyOrigin, inputScale, IntLayer, IntOrigin, ModuleClass, NotCalibratedError, outputScale, QuantBits, readBuf, registerIntLayer, scalarBuffer, takeParams, writeBuf,
} from './intLayers';
import { clampSym } from './normalize';

// ---- shared plumbing --------------------------------------------------------------------------


/**
 * What these Int layers share with the CNN ones (intLayers.ts `quantized`): bits, ahead-ReLU mark,
 * clamps, printing (the layer's repr, then its bits), the fixed stage, and state-dict migration
 * (a dict from an earlier stage restarts the quantizer statistics) — over each layer's own list
 * of linger buffers.
 */
function quantizedWith<TBase extends ModuleClass>(Base: TBase, keys: readonly string[]) {
  abstract class Quantized extends Base implements IntLayer {
    dataBits = 8; parameterBits = 8; outBits = 8; aheadRelu = false;
    normalizeData: number | null = null; normalizeWeight: number | null = null; normalizeBias: number | null = null;
    bitsRepr(): string {
      return `data_bits=${this.dataBits},parameter_bits=${this.parameterBits},o_bits=${this.outBits},ahead_relu:${this.aheadRelu ? 'True' : 'False'}`;
    }
    extraRepr(): string { const base = super.extraRepr(); return base ? `${base},${this.bitsRepr()}` : this.bitsRepr(); }
    moduleStage(): Stage { return 'fixed'; }
    ownKeysAddedAfter(from: Stage): string[] { return from === 'fixed' ? [] : [...keys]; }
    migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
      super.migrateState(sd, prefix, from);
      if (from === 'fixed') return;
      for (const k of keys) if (!sd.has(prefix + k)) sd.set(prefix + k, new Tensor(tf.zeros([])));
    }
    addQuantBuffers(): void {
      for (const k of keys) (this as unknown as Record<string, Buffer>)[k] = scalarBuffer();
    }
  }
  return Quantized;
}

/** Integer codes of x at scale s as float32 (an IQTensor's are exact already), logical order. */
function codesOf(x: Tensor, s: number, bits: number): tf.Tensor {
  return x.quantScale !== undefined ? tf.round(tf.mul(x.logical(), s)) : quantizeCodes(x.logical(), s, bits);
}

/** Fake-quantized x (logical order): an IQTensor as it is. */
function fakeQuantInput(x: Tensor, s: number, bits: number): tf.Tensor {
  return x.quantScale !== undefined ? x.logical() : fakeQuant(x.logical(), s, bits);
}

// ---- exact integer helpers (plain numbers: exact below 2^53; BigInt beyond) ---------------------

const TWO53 = 2 ** 53;

/** ⌊√D⌋ for an integer D ≥ 0 (number or bigint), as a number. */
function isqrt(D: number | bigint): number {
  if (typeof D === 'number' && D < 2 ** 52) {
    let r = Math.floor(Math.sqrt(D));
    while (r * r > D) r--;
    while ((r + 1) * (r + 1) <= D) r++;
    return r;
  }
  const d = BigInt(D);
  let r = BigInt(Math.floor(Math.sqrt(Number(d))));
  while (r * r > d) r--;
  while ((r + 1n) * (r + 1n) <= d) r++;
  return Number(r);
}

/** ⌊a/b⌋ for integers with |a|, b < 2^53, b > 0, exactly. */
function floorDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q--;
  else if ((q + 1) * b <= a) q++;
  return q;
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);
const I32 = 2 ** 31;

/** R(eps·s_x²·N²): the eps term of D, in double (export writes the same constant). */
export function layerNormEpsTerm(eps: number, sx: number, n: number): number {
  return Math.floor(eps * sx * sx * n * n + 0.5);
}

/**
 * The LayerNormInt accumulator, exactly: per row of N codes q (row-major, the normalized dims
 * last), acc = clamp32(nrm·q_w + q_b) with nrm = LNK(num, D) as in the header. Returns int32.
 */
function layerNormAccumulate(q: ArrayLike<number>, n: number, epsTerm: number, qw: ArrayLike<number>, qb: ArrayLike<number>): Int32Array {
  const rows = q.length / n;
  const out = new Int32Array(q.length);
  for (let row = 0; row < rows; row++) {
    const o = row * n;
    let s1 = 0, s2 = 0;
    for (let i = 0; i < n; i++) { const v = q[o + i]; s1 += v; s2 += v * v; } // |s2| ≤ N·2^30: exact for N < 2^23
    let D: number | bigint;
    if (n * s2 < TWO53 / 2 && s1 * s1 < TWO53 / 2 && epsTerm < TWO53 / 4) D = n * s2 - s1 * s1 + epsTerm;
    else D = BigInt(n) * BigInt(s2) - BigInt(s1) * BigInt(s1) + BigInt(epsTerm);
    const r = isqrt(D);
    const den = 2 * Math.max(r, 1);
    for (let i = 0; i < n; i++) {
      const num = n * q[o + i] - s1;
      const nrm = clamp(floorDiv(2048 * num + r, den), -32768, 32767);
      out[o + i] = clamp(nrm * qw[i] + qb[i], -I32, I32 - 1);
    }
  }
  return out;
}

// ---- LayerNormInt -------------------------------------------------------------------------------

const LN_KEYS = ['running_x', 'running_normal', 'running_w', 'running_o', 'scale_x', 'scale_normal', 'scale_w', 'scale_o'] as const;

/**
 * linger's LayerNormInt: x at s_x (8 bits), the normalized value in Q10 from exact integer sums
 * (LNK above), weight at 16 bits (its scale from the current max), bias int32 at 1024·s_w,
 * acc = clamp32(nrm·q_w + q_b), then requantized to o_bits. parameter_bits is always 16.
 */
export class LayerNormInt extends quantizedWith(LayerNorm, LN_KEYS) {
  declare running_x: Buffer; declare running_normal: Buffer; declare running_w: Buffer; declare running_o: Buffer;
  declare scale_x: Buffer; declare scale_normal: Buffer; declare scale_w: Buffer; declare scale_o: Buffer;

  static from(l: LayerNorm, o: IntOrigin): LayerNormInt {
    const m = withoutInit(() => new LayerNormInt(l.normalizedShape, { eps: l.eps, elementwiseAffine: l.elementwiseAffine }));
    takeParams(m, l);
    applyOrigin(m, o);
    m.parameterBits = 16; // linger forces it
    m.addQuantBuffers();
    writeBuf(m, 'scale_normal', 1024);
    return m;
  }

  /** The weight and bias as used (clamped), ones and zeros without an affine part. */
  affine(): { w: tf.Tensor; b: tf.Tensor } {
    const n = this.normalizedShape.reduce((a, v) => a * v, 1);
    return {
      w: this.weight ? clampSym(tf.reshape(this.weight.raw, [n]), this.normalizeWeight) : tf.ones([n]),
      b: this.bias ? clampSym(tf.reshape(this.bias.raw, [n]), this.normalizeBias) : tf.zeros([n]),
    };
  }

  /** q_w = Q16(w, s_w) and q_b = clamp32(R(b·s_w·1024)), as numbers; s_w from the current weight. */
  affineCodes(): { sw: number; qw: Float32Array; qb: Float64Array } {
    let out!: { sw: number; qw: Float32Array; qb: Float64Array };
    tf.tidy(() => {
      const { w, b } = this.affine();
      const sw = trainScale(maxAbs(w), this.parameterBits);
      const qw = quantizeCodes(w, sw, this.parameterBits).dataSync() as Float32Array;
      const qb = Float64Array.from(b.dataSync(), (v) => clamp(Math.floor(Math.fround(v * sw * 1024) + 0.5), -I32, I32 - 1));
      out = { sw, qw, qb };
    });
    return out;
  }

  forward(x: Tensor): Tensor {
    const k = this.normalizedShape.length;
    const s = x.shape;
    if (s.length < k || s.slice(-k).join() !== this.normalizedShape.join()) {
      throw new ShapeError(this, `expected input [*, ${this.normalizedShape.join(', ')}] (normalized_shape), got [${s.join(', ')}]`);
    }
    const n = this.normalizedShape.reduce((a, v) => a * v, 1);
    const sx = inputScale(this, x, 'running_x');
    const { sw, qw, qb } = this.affineCodes();
    writeBuf(this, 'scale_x', sx);
    writeBuf(this, 'scale_w', sw);
    if (this.training) writeBuf(this, 'running_w', updatedRunning(readBuf(this, 'running_w'), sw, this.parameterBits));
    const codes = codesOf(x, sx, this.dataBits);
    const acc = layerNormAccumulate(codes.dataSync(), n, layerNormEpsTerm(this.eps, sx, n), qw, qb);
    if (this.training) {
      // value: the integer result; gradient: float LayerNorm of the fake-quantized input and weights
      const axes = Array.from({ length: k }, (_, i) => s.length - k + i);
      const xq = fakeQuantInput(x, sx, this.dataBits);
      const carrier = () => {
        const { w, b } = this.affine();
        const mean = tf.mean(xq, axes, true);
        const d = tf.sub(xq, mean);
        const nrm = tf.mul(d, tf.rsqrt(tf.add(tf.mean(tf.mul(d, d), axes, true), this.eps)));
        const wq = tf.reshape(fakeQuant(w, sw, this.parameterBits, false), this.normalizedShape);
        const bq = tf.reshape(fakeQuant(b, sw * 1024, 32, false), this.normalizedShape);
        return tf.add(tf.mul(nrm, wq), bq);
      };
      const value = () => tf.div(tf.tensor(Float32Array.from(acc), s), 1024 * sw); // |acc| ≤ 2^31: /2^k of a float32 rounding of it
      const y = clampSym(K.straightThrough(carrier(), value), this.normalizeData);
      const so = outputScale(this, y);
      writeBuf(this, 'scale_o', so);
      return new Tensor(fakeQuant(y, so, this.outBits), null, so);
    }
    const so = outputScale(this, null);
    writeBuf(this, 'scale_o', so);
    if (this.normalizeData !== null) {
      const lim = Math.floor(this.normalizeData * 1024 * sw);
      for (let i = 0; i < acc.length; i++) acc[i] = clamp(acc[i], -lim, lim);
    }
    const q = shiftRound(acc, floorLog2(so) - 10 - floorLog2(sw), this.outBits);
    return new Tensor(tf.div(tf.tensor(q, s), so), null, so);
  }
}

/**
 * clamp(⌊acc·2^k + 1/2⌋, −B−1, B) for int32 accumulators, in double (exact: acc has 32 bits and
 * 2^k is a power of two), as float32 codes.
 */
function shiftRound(acc: Int32Array, k: number, bits: number): Float32Array {
  const b = qmax(bits);
  const out = new Float32Array(acc.length);
  if (k < -60) return out; // |acc|·2^k < 1/2
  const f = 2 ** k;
  for (let i = 0; i < acc.length; i++) out[i] = clamp(Math.floor(acc[i] * f + 0.5), -b - 1, b);
  return out;
}

// ---- EmbeddingInt ------------------------------------------------------------------------------

const QUANT_KEYS = ['running_x', 'running_w', 'running_o', 'scale_x', 'scale_w', 'scale_o'] as const;

/**
 * linger's EmbeddingInt: rows of the weight quantized at s_w = 2^⌊log2(B/max|W|)⌋ (the current
 * weight, training and eval), returned as codes at s_w (an IQTensor; not requantized). The weight
 * gradient is Embedding's scatter-add, straight through the quantizer.
 */
export class EmbeddingInt extends quantizedWith(Embedding, QUANT_KEYS) {
  declare running_x: Buffer; declare running_w: Buffer; declare running_o: Buffer;
  declare scale_x: Buffer; declare scale_w: Buffer; declare scale_o: Buffer;

  static from(e: Embedding, o: IntOrigin): EmbeddingInt {
    const m = withoutInit(() => new EmbeddingInt(e.numEmbeddings, e.embeddingDim, { paddingIdx: e.paddingIdx ?? undefined }));
    takeParams(m, e);
    applyOrigin(m, o);
    m.addQuantBuffers();
    return m;
  }

  /** s_w and the integer codes of the weight, as the layer uses them. */
  weightCodes(): { sw: number; codes: tf.Tensor } {
    const w = clampSym(this.weight.raw, this.normalizeWeight);
    const sw = trainScale(maxAbs(w), this.parameterBits);
    return { sw, codes: quantizeCodes(w, sw, this.parameterBits) };
  }

  forward(idx: Tensor): Tensor {
    const w = clampSym(this.weight.raw, this.normalizeWeight);
    const sw = trainScale(maxAbs(w), this.parameterBits);
    writeBuf(this, 'scale_w', sw);
    writeBuf(this, 'scale_o', sw);
    if (this.training) {
      const r = updatedRunning(readBuf(this, 'running_w'), sw, this.parameterBits);
      writeBuf(this, 'running_w', r);
      writeBuf(this, 'running_o', r); // linger copies it
    } else if (!(readBuf(this, 'running_o') > 0)) {
      throw new NotCalibratedError(this, 'running_o');
    }
    const wq = this.training ? fakeQuant(w, sw, this.parameterBits, false) : tf.div(quantizeCodes(w, sw, this.parameterBits), sw);
    return new Tensor(this.lookup(wq, idx), null, sw);
  }
}

// ---- BmmInt ------------------------------------------------------------------------------------

const BMM_KEYS = ['running_x', 'running_y', 'running_o', 'scale_x', 'scale_y', 'scale_o'] as const;

/**
 * Σ_j qx[b,i,j]·qy[b,j,k] as int32, exactly: float32 matmuls over chunks of the inner dimension
 * whose partial sums stay below 2^24 (bounded by the largest codes), added in int32; where one
 * product can pass 2^24 (more than 12-bit data), on the host (clamped to int32, a 32-bit accumulator).
 */
function exactBmm(qx: tf.Tensor3D, qy: tf.Tensor3D): tf.Tensor {
  const mx = tf.tidy(() => tf.max(tf.abs(qx)).dataSync()[0]), my = tf.tidy(() => tf.max(tf.abs(qy)).dataSync()[0]);
  const [b, n, m] = qx.shape, p = qy.shape[2];
  const per = mx * my;
  if (per * m < EXACT) return tf.cast(tf.round(tf.matMul(qx, qy)), 'int32');
  const chunk = Math.floor((EXACT - 1) / per);
  if (chunk >= 1) {
    let acc: tf.Tensor | null = null;
    for (let c0 = 0; c0 < m; c0 += chunk) {
      const c = Math.min(chunk, m - c0);
      const part = tf.cast(tf.round(tf.matMul(tf.slice(qx, [0, 0, c0], [b, n, c]), tf.slice(qy, [0, c0, 0], [b, c, p]))), 'int32');
      acc = acc ? tf.add(acc, part) : part;
    }
    return acc!;
  }
  const xv = qx.dataSync(), yv = qy.dataSync();
  const out = new Int32Array(b * n * p);
  for (let s = 0; s < b; s++) for (let i = 0; i < n; i++) for (let k = 0; k < p; k++) {
    let acc = 0;
    for (let j = 0; j < m; j++) acc += xv[(s * n + i) * m + j] * yv[(s * m + j) * p + k];
    out[(s * n + i) * p + k] = clamp(acc, -I32, I32 - 1);
  }
  return tf.tensor(out, [b, n, p], 'int32');
}

/**
 * linger's BmmInt (torch.bmm after SetFunctionBmmQuant(True)): both operands quantized to
 * data_bits (an IQTensor keeps its scale), z = bmm(q_x, q_y)/(s_x·s_y), requantized to o_bits.
 */
export class BmmInt extends quantizedWith(Module, BMM_KEYS) {
  declare running_x: Buffer; declare running_y: Buffer; declare running_o: Buffer;
  declare scale_x: Buffer; declare scale_y: Buffer; declare scale_o: Buffer;

  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    this.addQuantBuffers();
  }

  bitsRepr(): string { return `data_bits=${this.dataBits},o_bits=${this.outBits}`; }

  forward(x: Tensor, y: Tensor): Tensor {
    const [sa, sb] = [x.shape, y.shape];
    if (sa.length !== 3 || sb.length !== 3 || sa[0] !== sb[0] || sa[2] !== sb[1]) {
      throw new ShapeError(this, `bmm: expected [b, n, m] and [b, m, p], got [${sa.join(', ')}] and [${sb.join(', ')}]`);
    }
    if (x.dtype !== 'float32' || y.dtype !== 'float32') throw new ModuleError(this, 'bmm: expected float32 operands');
    const sx = inputScale(this, x, 'running_x'), sy = inputScale(this, y, 'running_y');
    writeBuf(this, 'scale_x', sx);
    writeBuf(this, 'scale_y', sy);
    if (this.training) {
      const z = tf.matMul(fakeQuantInput(x, sx, this.dataBits), fakeQuantInput(y, sy, this.dataBits));
      const so = outputScale(this, z);
      writeBuf(this, 'scale_o', so);
      return new Tensor(fakeQuant(z, so, this.outBits), null, so);
    }
    const so = outputScale(this, null);
    writeBuf(this, 'scale_o', so);
    const acc = exactBmm(codesOf(x, sx, this.dataBits) as tf.Tensor3D, codesOf(y, sy, this.dataBits) as tf.Tensor3D);
    const q = requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sy), this.outBits);
    return new Tensor(tf.div(tf.cast(q, 'float32'), so), null, so);
  }
}

registerIntLayer(LayerNormInt);
registerIntLayer(EmbeddingInt);
registerIntLayer(BmmInt);
