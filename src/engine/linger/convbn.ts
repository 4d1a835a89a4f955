// Conv+BN fusion, linger's way (docs/contract.md#convbn-fusion): fused in forward, not fused in backward.
import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { wholeBatchCount } from '../backend/shard';
import { Tensor } from '../tensor';
import { BatchNorm1d, BatchNorm2d, BatchNormNd } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvNd, ConvTranspose2d } from '../nn/conv';
import { channelsLast } from '../nn/layout';
import { Buffer, Module } from '../nn/module';
import { Stage } from '../state/stateDict';
import { clampSym, NormalizeSettings, settingsRepr } from './normalize';

/**
 * A conv and the BN that consumed its output, as one layer. In training:
 *   c = conv(x, W) + b, with batch mean μ and biased variance σ² per channel (running stats
 *   updated as PyTorch does); y_u = γ(c − μ)/√(σ²+ε) + β (the unfused path);
 *   s = γ/√(σ²+ε), W' = clampW(W·s) per output channel, b' = clampB((b − μ)·s + β),
 *   y_f = conv(x, W') + b' (what the chip computes);
 *   y = y_f in value, with y_u's gradient (so W, b, γ, β learn as in conv→BN).
 * When the weight/bias clamps change nothing this step, y_f = y_u up to rounding, so the second
 * conv is skipped.
 * In eval: the running statistics fold into W', b' and one conv runs. Then clampData.
 */
export abstract class NormalizeConvBNBase<C extends ConvNd = ConvNd, B extends BatchNormNd = BatchNormNd>
  extends Module
  implements NormalizeSettings
{
  conv: C;
  bn: B;
  normalizeData: number | null = null;
  normalizeWeight: number | null = null;
  normalizeBias: number | null = null;
  aheadRelu = false;

  constructor(conv: C, bn: B, where?: { path: string; bnPath: string }) {
    super();
    if (bn.numFeatures !== conv.outChannels) {
      throw new Error(`${this.typeName()}: the BN has ${bn.numFeatures} channels, the conv ${conv.outChannels} outputs`);
    }
    if (!bn.affine || !bn.trackRunningStats) {
      throw new Error(`${this.typeName()}: only a BN with affine=True and running statistics can be fused`);
    }
    this.conv = conv;
    this.bn = bn;
    // where the pair sat in the float model, to move float state-dict keys forward
    Object.defineProperty(this, 'origin', { value: where, enumerable: false, writable: true });
  }
  declare origin?: { path: string; bnPath: string };
  /** The tracer records this as one node; its children are an implementation detail. */
  get traceAsLeaf(): boolean {
    return true;
  }

  /** W·s with s [out] applied to each output channel of this conv's physical weight. */
  abstract scaleWeight(w: tf.Tensor, s: tf.Tensor): tf.Tensor;

  /** W' and b' folded from a scale s = γ/√(var+ε) and a mean, clamped. */
  fold(mean: tf.Tensor, variance: tf.Tensor): { w: tf.Tensor; b: tf.Tensor } {
    const gamma = this.bn.weight!.raw;
    const beta = this.bn.bias!.raw;
    const s = tf.mul(gamma, tf.rsqrt(tf.add(variance, this.bn.eps)));
    const w = clampSym(this.scaleWeight(this.conv.weight.raw, s), this.normalizeWeight);
    const b0 = this.conv.bias ? tf.sub(this.conv.bias.raw, mean) : tf.neg(mean);
    const b = clampSym(tf.add(tf.mul(b0, s), beta), this.normalizeBias);
    return { w, b };
  }

  /**
   * Would the weight/bias clamps change the folded values this step? If not, y_f = y_u up to
   * rounding and the second conv is skipped (two small host reads instead of a conv).
   */
  clampsBite(mean: tf.Tensor, variance: tf.Tensor): boolean {
    if (this.normalizeWeight === null && this.normalizeBias === null) return false;
    return tf.tidy(() => {
      const s = tf.mul(this.bn.weight!.raw, tf.rsqrt(tf.add(variance, this.bn.eps)));
      if (this.normalizeWeight !== null) {
        const w = this.scaleWeight(this.conv.weight.raw, s);
        if (tf.max(tf.abs(w)).dataSync()[0] > this.normalizeWeight) return true;
      }
      if (this.normalizeBias !== null) {
        const b0 = this.conv.bias ? tf.sub(this.conv.bias.raw, mean) : tf.neg(mean);
        if (tf.max(tf.abs(tf.add(tf.mul(b0, s), this.bn.bias!.raw))).dataSync()[0] > this.normalizeBias) return true;
      }
      return false;
    });
  }

  /** The fused weight and bias with the running statistics (what eval, init and export use). */
  foldedWithRunningStats(): { w: tf.Tensor; b: tf.Tensor } {
    return this.fold(this.bn.running_mean!.raw, this.bn.running_var!.raw);
  }

  forward(x: Tensor): Tensor {
    this.conv.checkInput(x);
    let y: tf.Tensor;
    let layout: number[] | null;
    if (this.training) {
      const c = this.conv.convWith(x, this.conv.weight.raw, this.conv.bias?.raw ?? null);
      layout = channelsLast(c.rank);
      const cr = c.physical(layout);
      const count = wholeBatchCount(cr.size / cr.shape[cr.rank - 1]);
      if (count <= 1)
        throw new Error(
          `${this.typeName()}: expected more than 1 value per channel when training, got input shape [${x.shape.join(', ')}]`,
        );
      const r = K.batchNormTrain(cr, this.bn.weight!.raw as tf.Tensor1D, this.bn.bias!.raw as tf.Tensor1D, this.bn.eps);
      try {
        this.bn.updateRunningStats(r.mean, r.variance, count);
        y = this.clampsBite(r.mean, r.variance)
          ? K.straightThrough(r.y, () => {
              const { w, b } = this.fold(r.mean, r.variance);
              return this.conv.convWith(x, w, b).physical(layout);
            })
          : r.y;
      } finally {
        r.mean.dispose();
        r.variance.dispose();
      }
    } else {
      const { w, b } = this.foldedWithRunningStats();
      const out = this.conv.convWith(x, w, b);
      layout = channelsLast(out.rank);
      y = out.physical(layout);
    }
    return new Tensor(clampSym(y, this.normalizeData), layout);
  }

  /** Float dicts name the pair `<conv>.weight`, `<bn>.running_mean`…; here they are `conv.*`, `bn.*`. */
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    if (from !== 'float' || !this.origin) return;
    const own = this.origin.path + '.';
    const root = prefix.endsWith(own)
      ? prefix.slice(0, prefix.length - own.length)
      : prefix.slice(0, prefix.lastIndexOf('.', prefix.length - 2) + 1);
    const move = (a: string, b: string) => {
      const v = sd.get(a);
      if (v && !sd.has(b)) {
        sd.delete(a);
        sd.set(b, v);
      }
    };
    move(`${prefix}weight`, `${prefix}conv.weight`);
    move(`${prefix}bias`, `${prefix}conv.bias`);
    for (const k of ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']) {
      move(`${root}${this.origin.bnPath}.${k}`, `${prefix}bn.${k}`);
    }
  }

  extraRepr(): string {
    return settingsRepr(this);
  }
  moduleStage(): Stage {
    return 'traced';
  }
}

export class NormalizeConvBN2d extends NormalizeConvBNBase<Conv2d, BatchNorm2d> {
  scaleWeight(w: tf.Tensor, s: tf.Tensor): tf.Tensor {
    return tf.mul(w, s);
  } // HWIO: out is last
}

export class NormalizeConvBN1d extends NormalizeConvBNBase<Conv1d, BatchNorm1d> {
  scaleWeight(w: tf.Tensor, s: tf.Tensor): tf.Tensor {
    return tf.mul(w, s);
  } // [k, in, out]
}

export class NormalizeConvTransposeBN2d extends NormalizeConvBNBase<ConvTranspose2d, BatchNorm2d> {
  /** Weight [in, out/g, kH, kW]: output channel g·(out/g) + j is dim 1 index j of group g's rows. */
  scaleWeight(w: tf.Tensor, s: tf.Tensor): tf.Tensor {
    const g = this.conv.groups;
    const [inC, outG] = w.shape;
    const perRow = tf.reshape(tf.tile(tf.reshape(s, [g, 1, outG]), [1, inC / g, 1]), [inC, outG, 1, 1]);
    return tf.mul(w, perRow);
  }
}

/**
 * Stands where a fused BN was: identity. As linger's, it holds `_linger_ignore_parameter` (zeros
 * [1], a state-dict key) and loads nothing: a dict with or without that key fits. linger's is an
 * unused nn.Parameter; here a buffer, so that optimizers made before traceLayers still cover every
 * parameter (docs/fixed-point.md#conformance-with-linger-111).
 */
export class EmptyBatchNorm extends Module {
  _linger_ignore_parameter = new Buffer(tf.zeros([1]));
  forward(x: Tensor): Tensor {
    return x;
  }
  moduleStage(): Stage {
    return 'traced';
  }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    super.migrateState(sd, prefix, from);
    sd.set(`${prefix}_linger_ignore_parameter`, new Tensor(tf.zeros([1])));
  }
}
