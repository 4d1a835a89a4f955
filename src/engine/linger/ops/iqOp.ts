// What linger's element-wise iq ops share (iqMul, iqSum, iqSigmoid, iqTanh, iqClamp; each in its
// own folder): operands are quantized tensors (IQTensors: values q/s with a carried power-of-two
// scale); training runs the same integer formula as eval on the fake-quantized values, with
// straight-through gradients of the float op; eval is integer-exact (docs/linger-ops.md).
//
// Output scale rule (OSR) of iqMul/iqSum/iqClamp's statistics:
//   training  m = max|z| of the float result (whole batch, batchMax), running_o ← 0.9·running_o + 0.1·m
//             (the raw max), s_z = 2^round(log2(B/m)) (m = 0 → 1);
//   eval      s_z = 2^round(log2(B/running_o)); running_o = 0 is NotCalibratedError. Only eval writes scale_o.
import { tf } from '../../backend/tf';
import { batchMax } from '../../backend/shard';
import { qmax } from '../../quant/qvalue';
import { Module } from '../../nn/module';
import { Tensor } from '../../tensor';
import { iqRunning, NotCalibratedError, QuantBits, quantized, readBuf, writeBuf } from './base';
import type { CapturedCall } from '../../onnx/capture';

/** linger's buffers of the iq ops: the output scale and its running statistic (OSR). */
const IQ_KEYS = ['scale_o', 'running_o'] as const;

/** Python's round(): half to even. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
/** 2^round(log2(B/m)), m = 0 → 1 (the OSR's scale of a max or running max). */
export function osrScale(m: number, bits: number): number {
  return m > 0 ? 2 ** roundHalfEven(Math.log2(qmax(bits) / m)) : 1;
}

/** What the iq ops share: linger's buffers `scale_o`, `running_o` (start at 0) and the OSR. */
export abstract class IQOp extends quantized(Module) {
  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    this.addQuantBuffers();
  }
  quantKeys(): readonly string[] {
    return IQ_KEYS;
  }

  /** The OSR: `max` is this rank's max|z| (training only; made whole-batch here). */
  protected osr(max: () => number): number {
    if (this.training) {
      const m = batchMax(max());
      writeBuf(this, 'running_o', iqRunning(readBuf(this, 'running_o'), m, this.outBits));
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
export function commonLayout(a: Tensor, b: Tensor): { x: tf.Tensor; y: tf.Tensor; perm: readonly number[] | null } {
  const same = (a.perm ?? []).join() === (b.perm ?? []).join();
  if (same && a.rank === b.rank) return { x: a.raw, y: b.raw, perm: a.perm };
  if (b.size === 1 && !b.perm) return { x: a.raw, y: tf.reshape(b.raw, []), perm: a.perm };
  if (a.size === 1 && !a.perm) return { x: tf.reshape(a.raw, []), y: b.raw, perm: b.perm };
  if (a.rank === b.rank && a.perm) return { x: a.raw, y: b.physical(a.perm), perm: a.perm };
  return { x: a.logical(), y: b.logical(), perm: null };
}

/** int32 codes of a value that carries scale s (exact: the value is q/s). */
export const codesOf = (v: tf.Tensor, s: number) => tf.cast(tf.round(tf.mul(v, s)), 'int32');

/** The input, its scale and the recorded output scale of an iq op's captured call (export). */
export function iqOperands(c: CapturedCall): { x: Tensor; sx: number; sz: number } {
  const sz = c.scales?.o;
  if (!sz) throw new Error('no output scale was recorded');
  const x = c.inputs[0] as Tensor;
  const sx = x.quantScale;
  if (sx === undefined) throw new Error('its input carries no scale');
  return { x, sx, sz };
}
