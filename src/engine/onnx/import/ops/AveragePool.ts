// AveragePool (2-d, count_include_pad): nn.AvgPool2d where its scope is a module of its own (with
// the padding of a zero Pad before it fused in: ops/Pad.ts), else the tensor op.
import * as F from '../../../nn/functional';
import { AvgPool2d } from '../../../nn/pooling';
import { poolArgs, poolGeometry } from '../geometry';
import { def } from '../registry';

def({
  op: 'AveragePool',
  module: {
    make: (n) => {
      const a = poolArgs(poolGeometry(n, n.fusedPad ?? 0));
      return new AvgPool2d(a.kernel, { stride: a.stride, padding: a.padding });
    },
  },
  // the tensor op, with a fused Pad's padding too
  run: ({ n, x }) => {
    const p = poolGeometry(n, n.fusedPad ?? 0);
    return [F.avgPool2d(x(), p.kernel, p.stride, p.padding)];
  },
});
