// linger's LinearInt: nn.Linear (and NormalizeLinear) in the fixed stage. The forward and export
// are the weighted family's (../weighted); the reduction runs over the last (feature) dimension.
import { tf } from '../../../backend/tf';
import { withoutInit } from '../../../nn/init';
import { Linear, linearRaw } from '../../../nn/linear';
import { Tensor } from '../../../tensor';
import { applyOrigin, IntOrigin, quantized, takeParams } from '../base';
import { defineIntOp } from '../registry';
import { weightedIntForward, WeightedOps } from '../weighted/layer';
import { weightedLowerings } from '../weighted/lower';

export class LinearInt extends quantized(Linear) implements WeightedOps {
  static from(l: Linear, o: IntOrigin): LinearInt {
    const m = withoutInit(() => new LinearInt(l.inFeatures, l.outFeatures, { bias: l.bias !== null }));
    takeParams(m, l);
    applyOrigin(m, o);
    m.addQuantBuffers();
    return m;
  }
  forward(x: Tensor): Tensor {
    return weightedIntForward(this, x);
  }
  applyWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor {
    return linearRaw(x, w as tf.Tensor2D, b as tf.Tensor1D | null);
  }
  reduction() {
    return { inputs: this.inFeatures, weightAxis: 0, groups: 1 };
  }
  sliceInput(x: Tensor, c0: number, c1: number): Tensor {
    const l = x.logical();
    const s = l.shape;
    return new Tensor(
      tf.slice(
        l,
        s.map((_, i) => (i === s.length - 1 ? c0 : 0)),
        s.map((v, i) => (i === s.length - 1 ? c1 - c0 : v)),
      ),
    );
  }
}

defineIntOp({
  name: 'LinearInt',
  intClass: LinearInt,
  replaces: [{ float: Linear, from: (m, o) => LinearInt.from(m as Linear, o) }],
  lower: weightedLowerings('LinearInt', 'linear'),
});
