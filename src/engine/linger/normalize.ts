// Float-stage normalize layers (docs/contract.md#normalize): symmetric clamps on weight, bias and output.
import { tf } from '../backend/tf';
import { tapeActive } from '../backend/kernels';
import { withinMask } from '../quant/qvalue';
import { Tensor } from '../tensor';
import { BatchNorm2d } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvTranspose2d } from '../nn/conv';
import { withoutInit } from '../nn/init';
import { Linear } from '../nn/linear';
import { ClassTable, ModuleClass } from '../nn/classTable';
import { Module } from '../nn/module';
import { pyFloat } from '../nn/repr';
import { Stage } from '../state/stateDict';

/** linger's normalize settings: ±value clamps (null = none) and the ahead-ReLU mark. */
export interface NormalizeSettings {
  normalizeData: number | null;
  normalizeWeight: number | null;
  normalizeBias: number | null;
  aheadRelu: boolean;
}

/**
 * clamp(x, −v, v); gradient straight through inside the range (bounds included), zero outside,
 * as tf.clipByValue's and PyTorch's — with an arithmetic mask (withinMask: the wasm backend's
 * comparisons made clipByValue's own gradient cost ~9 ms on the demo's first activation).
 */
export function clampSym(x: tf.Tensor, v: number | null): tf.Tensor {
  if (v === null) return x;
  if (!tapeActive()) return tf.clipByValue(x, -v, v);
  const f = tf.customGrad(((xv: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xv]);
    return { value: tf.clipByValue(xv, -v, v), gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => tf.mul(dy, withinMask(xs, v)) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor;
}

/** linger prints a setting as Python does: an integer value as an int (8), else a float (0.5) */
export function pyNum(v: number | null): string {
  return v === null ? 'None' : Number.isInteger(v) ? String(v) : pyFloat(v);
}

/** linger's settings text: normalize_data:8,normalize_weight:8,normalize_bias:None,ahead_relu:True */
export function settingsRepr(s: NormalizeSettings): string {
  return `normalize_data:${pyNum(s.normalizeData)},normalize_weight:${pyNum(s.normalizeWeight)},normalize_bias:${pyNum(s.normalizeBias)},ahead_relu:${s.aheadRelu ? 'True' : 'False'}`;
}

/** The ahead-ReLU mark traceLayers put on a module (config only until init). */
export function aheadReluOf(m: Module): boolean {
  return (m as { aheadRelu?: boolean }).aheadRelu === true;
}

/** Applies the settings' fields to a layer (the same four fields on every normalize layer). */
function applySettings(m: NormalizeSettings, s: NormalizeSettings): void {
  m.normalizeData = s.normalizeData;
  m.normalizeWeight = s.normalizeWeight;
  m.normalizeBias = s.normalizeBias;
  m.aheadRelu = s.aheadRelu;
}

/** Moves the old layer's parameters and buffers into the new one (same Parameter objects). */
function adoptState(to: Module, from: Module): void {
  const t = to as unknown as Record<string, unknown>;
  for (const [k, v] of [...from.ownParameters(), ...from.ownBuffers()]) {
    const placeholder = t[k];
    if (placeholder instanceof Tensor) placeholder.dispose();
    t[k] = v;
  }
  for (const k of ['bias', 'weight'] as const) {
    if ((from as unknown as Record<string, unknown>)[k] === null && t[k] instanceof Tensor) {
      (t[k] as Tensor).dispose();
      t[k] = null;
    }
  }
}

/** The forward hooks every layer that normalizeLayers replaces has (nn/conv, linear, batchnorm). */
interface NormalizableHooks {
  effectiveWeight(): tf.Tensor | null;
  effectiveBias(): tf.Tensor | null;
  finishOutput(y: Tensor): Tensor;
  extraRepr(): string;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type LayerClass = abstract new (...args: any[]) => Module & NormalizableHooks;

/**
 * A layer with linger's normalize settings: clamps on its weight, bias and output, its repr
 * followed by the settings, and the traced stage. One definition for every Normalize* layer.
 */
function normalized<TBase extends LayerClass>(Base: TBase) {
  abstract class Normalized extends Base implements NormalizeSettings {
    normalizeData: number | null = null;
    normalizeWeight: number | null = null;
    normalizeBias: number | null = null;
    aheadRelu = false;
    effectiveWeight(): tf.Tensor | null {
      const w = super.effectiveWeight();
      return w && clampSym(w, this.normalizeWeight);
    }
    effectiveBias(): tf.Tensor | null {
      const b = super.effectiveBias();
      return b && clampSym(b, this.normalizeBias);
    }
    finishOutput(y: Tensor): Tensor {
      return new Tensor(clampSym(y.raw, this.normalizeData), y.perm);
    }
    extraRepr(): string {
      return `${super.extraRepr()},${settingsRepr(this)}`;
    }
    moduleStage(): Stage {
      return 'traced';
    }
  }
  return Normalized;
}

/** Builds the replacement without drawing initial values, then hands it the old layer's state. */
function replace<T extends Module & NormalizeSettings>(make: () => T, old: Module, s: NormalizeSettings): T {
  const m = withoutInit(make);
  adoptState(m, old);
  applySettings(m, s);
  return m;
}

export class NormalizeConv2d extends normalized(Conv2d) {
  static from(c: Conv2d, s: NormalizeSettings): NormalizeConv2d {
    return replace(
      () =>
        new NormalizeConv2d(c.inChannels, c.outChannels, c.kernelSize, {
          stride: c.stride,
          padding: c.padding,
          dilation: c.dilation,
          groups: c.groups,
          bias: c.bias !== null,
        }),
      c,
      s,
    );
  }
}

export class NormalizeConv1d extends normalized(Conv1d) {
  static from(c: Conv1d, s: NormalizeSettings): NormalizeConv1d {
    return replace(
      () =>
        new NormalizeConv1d(c.inChannels, c.outChannels, c.kernelSize, {
          stride: c.stride,
          padding: c.padding,
          dilation: c.dilation,
          groups: c.groups,
          bias: c.bias !== null,
        }),
      c,
      s,
    );
  }
}

export class NormalizeConvTranspose2d extends normalized(ConvTranspose2d) {
  /** linger's print: the conv's, then its clamps, without ahead_relu (docs/fixed-point.md#conformance-with-linger-111) */
  extraRepr(): string {
    return `${ConvTranspose2d.prototype.extraRepr.call(this)},${settingsRepr(this).replace(/,ahead_relu:\w+$/, '')}`;
  }
  static from(c: ConvTranspose2d, s: NormalizeSettings): NormalizeConvTranspose2d {
    return replace(
      () =>
        new NormalizeConvTranspose2d(c.inChannels, c.outChannels, c.kernelSize, {
          stride: c.stride,
          padding: c.padding,
          dilation: c.dilation,
          groups: c.groups,
          outputPadding: c.outputPadding,
          bias: c.bias !== null,
        }),
      c,
      s,
    );
  }
}

export class NormalizeLinear extends normalized(Linear) {
  static from(l: Linear, s: NormalizeSettings): NormalizeLinear {
    return replace(() => new NormalizeLinear(l.inFeatures, l.outFeatures, { bias: l.bias !== null }), l, s);
  }
}

export class NormalizeBatchNorm2d extends normalized(BatchNorm2d) {
  /** linger's print: its clamps and mark only, not BatchNorm2d's settings (docs/fixed-point.md#conformance-with-linger-111) */
  extraRepr(): string {
    return settingsRepr(this);
  }
  static from(b: BatchNorm2d, s: NormalizeSettings): NormalizeBatchNorm2d {
    return replace(
      () =>
        new NormalizeBatchNorm2d(b.numFeatures, {
          eps: b.eps,
          momentum: b.momentum,
          affine: b.affine,
          trackRunningStats: b.trackRunningStats,
        }),
      b,
      s,
    );
  }
}

/**
 * What normalizeLayers does to a module, by its nearest registered class: a float layer becomes its
 * Normalize* version (`from`), a Normalize* layer takes the new settings as it is (as does a fused
 * ConvBN of traceLayers, which transforms.ts recognises).
 */
export type NormalizeAction = { from: (m: Module, s: NormalizeSettings) => Module & NormalizeSettings } | { settings: true };
export const NORMALIZE_TABLE = new ClassTable<NormalizeAction>();
for (const [float, normalized] of [
  [Conv2d, NormalizeConv2d],
  [Conv1d, NormalizeConv1d],
  [ConvTranspose2d, NormalizeConvTranspose2d],
  [Linear, NormalizeLinear],
  [BatchNorm2d, NormalizeBatchNorm2d],
] as [ModuleClass, ModuleClass & { from(m: Module, s: NormalizeSettings): Module & NormalizeSettings }][]) {
  NORMALIZE_TABLE.set(float, { from: (m, s) => normalized.from(m, s) });
  NORMALIZE_TABLE.set(normalized, { settings: true });
}

/** True for a layer normalizeLayers replaces or configures (a Normalize* layer included). */
export function isNormalizable(m: Module): boolean {
  return NORMALIZE_TABLE.lookup(m) !== undefined;
}
/** The class names of the Normalize* layers (how a module tree shows normalized layers). */
export const NORMALIZED_TYPE_NAMES: readonly string[] = [
  NormalizeConv2d,
  NormalizeConv1d,
  NormalizeConvTranspose2d,
  NormalizeLinear,
  NormalizeBatchNorm2d,
].map((c) => c.name);
