// linger's iqAdd on quantized tensors (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import { Module } from '../../../nn/module';
import { batchMax } from '../../../backend/shard';
import { maxAbs, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { Stage } from '../../../state/stateDict';
import { operandScale, QuantBits, quantized, writeEvalScale } from '../base';
import { dropOlderKeys, opScale, rescale } from './scale';

/** linger's iqAdd: z = clamp(⌊q_x·s_z/s_x + 0.5⌋ + ⌊q_y·s_z/s_y + 0.5⌋, −B−1, B). */
export class IQAdd extends quantized(Module) {
  /** linger's class name, as its print shows it */
  typeName(): string {
    return 'iqAddLayer';
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
  forward(x: Tensor, y: Tensor): Tensor {
    const sx = operandScale(this, x),
      sy = operandScale(this, y);
    const layout = x.perm;
    const xr = x.raw,
      yr = y.physical(layout);
    const max = this.training
      ? batchMax(
          Math.max(
            maxAbs(xr),
            maxAbs(yr),
            tf.tidy(() => maxAbs(tf.add(xr, yr))),
          ),
        )
      : 0;
    const sz = opScale(this, max, Math.min(sx, sy));
    writeEvalScale(this, 'scale_o', sz);
    const b = qmax(this.outBits);
    const value = () => tf.div(tf.clipByValue(tf.add(rescale(x, sx, sz, layout), rescale(y, sy, sz, layout)), -b - 1, b), sz);
    return new Tensor(this.training ? K.straightThrough(tf.add(xr, yr), value) : value(), layout, sz);
  }
}
