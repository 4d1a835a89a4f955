import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { wholeBatchCount } from '../backend/shard';
import { Tensor } from '../tensor';
import { Buffer, Module, Parameter, parameterFrom } from './module';
import { channelsLast, expectInput } from './layout';
import { pyBool, pyFloat } from './repr';

export interface BatchNormOptions {
  eps?: number;
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

export abstract class BatchNormNd extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  // PyTorch's names: they are the state-dict keys
  running_mean: Buffer | null;
  running_var: Buffer | null;
  num_batches_tracked: Buffer | null;
  eps: number;
  momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(
    readonly numFeatures: number,
    opts: BatchNormOptions = {},
  ) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    const affine = (this.affine = opts.affine ?? true);
    const track = (this.trackRunningStats = opts.trackRunningStats ?? true);
    this.weight = affine ? parameterFrom(new Float32Array(numFeatures).fill(1), [numFeatures]) : null;
    this.bias = affine ? parameterFrom(new Float32Array(numFeatures), [numFeatures]) : null;
    this.running_mean = track ? (parameterFrom(new Float32Array(numFeatures), [numFeatures], null, 'float32', false) as Buffer) : null;
    this.running_var = track
      ? (parameterFrom(new Float32Array(numFeatures).fill(1), [numFeatures], null, 'float32', false) as Buffer)
      : null;
    this.num_batches_tracked = track ? (parameterFrom(new Int32Array(1), [], null, 'int32', false) as Buffer) : null;
  }

  abstract checkInput(x: Tensor): void;
  /** γ and β as the forward uses them (normalize layers clamp them). */
  effectiveWeight(): tf.Tensor | null {
    return this.weight?.raw ?? null;
  }
  effectiveBias(): tf.Tensor | null {
    return this.bias?.raw ?? null;
  }
  finishOutput(y: Tensor): Tensor {
    return y;
  }

  /** Whether this call normalizes with the batch's statistics (PyTorch's rule). */
  useBatchStats(): boolean {
    return this.training || !this.trackRunningStats;
  }

  /**
   * Updates running_mean/var and num_batches_tracked as PyTorch does: exponential average with
   * `momentum` (or the cumulative average when momentum is null), variance unbiased (n/(n−1))
   * unless `unbiased` is false (linger's BatchNormInt).
   */
  updateRunningStats(mean: tf.Tensor, biasedVar: tf.Tensor, count: number, unbiased = true): void {
    if (!this.training || !this.trackRunningStats) return;
    const nbt = this.num_batches_tracked!;
    tf.tidy(() => {
      nbt.raw.assign(tf.add(nbt.raw, tf.scalar(1, 'int32')));
      const m = this.momentum === null ? 1 / nbt.raw.dataSync()[0] : this.momentum;
      const v = unbiased && count > 1 ? tf.mul(biasedVar, count / (count - 1)) : biasedVar;
      this.running_mean!.raw.assign(tf.add(tf.mul(this.running_mean!.raw, 1 - m), tf.mul(mean, m)));
      this.running_var!.raw.assign(tf.add(tf.mul(this.running_var!.raw, 1 - m), tf.mul(v, m)));
    });
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    const layout = channelsLast(x.rank);
    const xr = x.physical(layout);
    if (this.useBatchStats()) {
      const count = wholeBatchCount(xr.size / xr.shape[xr.rank - 1]);
      if (count <= 1 && this.training) {
        throw new Error(
          `${this.typeName()}: expected more than 1 value per channel when training, got input shape [${x.shape.join(', ')}]`,
        );
      }
      const r = K.batchNormTrain(xr, this.effectiveWeight() as tf.Tensor1D | null, this.effectiveBias() as tf.Tensor1D | null, this.eps);
      try {
        this.updateRunningStats(r.mean, r.variance, count);
      } finally {
        r.mean.dispose();
        r.variance.dispose();
      }
      return this.finishOutput(new Tensor(r.y, layout));
    }
    // eval: fold the running statistics into one scale and shift per channel
    let scale = tf.rsqrt(tf.add(this.running_var!.raw, this.eps));
    const w = this.effectiveWeight();
    const b = this.effectiveBias();
    if (w) scale = tf.mul(scale, w);
    let y = tf.mul(tf.sub(xr, this.running_mean!.raw), scale);
    if (b) y = tf.add(y, b);
    return this.finishOutput(new Tensor(y, layout));
  }

  extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${pyFloat(this.momentum)}, affine=${pyBool(this.affine)}, track_running_stats=${pyBool(this.trackRunningStats)}`;
  }
}

export class BatchNorm2d extends BatchNormNd {
  checkInput(x: Tensor): void {
    expectInput(this, x, 4, { dim: 1, size: this.numFeatures, what: 'num_features' });
  }
}

export class BatchNorm1d extends BatchNormNd {
  checkInput(x: Tensor): void {
    expectInput(this, x, [2, 3], { dim: 1, size: this.numFeatures, what: 'num_features' });
  }
}
