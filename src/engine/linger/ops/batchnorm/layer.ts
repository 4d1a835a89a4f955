// linger's BatchNormInt (docs/fixed-point.md): nn.BatchNorm2d in the fixed stage.
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import { BatchNorm2d } from '../../../nn/batchnorm';
import { withoutInit } from '../../../nn/init';
import { channelsLast } from '../../../nn/layout';
import { wholeBatchCount } from '../../../backend/shard';
import { fakeQuant, floorLog2, maxAbs, quantizeCodes, requantize, trainScale, updatedRunning } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { clampSym } from '../../normalize';
import {
  applyOrigin,
  inputScale,
  IntOrigin,
  outputScale,
  quantized,
  quantizedInput,
  readBuf,
  takeParams,
  writeBuf,
  writeExportScale,
} from '../base';

/**
 * BatchNorm as a per-channel multiply-add: a = γ/√(var+ε), c = β − μ·a (batch statistics in
 * training, running ones in eval); a quantized as a parameter, c at s_x·s_a; y = x·a + c.
 */
export class BatchNormInt extends quantized(BatchNorm2d) {
  /** linger's BatchNormInt print: the BN's, then ` ,clamps,ahead_relu,data_bits:8, parameter_bits:8, o_bits:8` */
  extraRepr(): string {
    const bits = `data_bits:${this.dataBits}, parameter_bits:${this.parameterBits}, o_bits:${this.outBits}`;
    return `${BatchNorm2d.prototype.extraRepr.call(this)} ,${this.clampRepr()},ahead_relu:${this.aheadRelu ? 'True' : 'False'},${bits}`;
  }

  static from(b: BatchNorm2d, o: IntOrigin): BatchNormInt {
    const m = withoutInit(
      () => new BatchNormInt(b.numFeatures, { eps: b.eps, momentum: b.momentum, affine: b.affine, trackRunningStats: b.trackRunningStats }),
    );
    takeParams(m, b);
    applyOrigin(m, o);
    m.addQuantBuffers();
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
      // linger's BatchNormInt: statistics of the input as given (not its codes), the variance
      // E[x²] − E[x]² clamped at 0, the running variance biased (docs/fixed-point.md#conformance-with-linger-111);
      // the whole batch's in a data-parallel step (SyncBatchNorm)
      const xin = x.physical(layout);
      mean = K.wholeBatchChannelMean(xin);
      variance = tf.relu(tf.sub(K.wholeBatchChannelMean(tf.square(xin)), tf.square(mean)));
      this.updateRunningStats(mean, variance, wholeBatchCount(xin.size / this.numFeatures), false);
    } else {
      mean = this.running_mean!.raw;
      variance = this.running_var!.raw;
    }
    const a = tf.mul(gamma, tf.rsqrt(tf.add(variance, this.eps)));
    const c = tf.sub(beta, tf.mul(mean, a));
    const sa = trainScale(maxAbs(a), this.parameterBits);
    if (this.training) {
      writeBuf(this, 'running_w', updatedRunning(readBuf(this, 'running_w'), sa, this.parameterBits));
      const y = clampSym(
        tf.add(tf.mul(xq, fakeQuant(a, sa, this.parameterBits, false)), fakeQuant(c, sx * sa, 32, false)),
        this.normalizeData,
      );
      const so = outputScale(this, y);
      return new Tensor(fakeQuant(y, so, this.outBits), layout, so);
    }
    // eval: no clamp_data (linger clamps only in training)
    const so = outputScale(this, null);
    writeExportScale(this, 'scale_w', sa);
    const qx = tf.cast(tf.round(tf.mul(xq, sx)), 'int32');
    const qa = tf.cast(quantizeCodes(a, sa, this.parameterBits), 'int32');
    const qc = tf.cast(tf.floor(tf.add(tf.mul(c, sx * sa), 0.5)), 'int32');
    const acc = tf.add(tf.mul(qx, qa), qc);
    const q = requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sa), this.outBits);
    return new Tensor(tf.div(tf.cast(q, 'float32'), so), layout, so);
  }
}
