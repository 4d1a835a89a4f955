// linger's iqCat on quantized tensors (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import { Module } from '../../../nn/module';
import { batchMax } from '../../../backend/shard';
import { maxAbs, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { Stage } from '../../../state/stateDict';
import { operandScale, QuantBits, quantized, writeEvalScale } from '../base';
import { dropOlderKeys, opScale, rescale } from '../iqAdd/scale';

/** linger's scale_to: its clamp bounds are 0.01 beyond the code range. */
const SCALE_TO_SLACK = 0.01;

/** linger's iqCat: every input requantized to one common output scale, then concatenated. */
export class IQCat extends quantized(Module) {
  /** linger's class name, as its print shows it */
  typeName(): string {
    return 'iqCatLayer';
  }
  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    this.addQuantBuffers();
  }
  /** linger's iqAddLayer/iqCatLayer buffers: the output scale (written in eval) and its running max */
  quantKeys(): readonly string[] {
    return ['scale_o', 'running_o'];
  }
  migrateState(sd: Map<string, Tensor>, prefix: string, from: Stage): void {
    dropOlderKeys(sd, prefix);
    super.migrateState(sd, prefix, from);
  }
  forward(xs: Tensor[], dim: number): Tensor {
    const scales = xs.map((t) => operandScale(this, t));
    const layout = xs[0].perm;
    const max = this.training ? batchMax(Math.max(...xs.map((t) => maxAbs(t.raw)))) : 0;
    const sz = opScale(this, max, null); // linger's iqCat: no cap
    writeEvalScale(this, 'scale_o', sz);
    const axis = layout ? layout[dim < 0 ? dim + xs[0].rank : dim] : dim < 0 ? dim + xs[0].rank : dim;
    const b = qmax(this.outBits);
    const value = () =>
      tf.div(
        tf.clipByValue(
          tf.concat(
            xs.map((t, i) => rescale(t, scales[i], sz, layout)),
            axis,
          ),
          // linger's IQTensor.scale_to clamps the codes to [−B−1.01, B+0.01]: a saturated element
          // is 127.01/s, which a float consumer's max sees (docs/fixed-point.md#conformance-with-linger-111)
          -b - 1 - SCALE_TO_SLACK,
          b + SCALE_TO_SLACK,
        ),
        sz,
      );
    const carrier = () =>
      tf.concat(
        xs.map((t) => t.physical(layout)),
        axis,
      );
    return new Tensor(this.training ? K.straightThrough(carrier(), value) : value(), layout, sz);
  }
}
