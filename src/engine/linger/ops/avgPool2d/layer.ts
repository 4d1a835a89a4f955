// linger's AvgPool2dInt (docs/fixed-point.md): average pooling requantized to the output scale.
import { tf } from '../../../backend/tf';
import { NHWC, pair, Pair } from '../../../nn/layout';
import { Module } from '../../../nn/module';
import { avgPool2dRaw, AvgPool2d } from '../../../nn/pooling';
import { pyIntOrTuple } from '../../../nn/repr';
import { clampInt, fakeQuant, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { applyOrigin, inputScale, IntOrigin, quantized, quantizedInput, readBuf, writeBuf } from '../base';

const AVGPOOL_KEYS = ['running_x', 'running_o', 'scale_x', 'scale_o'] as const;

/** Average pooling requantized to the output scale; eval divides the integer window sums exactly. */
export class AvgPool2dInt extends quantized(Module) {
  constructor(
    readonly kernelSize: number | Pair,
    readonly stride: number | Pair,
    readonly padding: number | Pair,
  ) {
    super();
    this.addQuantBuffers();
  }
  static from(p: AvgPool2d, o: IntOrigin): AvgPool2dInt {
    const m = new AvgPool2dInt(p.kernelSize, p.stride, p.padding);
    applyOrigin(m, o);
    return m;
  }
  /** linger's AvgPool2dInt has no weight statistics */
  quantKeys(): readonly string[] {
    return AVGPOOL_KEYS;
  }
  /**
   * linger's AvgPool2dInt (docs/fixed-point.md#conformance-with-linger-111): the output keeps the
   * input's scale (scale_o = scale_x); training copies running_x into running_o, eval writes scale_o.
   */
  forward(x: Tensor): Tensor {
    const k = pair(this.kernelSize, 'kernel_size'),
      s = pair(this.stride, 'stride'),
      p = pair(this.padding, 'padding');
    const sx = inputScale(this, x);
    const xq = new Tensor(quantizedInput(this, x, sx), x.perm);
    const y = avgPool2dRaw(xq, this, k, s, p);
    if (this.training) {
      writeBuf(this, 'running_o', readBuf(this, 'running_x'));
      return new Tensor(fakeQuant(y.raw, sx, this.outBits), NHWC, sx);
    }
    writeBuf(this, 'scale_o', sx);
    const area = k[0] * k[1];
    // window sums of codes are exact integers; q = ⌊sum/area + 0.5⌋ = ⌊(2·sum + area)/(2·area)⌋
    const sum = tf.cast(tf.round(tf.mul(y.raw, sx * area)), 'int32');
    const b = qmax(this.outBits);
    const q = clampInt(
      tf.floorDiv(tf.add(tf.mul(sum, tf.scalar(2, 'int32')), tf.scalar(area, 'int32')), tf.scalar(2 * area, 'int32')),
      -b - 1,
      b,
    );
    return new Tensor(tf.div(tf.cast(q, 'float32'), sx), NHWC, sx);
  }
  extraRepr(): string {
    return `kernel_size=${pyIntOrTuple(this.kernelSize)}, stride=${pyIntOrTuple(this.stride)}, padding=${pyIntOrTuple(this.padding)}`; // linger prints no bits here
  }
}
