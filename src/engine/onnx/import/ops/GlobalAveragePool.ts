// GlobalAveragePool (NCHW): nn.AdaptiveAvgPool2d([1, 1]) where its scope is a module of its own, else the tensor op.
import * as F from '../../../nn/functional';
import { AdaptiveAvgPool2d } from '../../../nn/pooling';
import { def } from '../registry';

def({
  op: 'GlobalAveragePool',
  module: {
    make: (n, x) => {
      if (x.rank !== 4) throw new Error(`${n.what}: only 4-d (NCHW) inputs are supported`);
      return new AdaptiveAvgPool2d([1, 1]);
    },
  },
  run: ({ n, x }) => {
    const t = x();
    if (t.rank !== 4) throw new Error(`${n.what}: only 4-d (NCHW) inputs are supported, got rank ${t.rank}`);
    return [F.adaptiveAvgPool2d(t, 1)];
  },
});
