// linger's Conv2dInt: nn.Conv2d (and NormalizeConv2d, and traceLayers' fused NormalizeConvBN2d,
// folded) in the fixed stage. The forward and export are the weighted family's (../weighted).
import { tf } from '../../../backend/tf';
import { Conv2d } from '../../../nn/conv';
import { Stage } from '../../../state/stateDict';
import { Tensor } from '../../../tensor';
import { NormalizeConvBN2d } from '../../convbn';
import { IntOrigin, quantized } from '../base';
import { defineIntOp } from '../registry';
import { convIntFrom, fromFused, migrateFolded, scaleDim0, sliceChannels, weightedIntForward, WeightedOps } from '../weighted/layer';
import { weightedLowerings } from '../weighted/lower';

export class Conv2dInt extends quantized(Conv2d) implements WeightedOps {
  /** From a float conv (its Parameters carried over) or, with `weights`, from folded values. */
  static from(c: Conv2d, o: IntOrigin, weights?: { w: tf.Tensor; b: tf.Tensor }): Conv2dInt {
    const make = (v: Conv2d, bias: boolean) =>
      new Conv2dInt(v.inChannels, v.outChannels, v.kernelSize, {
        stride: v.stride,
        padding: v.padding,
        dilation: v.dilation,
        groups: v.groups,
        bias,
      });
    return convIntFrom(make, c, o, weights);
  }
  forward(x: Tensor): Tensor {
    return weightedIntForward(this, x);
  }
  applyWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor {
    return this.convWith(x, w, b);
  }
  reduction() {
    return { inputs: this.inChannels / this.groups, weightAxis: 2, groups: this.groups };
  }
  sliceInput(x: Tensor, c0: number, c1: number): Tensor {
    return sliceChannels(x, c0, c1);
  }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    migrateFolded(this, sd, prefix, from, scaleDim0);
    super.migrateState(sd, prefix, from);
  }
}

defineIntOp({
  name: 'Conv2dInt',
  intClass: Conv2dInt,
  replaces: [
    { float: Conv2d, from: (m, o) => Conv2dInt.from(m as Conv2d, o) },
    { float: NormalizeConvBN2d, from: fromFused((conv, o, w) => Conv2dInt.from(conv as Conv2d, o, w)) },
  ],
  lower: weightedLowerings('Conv2dInt', 'conv'),
});
