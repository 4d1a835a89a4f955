// linger's AvgPool2dInt (docs/fixed-point.md): average pooling requantized to the output scale.
import { tf } from '../../../backend/tf';
import { NHWC, pair, Pair } from '../../../nn/layout';
import { Module } from '../../../nn/module';
import { avgPool2dRaw, AvgPool2d } from '../../../nn/pooling';
import { pyIntOrTuple } from '../../../nn/repr';
import { clampInt, fakeQuant, floorLog2, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { applyOrigin, inputScale, IntOrigin, outputScale, quantized, quantizedInput, writeBuf } from '../base';

/** Average pooling requantized to the output scale; eval divides the integer window sums exactly. */
export class AvgPool2dInt extends quantized(Module) {
  constructor(readonly kernelSize: number | Pair, readonly stride: number | Pair, readonly padding: number | Pair) {
    super();
    this.addQuantBuffers();
  }
  static from(p: AvgPool2d, o: IntOrigin): AvgPool2dInt {
    const m = new AvgPool2dInt(p.kernelSize, p.stride, p.padding);
    applyOrigin(m, o);
    return m;
  }
  forward(x: Tensor): Tensor {
    const k = pair(this.kernelSize, 'kernel_size'), s = pair(this.stride, 'stride'), p = pair(this.padding, 'padding');
    const sx = inputScale(this, x);
    writeBuf(this, 'scale_x', sx);
    const xq = new Tensor(quantizedInput(this, x, sx), x.perm);
    const y = avgPool2dRaw(xq, this, k, s, p);
    if (this.training) {
      const so = outputScale(this, y.raw);
      writeBuf(this, 'scale_o', so);
      return new Tensor(fakeQuant(y.raw, so, this.outBits), NHWC, so);
    }
    const so = outputScale(this, null);
    writeBuf(this, 'scale_o', so);
    const area = k[0] * k[1];
    // window sums of codes are exact integers; q = ⌊sum·s_o/(s_x·area) + 0.5⌋ = ⌊(2·sum·num + den)/(2·den)⌋
    const sum = tf.cast(tf.round(tf.mul(y.raw, sx * area)), 'int32');
    const e = floorLog2(so) - floorLog2(sx);
    const num = e >= 0 ? 2 ** e : 1, den = area * (e >= 0 ? 1 : 2 ** -e);
    const b = qmax(this.outBits);
    const q = clampInt(tf.floorDiv(tf.add(tf.mul(sum, tf.scalar(2 * num, 'int32')), tf.scalar(den, 'int32')), tf.scalar(2 * den, 'int32')), -b - 1, b);
    return new Tensor(tf.div(tf.cast(q, 'float32'), so), NHWC, so);
  }
  extraRepr(): string {
    return `kernel_size=${pyIntOrTuple(this.kernelSize)}, stride=${pyIntOrTuple(this.stride)}, padding=${pyIntOrTuple(this.padding)},${this.bitsRepr()}`;
  }
}
