// linger's ConvTranspose2dInt: nn.ConvTranspose2d (and NormalizeConvTranspose2d, and the fused
// NormalizeConvTransposeBN2d, folded) in the fixed stage. The forward and export are the weighted
// family's (../weighted); its weight is [in, out/groups, kh, kw].
import { tf } from '../../../backend/tf';
import { ConvTranspose2d } from '../../../nn/conv';
import { Stage } from '../../../state/stateDict';
import { Tensor } from '../../../tensor';
import { NormalizeConvTransposeBN2d } from '../../convbn';
import { IntOrigin, quantized } from '../base';
import { defineIntOp } from '../registry';
import { convIntFrom, fromFused, migrateFolded, sliceChannels, weightedIntForward, WeightedOps } from '../weighted/layer';
import { weightedLowerings } from '../weighted/lower';

export class ConvTranspose2dInt extends quantized(ConvTranspose2d) implements WeightedOps {
  /** linger's ConvTranspose2dInt prints no ahead_relu/ahead_sigmoid */
  bitsRepr(): string {
    return `${this.clampRepr()},data_bits:${this.dataBits},parameter_bits:${this.parameterBits},o_bits:${this.outBits}`;
  }
  static from(c: ConvTranspose2d, o: IntOrigin, weights?: { w: tf.Tensor; b: tf.Tensor }): ConvTranspose2dInt {
    const make = (v: ConvTranspose2d, bias: boolean) =>
      new ConvTranspose2dInt(v.inChannels, v.outChannels, v.kernelSize, {
        stride: v.stride,
        padding: v.padding,
        dilation: v.dilation,
        groups: v.groups,
        outputPadding: v.outputPadding,
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
    return { inputs: this.inChannels, weightAxis: 0, groups: this.groups };
  }
  sliceInput(x: Tensor, c0: number, c1: number): Tensor {
    return sliceChannels(x, c0, c1);
  }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    const g = this.groups;
    // the BN scale per output channel of a [in, out/g, kh, kw] weight
    migrateFolded(this, sd, prefix, from, (w, s) => {
      const [inC, outG] = w.shape;
      return tf.mul(w, tf.reshape(tf.tile(tf.reshape(s, [g, 1, outG]), [1, inC / g, 1]), [inC, outG, 1, 1]));
    });
    super.migrateState(sd, prefix, from);
  }
}

defineIntOp({
  name: 'ConvTranspose2dInt',
  intClass: ConvTranspose2dInt,
  replaces: [
    { float: ConvTranspose2d, from: (m, o) => ConvTranspose2dInt.from(m as ConvTranspose2d, o) },
    { float: NormalizeConvTransposeBN2d, from: fromFused((conv, o, w) => ConvTranspose2dInt.from(conv as ConvTranspose2d, o, w)) },
  ],
  lower: weightedLowerings('ConvTranspose2dInt', 'transposed'),
});
