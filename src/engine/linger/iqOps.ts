// linger's quantized element-wise ops beyond add/cat (LINGER-OPS §6): iqMul, iqSum, iqSigmoid,
// iqTanh, iqClamp on quantized tensors (IQTensors: values q/s with a carried power-of-two scale),
// and ReLU6Int, the module nn.ReLU6 becomes. Training runs the same integer formula as eval on the
// fake-quantized values, with straight-through gradients of the float op; eval is integer-exact.
//
// Output scale rule (OSR) of iqMul/iqSum/iqClamp's statistics:
//   training  m = max|z| of the float result (whole batch, batchMax), running_o ← 0.9·running_o + 0.1·m
//             (the raw max), s_z = 2^round(log2(B/m)) (m = 0 → 1);
//   eval      s_z = 2^round(log2(B/running_o)); running_o = 0 is NotCalibratedError. Only eval writes scale_o.
import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { Buffer, Module, ModuleError } from '../nn/module';
import { ReLU6 } from '../nn/activation';
import { sigmoidQ7, tanhQ7 } from '../quant/intActivation';
import { evalScale, fakeQuant, floorLog2, maxAbs, qmax, requantize, trainScale, updatedRunning } from '../quant/qvalue';
import { batchMax } from '../parallel/sync';
import { Stage } from '../state/stateDict';
import { normAxis, Tensor } from '../tensor';
import { IntOrigin, NotCalibratedError, QuantBits, quantized, readBuf, registerIntLayer, scalarBuffer, writeBuf } from './intLayers';

type Rec = Record<string, Buffer>;
const floatBuffer = () => scalarBuffer('float32');
const intBuffer = () => scalarBuffer('int32');

/** Python's round(): half to even. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
/** 2^round(log2(B/m)), m = 0 → 1 (the OSR's scale of a max or running max). */
function osrScale(m: number, bits: number): number {
  return m > 0 ? 2 ** roundHalfEven(Math.log2(qmax(bits) / m)) : 1;
}

function operandScale(m: Module, t: Tensor): number {
  if (t.quantScale !== undefined) return t.quantScale;
  throw new ModuleError(m, 'an operand does not come from a quantized layer (it has no scale); quantize its producer or disable quantization of this op');
}

/** Keys a dict from before init lacks; they restart from zero. */
function resetKeys(sd: Map<string, Tensor>, prefix: string, from: Stage, keys: readonly string[], ints: readonly string[] = []): void {
  if (from === 'fixed') return;
  for (const k of keys) if (!sd.has(prefix + k)) sd.set(prefix + k, new Tensor(tf.zeros([], ints.includes(k) ? 'int32' : 'float32')));
}

/** What the iq ops share: linger's buffers `scale_o`, `running_o` (start at 0) and the OSR. */
abstract class IQOp extends quantized(Module) {
  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    (this as unknown as Rec).scale_o = floatBuffer();
    (this as unknown as Rec).running_o = floatBuffer();
  }
  ownKeysAddedAfter(from: Stage): string[] { return from === 'fixed' ? [] : ['scale_o', 'running_o']; }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void { resetKeys(sd, prefix, from, ['scale_o', 'running_o']); }

  /** The OSR: `max` is this rank's max|z| (training only; made whole-batch here). */
  protected osr(max: () => number): number {
    if (this.training) {
      const m = batchMax(max());
      writeBuf(this, 'running_o', 0.9 * readBuf(this, 'running_o') + 0.1 * m);
      return osrScale(m, this.outBits);
    }
    const s = osrScale(this.calibratedRunning(), this.outBits);
    writeBuf(this, 'scale_o', s);
    return s;
  }
  /** running_o, which eval needs (linger asserts it is positive) */
  protected calibratedRunning(): number {
    const r = readBuf(this, 'running_o');
    if (!(r > 0)) throw new NotCalibratedError(this, 'running_o');
    return r;
  }
}

/** Two operands in one physical layout (the engine's broadcasting rules for binary ops). */
function commonLayout(a: Tensor, b: Tensor): { x: tf.Tensor; y: tf.Tensor; perm: readonly number[] | null } {
  const same = (a.perm ?? []).join() === (b.perm ?? []).join();
  if (same && a.rank === b.rank) return { x: a.raw, y: b.raw, perm: a.perm };
  if (b.size === 1 && !b.perm) return { x: a.raw, y: tf.reshape(b.raw, []), perm: a.perm };
  if (a.size === 1 && !a.perm) return { x: tf.reshape(a.raw, []), y: b.raw, perm: b.perm };
  if (a.rank === b.rank && a.perm) return { x: a.raw, y: b.physical(a.perm), perm: a.perm };
  return { x: a.logical(), y: b.logical(), perm: null };
}

/** int32 codes of a value that carries scale s (exact: the value is q/s). */
const codesOf = (v: tf.Tensor, s: number) => tf.cast(tf.round(tf.mul(v, s)), 'int32');

/** The scales an iqMul uses: y's (adjusted so that s_x·s_y ≥ s_z), and its code when y is a number. */
interface MulScales { sx: number; sy: number; syAdjusted: number; sz: number; constant?: { value: number; code: number; adjustedCode: number } }

/** iqMul's scales for x at s_x, y (quantized tensor or number) and output scale s_z (also used by export). */
export function mulScales(sx: number, y: Tensor | number, sz: number, dataBits: number): MulScales {
  const bd = qmax(dataBits);
  const code = (v: number, s: number) => Math.min(bd, Math.max(-bd - 1, Math.floor(v * s + 0.5)));
  let sy: number;
  let c: number | null = null;
  if (typeof y === 'number') {
    c = Math.fround(y);
    sy = trainScale(Math.abs(c), dataBits); // dyn(c): an all-zero constant gets 2^bits
  } else {
    if (y.quantScale === undefined) throw new Error('internal: iqMul operand without a scale');
    sy = y.quantScale;
  }
  // requantize y when the product's scale is below the output's (powers of two: exact comparison)
  const syAdjusted = sx * sy < sz ? sz / sx : sy;
  if (c === null) return { sx, sy, syAdjusted, sz };
  const q = code(c, sy);
  // the forward requantizes the dequantized constant q/s_y; linger's export quantizes c itself (thinker)
  return { sx, sy, syAdjusted, sz, constant: { value: c, code: code(q / sy, syAdjusted), adjustedCode: code(c, syAdjusted) } };
}

/**
 * linger's iqMul: y a quantized tensor or a number (quantized at 2^⌊log2(B/|c|)⌋). If
 * s_x·s_y < s_z, y is requantized at s_y := s_z/s_x (it may saturate); then
 * z = clamp(⌊x_i·y_i·s_z/(s_x·s_y) + 1/2⌋, −B−1, B)/s_z, the product in int32.
 */
export class IQMul extends IQOp {
  forward(x: Tensor, y: Tensor | number): Tensor {
    const sx = operandScale(this, x);
    if (typeof y !== 'number') operandScale(this, y);
    const bd = qmax(this.dataBits);
    let xr: tf.Tensor, yr: tf.Tensor | number, perm: readonly number[] | null;
    if (typeof y === 'number') {
      const c = Math.fround(y);
      const sy = trainScale(Math.abs(c), this.dataBits);
      xr = x.raw; perm = x.perm;
      yr = Math.min(bd, Math.max(-bd - 1, Math.floor(c * sy + 0.5))) / sy; // the quantized constant
    } else {
      ({ x: xr, y: yr, perm } = commonLayout(x, y));
    }
    const rawY = typeof y === 'number' ? Math.fround(y) : yr;
    const sz = this.osr(() => tf.tidy(() => maxAbs(tf.mul(xr, rawY))));
    const sc = mulScales(sx, y, sz, this.dataBits);
    const k = floorLog2(sz) - floorLog2(sx) - floorLog2(sc.syAdjusted); // ≤ 0
    const value = () => {
      const xi = codesOf(xr, sx);
      const yi = sc.constant ? tf.scalar(sc.constant.code, 'int32')
        : tf.cast(tf.clipByValue(tf.floor(tf.add(tf.mul(yr as tf.Tensor, sc.syAdjusted), 0.5)), -bd - 1, bd), 'int32');
      return tf.div(tf.cast(requantize(tf.mul(xi, yi), k, this.outBits), 'float32'), sz);
    };
    return new Tensor(this.training ? K.straightThrough(tf.mul(xr, yr), value) : value(), perm, sz);
  }
}

export interface SumOptions { dim?: number | number[]; keepdim?: boolean }

/** linger's iqSum: z = clamp(⌊Σx·s_z + 1/2⌋, −B−1, B)/s_z, the sum of codes in int32. */
export class IQSum extends IQOp {
  forward(x: Tensor, opts: SumOptions = {}): Tensor {
    const sx = operandScale(this, x);
    const xl = x.logical();
    const axes = opts.dim === undefined ? Array.from({ length: x.rank }, (_, i) => i)
      : (Array.isArray(opts.dim) ? opts.dim : [opts.dim]).map((d) => normAxis(d, x.rank));
    const keep = opts.dim !== undefined && (opts.keepdim ?? false);
    const sz = this.osr(() => tf.tidy(() => maxAbs(tf.sum(xl, axes, keep))));
    const k = floorLog2(sz) - floorLog2(sx);
    const value = () => tf.div(tf.cast(requantize(tf.sum(codesOf(xl, sx), axes, keep), k, this.outBits), 'float32'), sz);
    return new Tensor(this.training ? K.straightThrough(tf.sum(xl, axes, keep), value) : value(), null, sz);
  }
}

/**
 * iqSigmoid/iqTanh: x requantized exactly to 16 bits at s16 = 256·s_x, then to Q11:
 * x11 = q16·2^l (l = 11 − log2 s16 > 0) or ⌊q16·2^l + 1/2⌋; the integer activation (intActivation.ts)
 * gives Q7 codes; the output scale is fixed at 128 (scale_o := 128, running_o := 1 as linger).
 */
abstract class IQActivation extends IQOp {
  protected abstract q7(x11: tf.Tensor): tf.Tensor;
  protected abstract float(x: tf.Tensor): tf.Tensor;
  forward(x: Tensor): Tensor {
    const sx = operandScale(this, x);
    if (!this.training) this.calibratedRunning(); // linger asserts a trained running_o even here
    writeBuf(this, 'running_o', 1);
    writeBuf(this, 'scale_o', 128);
    const s16 = 256 * sx;
    const l = 11 - floorLog2(s16);
    const value = () => {
      const q16 = tf.clipByValue(tf.floor(tf.add(tf.mul(x.raw, s16), 0.5)), -32768, 32767);
      const x11 = l > 0 ? tf.mul(q16, 2 ** l) : tf.floor(tf.add(tf.mul(q16, 2 ** l), 0.5));
      return tf.div(tf.cast(this.q7(x11), 'float32'), 128);
    };
    return new Tensor(this.training ? K.straightThrough(this.float(x.raw), value) : value(), x.perm, 128);
  }
}
export class IQSigmoid extends IQActivation {
  protected q7(x11: tf.Tensor): tf.Tensor { return sigmoidQ7(x11); }
  protected float(x: tf.Tensor): tf.Tensor { return tf.sigmoid(x); }
}
export class IQTanh extends IQActivation {
  protected q7(x11: tf.Tensor): tf.Tensor { return tanhQ7(x11); }
  protected float(x: tf.Tensor): tf.Tensor { return tf.tanh(x); }
}

/**
 * linger's iqClamp: only bounds with a power-of-two s_o = B/max and min ∈ {0, −8} (linger asserts
 * them; `IQClamp.supports`). y = ⌊x·s_o + 1/2⌋, clamped to [0, B] if min = 0, then to [−B−1, B];
 * ÷ s_o (so the lower bound is really −128/s_o). running_o follows the OSR (eval requires it).
 */
export class IQClamp extends IQOp {
  constructor(bits: QuantBits, readonly min: number, readonly max: number) {
    super(bits);
    if (!IQClamp.supports(min, max, bits.outBits)) {
      throw new Error(`iqClamp: clamp(${min}, ${max}) is not supported: max must be ${qmax(bits.outBits)}/2^n and min 0 or −8 (linger's luna_quant rule)`);
    }
  }
  static supports(min: number | null | undefined, max: number | null | undefined, bits = 8): boolean {
    if (typeof min !== 'number' || typeof max !== 'number' || !(max > 0)) return false;
    return Number.isInteger(Math.log2(qmax(bits) / max)) && (min === 0 || min === -8);
  }
  get scaleOut(): number { return qmax(this.outBits) / this.max; }
  forward(x: Tensor): Tensor {
    operandScale(this, x);
    if (this.training) {
      const m = batchMax(tf.tidy(() => maxAbs(tf.clipByValue(x.raw, this.min, this.max))));
      writeBuf(this, 'running_o', 0.9 * readBuf(this, 'running_o') + 0.1 * m);
    } else this.calibratedRunning();
    const so = this.scaleOut;
    writeBuf(this, 'scale_o', so);
    const b = qmax(this.outBits);
    const value = () => {
      const y = tf.floor(tf.add(tf.mul(x.raw, so), 0.5));
      return tf.div(tf.clipByValue(y, this.min === 0 ? 0 : -b - 1, b), so);
    };
    return new Tensor(this.training ? K.straightThrough(tf.clipByValue(x.raw, this.min, this.max), value) : value(), x.perm, so);
  }
  extraRepr(): string { return `min=${this.min}, max=${this.max}`; }
}

const RELU6_KEYS = ['running_x', 'scale_x', 'min_thresh', 'max_thresh'] as const;
/**
 * linger's ReLU6Int: x quantized at s (the IQTensor's, else 2^⌊log2(B/max|x|)⌋ in training with
 * running_x ← ema(B/s), 2^round(log2(B/running_x)) in eval); M = min(round(6s), B);
 * y = clamp(q, 0, M)/s, carrying s. Buffers running_x, scale_x, min_thresh (0), max_thresh (M)
 * (the thresholds int32 here, int8 in linger).
 */
export class ReLU6Int extends quantized(Module) {
  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    const r = this as unknown as Rec;
    r.running_x = floatBuffer();
    r.scale_x = floatBuffer();
    r.min_thresh = intBuffer();
    r.max_thresh = intBuffer();
  }
  static from(_m: ReLU6, o: IntOrigin): ReLU6Int {
    return new ReLU6Int({ dataBits: o.dataBits, parameterBits: o.parameterBits, outBits: o.outBits });
  }
  ownKeysAddedAfter(from: Stage): string[] { return from === 'fixed' ? [] : [...RELU6_KEYS]; }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void { resetKeys(sd, prefix, from, RELU6_KEYS, ['min_thresh', 'max_thresh']); }
  extraRepr(): string { return ''; }

  forward(x: Tensor): Tensor {
    const b = qmax(this.dataBits);
    let s: number;
    if (x.quantScale !== undefined) {
      s = x.quantScale;
      writeBuf(this, 'running_x', b / s); // the IQTensor's running value
    } else if (this.training) {
      s = trainScale(batchMax(maxAbs(x.raw)), this.dataBits);
      writeBuf(this, 'running_x', updatedRunning(readBuf(this, 'running_x'), s, this.dataBits));
    } else {
      const r = readBuf(this, 'running_x');
      if (!(r > 0)) throw new NotCalibratedError(this, 'running_x');
      s = evalScale(r, this.dataBits);
    }
    writeBuf(this, 'scale_x', s);
    const M = Math.min(roundHalfEven(6 * s), b);
    writeBuf(this, 'max_thresh', M);
    const carried = x.quantScale !== undefined;
    const value = () => {
      const q = carried ? tf.round(tf.mul(x.raw, s)) : tf.clipByValue(tf.floor(tf.add(tf.mul(x.raw, s), 0.5)), -b - 1, b);
      return tf.div(tf.clipByValue(q, 0, M), s);
    };
    if (!this.training) return new Tensor(value(), x.perm, s);
    // gradient: the fake-quantized input's (zero where it saturates), then hardtanh(0, 6)'s
    const xq = carried ? x.raw : fakeQuant(x.raw, s, this.dataBits);
    return new Tensor(K.straightThrough(tf.clipByValue(xq, 0, 6), value), x.perm, s);
  }
}

for (const c of [IQMul, IQSum, IQSigmoid, IQTanh, IQClamp, ReLU6Int]) registerIntLayer(c);

/** The element-wise iq op layers of this file. */
export type IQElementwise = IQMul | IQSum | IQSigmoid | IQTanh | IQClamp;
export function isIqOp(m: Module): m is IQElementwise | ReLU6Int {
  return m instanceof IQMul || m instanceof IQSum || m instanceof IQSigmoid || m instanceof IQTanh || m instanceof IQClamp || m instanceof ReLU6Int;
}
