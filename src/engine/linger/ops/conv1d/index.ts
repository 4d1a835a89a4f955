// linger's Conv1dInt: nn.Conv1d (and NormalizeConv1d, and traceLayers' fused NormalizeConvBN1d,
// folded) in the fixed stage. The forward and export are the weighted family's (../weighted).
import { tf } from '../../../backend/tf';
import { Conv1d } from '../../../nn/conv';
import { Stage } from '../../../state/stateDict';
import { Tensor } from '../../../tensor';
import { NormalizeConvBN1d } from '../../convbn';
import { IntOrigin, quantized } from '../base';
import { defineIntOp } from '../registry';
import { convIntFrom, fromFused, migrateFolded, scaleDim0, sliceChannels, weightedIntForward, WeightedOps } from '../weighted/layer';
import { weightedLowerings } from '../weighted/lower';

export class Conv1dInt extends quantized(Conv1d) implements WeightedOps {
  /** linger's Conv1dInt prints no ahead_sigmoid */
  bitsRepr(): string {
    return `${this.clampRepr()},ahead_relu:${this.aheadRelu ? 'True' : 'False'},data_bits:${this.dataBits},parameter_bits:${this.parameterBits},o_bits:${this.outBits}`;
  }
  /** From a float conv (its Parameters carried over) or, with `weights`, from folded values. */
  static from(c: Conv1d, o: IntOrigin, weights?: { w: tf.Tensor; b: tf.Tensor }): Conv1dInt {
    const make = (v: Conv1d, bias: boolean) =>
      new Conv1dInt(v.inChannels, v.outChannels, v.kernelSize, {
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
    return { inputs: this.inChannels / this.groups, weightAxis: 1, groups: this.groups };
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
  name: 'Conv1dInt',
  intClass: Conv1dInt,
  replaces: [
    { float: Conv1d, from: (m, o) => Conv1dInt.from(m as Conv1d, o) },
    { float: NormalizeConvBN1d, from: fromFused((conv, o, w) => Conv1dInt.from(conv as Conv1d, o, w)) },
  ],
  lower: weightedLowerings('Conv1dInt', 'conv'),
});
