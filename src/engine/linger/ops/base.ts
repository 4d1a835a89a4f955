// What every fixed-stage (Int) layer shares: its bits, the ahead-ReLU mark and normalize clamps,
// linger's quantizer buffers, the scale of an input and of an output, printing, the fixed stage and
// the state-dict migration from earlier stages — one base for all Int layers (docs/fixed-point.md,
// docs/linger-ops.md for the formulas).
import { tf } from '../../backend/tf';
import { ModuleClass } from '../../nn/classTable';
import { Buffer, capturingForExport, Module, ModuleError, Parameter, parameterFrom } from '../../nn/module';
import { pyBool, pyFloat } from '../../nn/repr';
import { batchMax } from '../../backend/shard';
import { emaF32, evalScale, fakeQuant, maxAbs, maxPositive, quantizeCodes, trainScale, updatedRunning } from '../../quant/qvalue';
import { Stage } from '../../state/stateDict';
import { Tensor } from '../../tensor';

export type { ModuleClass } from '../../nn/classTable';

export interface QuantBits {
  dataBits: number;
  parameterBits: number;
  outBits: number;
}

/** What every quantized layer shares: its bits, the ahead-ReLU mark, clamps, quantizer buffers. */
export interface IntLayer extends QuantBits {
  aheadRelu: boolean;
  normalizeData: number | null;
  normalizeWeight: number | null;
  normalizeBias: number | null;
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

/** Eval (or export) of a layer that has never seen data. */
export class NotCalibratedError extends ModuleError {
  constructor(m: Module, what: string) {
    super(
      m,
      `no data statistics yet (${what} = 0): train in the fixed stage or run linger.calibrate(model, batches) before eval or export`,
      'NotCalibratedError',
    );
  }
}

/** The conv/linear/BN/pool layers' buffers, in linger's order. */
export const QUANT_BUFFERS = ['running_x', 'running_w', 'running_o', 'scale_x', 'scale_w', 'scale_o'] as const;

/** A quantizer buffer: one number of shape [1] (linger's torch.zeros(1)), 0 until data is seen. */
export const scalarBuffer = (dtype: 'float32' | 'int32' = 'float32', shape: number[] = [1]) =>
  parameterFrom(dtype === 'int32' ? new Int32Array(1) : new Float32Array(1), shape, null, dtype, false) as Buffer;

/** A quantizer buffer's value (every Int layer's buffers are scalars named as linger names them). */
export function readBuf(m: Module, k: string): number {
  return (m as unknown as Record<string, Buffer>)[k].raw.dataSync()[0];
}
export function writeBuf(m: Module, k: string, v: number): void {
  const b = (m as unknown as Record<string, Buffer>)[k];
  b.raw.assign(tf.tensor(v, b.raw.shape, b.raw.dtype as 'float32' | 'int32'));
}
/**
 * linger's iq ops' running max in training: local scale s = f32(B/max) (1 for max = 0), then
 * running_o ← f32(f32(running_o·0.9) + f32(0.1·B/s)), numpy's float32 arithmetic
 * (docs/fixed-point.md#conformance-with-linger-111).
 */
export function iqRunning(running: number, max: number, bits: number): number {
  const b = qmaxOf(bits);
  return emaF32(running, b / (max > 0 ? Math.fround(b / max) : 1));
}

let recordingScales = 0;
/**
 * Runs `fn` with the Int layers' eval scales recorded in their scale_* buffers, as the ONNX capture
 * records them (the quantization report reads them this way).
 */
export function withRecordedScales<T>(fn: () => T): T {
  recordingScales++;
  try {
    return fn();
  } finally {
    recordingScales--;
  }
}

/**
 * A layer's eval scale into its scale_* buffer, only while exporting (or under withRecordedScales):
 * linger's Conv/Linear/BatchNorm Int layers fill scale_x/scale_w/scale_o only then, never in training
 * nor in a plain eval (docs/fixed-point.md#conformance-with-linger-111).
 */
export function writeExportScale(m: Module & { training: boolean }, k: string, v: number): void {
  if (capturingForExport() || recordingScales > 0) writeBuf(m, k, v);
}

/** An iq op's output scale into scale_o in eval (linger's iqAdd/iqCat layers fill it in every eval call). */
export function writeEvalScale(m: Module & { training: boolean }, k: string, v: number): void {
  if (!m.training || capturingForExport()) writeBuf(m, k, v);
}

/**
 * The scale of an input: carried from an Int layer (IQTensor), or chosen from data/statistics —
 * in training 2^⌊log2(B/max|x|)⌋ over the whole batch (`running` ← its EMA), in eval from `running`.
 * A carried scale s is recorded as linger records it, in training and eval: `running` ← B/s and
 * scale_x ← s (docs/fixed-point.md#conformance-with-linger-111).
 */
export function inputScale(
  m: Module & IntLayer,
  x: Tensor,
  running = 'running_x',
  scaleKey: string | null = running === 'running_x' ? 'scale_x' : null,
): number {
  if (x.quantScale !== undefined) {
    writeBuf(m, running, Math.fround(qmaxOf(m.dataBits) / x.quantScale));
    if (scaleKey) writeBuf(m, scaleKey, x.quantScale);
    return x.quantScale;
  }
  if (m.training) {
    const s = trainScale(batchMax(maxAbs(x.raw)), m.dataBits);
    writeBuf(m, running, updatedRunning(readBuf(m, running), s, m.dataBits));
    return s;
  }
  const r = readBuf(m, running);
  if (!(r > 0)) throw new NotCalibratedError(m, running);
  const s = evalScale(r, m.dataBits);
  if (scaleKey) writeExportScale(m, scaleKey, s);
  return s;
}
const qmaxOf = (bits: number) => 2 ** (bits - 1) - 1;
/** a clamp as linger prints it: None, an integer as a Python int (8), else a Python float */
const pySetting = (v: number | null) => (v === null ? 'None' : Number.isInteger(v) ? String(v) : pyFloat(v));

/** Output scale: from the batch `y` in training (positive range with ahead-ReLU), else running_o. */
export function outputScale(m: Module & IntLayer, y: tf.Tensor | null): number {
  if (m.training && y) {
    const s = trainScale(batchMax(m.aheadRelu ? maxPositive(y) : maxAbs(y)), m.outBits);
    writeBuf(m, 'running_o', updatedRunning(readBuf(m, 'running_o'), s, m.outBits));
    return s;
  }
  const r = readBuf(m, 'running_o');
  if (!(r > 0)) throw new NotCalibratedError(m, 'running_o');
  const s = evalScale(r, m.outBits);
  writeExportScale(m, 'scale_o', s);
  return s;
}

/** The input as dequantized codes: x itself when it carries a scale, else quantized here. */
export function quantizedInput(m: Module & IntLayer, x: Tensor, sx: number): tf.Tensor {
  if (x.quantScale !== undefined) return x.raw;
  return m.training ? fakeQuant(x.raw, sx, m.dataBits) : tf.div(quantizeCodes(x.raw, sx, m.dataBits), sx);
}

/** The scale an operand of an element-wise op carries (it must come from a quantized layer). */
export function operandScale(m: Module, t: Tensor): number {
  if (t.quantScale !== undefined) return t.quantScale;
  throw new ModuleError(
    m,
    'an operand does not come from a quantized layer (it has no scale); quantize its producer or disable quantization of this op',
  );
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

/**
 * Takes the old layer's Parameters and buffers (the same objects: an optimizer built before init
 * keeps them), or folded values as new Parameters.
 */
export function takeParams(to: Module, from: Module, weights?: { w: tf.Tensor; b: tf.Tensor }): void {
  const t = to as unknown as Record<string, unknown>;
  if (weights) {
    const w = t.weight as Parameter,
      b = t.bias as Parameter;
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

/**
 * The one base of every Int layer, mixed into the float layer it extends (which keeps shapes,
 * parameters and printing): bits, ahead-ReLU mark and clamps, linger's buffers (`quantKeys`, int32
 * where `intQuantKeys` says), printing (the layer's repr, then its bits), the fixed stage, and the
 * migration of dicts from earlier stages (their quantizer statistics restart from zero).
 */
export function quantized<TBase extends ModuleClass>(Base: TBase) {
  abstract class Quantized extends Base implements IntLayer {
    dataBits = 8;
    parameterBits = 8;
    outBits = 8;
    aheadRelu = false;
    normalizeData: number | null = null;
    normalizeWeight: number | null = null;
    normalizeBias: number | null = null;
    declare fold?: IntOrigin['fold'];
    // linger's quantizer buffers, as the conv/linear/BN/pool layers have them (quantKeys says which a layer has)
    declare running_x: Buffer;
    declare running_w: Buffer;
    declare running_o: Buffer;
    declare scale_x: Buffer;
    declare scale_w: Buffer;
    declare scale_o: Buffer;

    /** linger's buffer names of this layer, in registration order */
    quantKeys(): readonly string[] {
      return QUANT_BUFFERS;
    }
    /** the buffers among them that hold int32 */
    intQuantKeys(): readonly string[] {
      return [];
    }
    /** the buffers among them that linger holds 0-d (ReLU6Int's thresholds), not [1] */
    zeroDimQuantKeys(): readonly string[] {
      return [];
    }
    /** registers the buffers, each 0 until data is seen */
    addQuantBuffers(): void {
      const ints = this.intQuantKeys();
      const zeroDim = this.zeroDimQuantKeys();
      for (const k of this.quantKeys())
        (this as unknown as Record<string, Buffer>)[k] = scalarBuffer(
          ints.includes(k) ? 'int32' : 'float32',
          zeroDim.includes(k) ? [] : [1],
        );
    }
    /** linger's print of the clamps, marks and bits (Conv2dInt/LinearInt's; a layer overrides what differs) */
    bitsRepr(): string {
      return `${this.clampRepr()},ahead_relu:${pyBool(this.aheadRelu)},ahead_sigmoid:False,data_bits:${this.dataBits},parameter_bits:${this.parameterBits},o_bits:${this.outBits}`;
    }
    clampRepr(): string {
      return `clamp_data:${pySetting(this.normalizeData)},clamp_weight:${pySetting(this.normalizeWeight)},clamp_bias:${pySetting(this.normalizeBias)}`;
    }
    extraRepr(): string {
      const base = super.extraRepr();
      return base ? `${base},${this.bitsRepr()}` : '';
    }
    moduleStage(): Stage {
      return 'fixed';
    }
    ownKeysAddedAfter(from: Stage): string[] {
      return from === 'fixed' ? [] : [...this.quantKeys()];
    }
    migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
      super.migrateState(sd, prefix, from);
      const zeroDim = this.zeroDimQuantKeys();
      migrateScalarBuffers(
        sd,
        prefix,
        this.quantKeys().filter((k) => !zeroDim.includes(k)),
      );
      // a 0-d buffer an earlier checkpoint of ours held as [1]: read as linger's 0-d
      for (const k of zeroDim) {
        const t = sd.get(prefix + k);
        if (t && t.rank === 1 && t.size === 1) sd.set(prefix + k, new Tensor(tf.reshape(t.raw, [])));
      }
      if (from === 'fixed') return;
      const ints = this.intQuantKeys();
      for (const k of this.quantKeys())
        if (!sd.has(prefix + k))
          sd.set(prefix + k, new Tensor(tf.zeros(zeroDim.includes(k) ? [] : [1], ints.includes(k) ? 'int32' : 'float32')));
    }
  }
  return Quantized;
}

let warnedScalarBuffers = false;
/**
 * Checkpoints of ours before linger conformance held the quantizer buffers as 0-d tensors; linger's
 * are [1]. Such entries are reshaped when a dict loads (said once per process).
 */
export function migrateScalarBuffers(sd: Map<string, Tensor>, prefix: string, keys: readonly string[]): void {
  for (const k of keys) {
    const t = sd.get(prefix + k);
    if (!t || t.rank !== 0) continue;
    if (!warnedScalarBuffers) {
      warnedScalarBuffers = true;
      console.warn(
        `linger: this state dict holds the quantizer buffers as 0-d tensors (${prefix + k}), an earlier format of ours; they are read as linger's shape [1]`,
      );
    }
    sd.set(prefix + k, new Tensor(tf.reshape(t.raw, [1])));
  }
}

/** Integer codes of x at scale s as float32, logical order (an IQTensor's are exact already). */
export function codesAt(x: Tensor, s: number, bits: number): tf.Tensor {
  return x.quantScale !== undefined ? tf.round(tf.mul(x.logical(), s)) : quantizeCodes(x.logical(), s, bits);
}

/** Fake-quantized x, logical order: an IQTensor as it is. */
export function fakeQuantLogical(x: Tensor, s: number, bits: number): tf.Tensor {
  return x.quantScale !== undefined ? x.logical() : fakeQuant(x.logical(), s, bits);
}

/** The scales a layer recorded for an exported call (an error when it never ran in eval). */
export function recordedScales(c: { scales?: { x?: number; w?: number; y?: number; o?: number } }): {
  x?: number;
  w?: number;
  y?: number;
  o: number;
} {
  const s = c.scales ?? {};
  if (!s.o) throw new Error('its scales were not recorded (was the layer run in eval after calibration?)');
  return { ...s, o: s.o };
}
