// linger 1.x's LayerNormInt (docs/linger-ops.md, docs/fixed-point.md#layernormint): training runs fake
// quantization with straight-through gradients, its value from exact integer sums on the host (LNK
// below); eval computes what ListenAI's chip computes (thinker v1.1.0's executor kernel: chip.ts).
//
// LNK, the training value (linger's compiled `luna_layernormint` is not public): an integer square
// root and a rounding integer division,
//   D = N·Σq² − (Σq)² + R(eps·s_x²·N²),  num = N·q − Σq,  r = ⌊√D⌋,
//   nrm = clamp16(⌊(2048·num + r) / (2·max(r, 1))⌋)      (≈ num/√D in Q10, rounded half up)
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import { withoutInit } from '../../../nn/init';
import { Buffer, ShapeError } from '../../../nn/module';
import { fakeQuant, floorLog2, maxAbs, qmax, quantizeCodes, trainScale, updatedRunning } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { clampSym } from '../../normalize';
import { type ChipOptions, layerNormChip } from './chip';
import {
  applyOrigin,
  codesAt,
  fakeQuantLogical,
  inputScale,
  IntOrigin,
  outputScale,
  quantized,
  readBuf,
  takeParams,
  writeBuf,
} from '../base';
import { LayerNorm } from '../../../nn/sequence';

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

/** R(eps·s_x²·N²): the eps term of LNK's D (training), in double. */
function layerNormEpsTerm(eps: number, sx: number, n: number): number {
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
    let s1 = 0,
      s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = q[o + i];
      s1 += v;
      s2 += v * v;
    } // |s2| ≤ N·2^30: exact for N < 2^23
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

const LN_KEYS = ['running_x', 'running_normal', 'running_w', 'running_o', 'scale_x', 'scale_normal', 'scale_w', 'scale_o'] as const;

/**
 * linger's LayerNormInt: x at s_x (8 bits), the normalized value in Q10, weight at 16 bits (its
 * scale from the current max), bias int32 at 1024·s_w, acc = nrm·q_w + q_b requantized to o_bits.
 * Training takes nrm from LNK above (acc clamped to int32), eval from the chip's kernel (chip.ts).
 * parameter_bits is always 16.
 */
export class LayerNormInt extends quantized(LayerNorm) {
  /** linger's LayerNormInt print: the LayerNorm's, then ` ,clamps,ahead_relu,data_bits:8, parameter_bits:16, o_bits:8` */
  extraRepr(): string {
    const bits = `data_bits:${this.dataBits}, parameter_bits:${this.parameterBits}, o_bits:${this.outBits}`;
    return `${LayerNorm.prototype.extraRepr.call(this)} ,${this.clampRepr()},ahead_relu:${this.aheadRelu ? 'True' : 'False'},${bits}`;
  }
  quantKeys(): readonly string[] {
    return LN_KEYS;
  }
  declare running_x: Buffer;
  declare running_normal: Buffer;
  declare running_w: Buffer;
  declare running_o: Buffer;
  declare scale_x: Buffer;
  declare scale_normal: Buffer;
  declare scale_w: Buffer;
  declare scale_o: Buffer;

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
    const codes = codesAt(x, sx, this.dataBits).dataSync();
    if (this.training) {
      const acc = layerNormAccumulate(codes, n, layerNormEpsTerm(this.eps, sx, n), qw, qb);
      // value: the integer result; gradient: float LayerNorm of the fake-quantized input and weights
      const axes = Array.from({ length: k }, (_, i) => s.length - k + i);
      const xq = fakeQuantLogical(x, sx, this.dataBits);
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
    const q = layerNormChip(codes, n, qw, qb, this.chipOptions(sx, sw, so));
    return new Tensor(tf.div(tf.tensor(q, s), so), null, so);
  }

  /** The eval kernel's constants at scales s_x, s_w, s_o (docs/fixed-point.md#layernormint). */
  chipOptions(sx: number, sw: number, so: number): ChipOptions {
    const b = qmax(this.outBits);
    return {
      qx: floorLog2(sx),
      shift: 10 + floorLog2(sw) - floorLog2(so),
      lo: -b - 1,
      hi: b,
      chip: this.dataBits === 8,
      accLimit: this.normalizeData === null ? null : Math.floor(this.normalizeData * 1024 * sw),
    };
  }
}
