// MaxPool (2-d): nn.MaxPool2d where its scope is a module of its own, else the tensor op. The
// indices output (return_indices) is not supported.
import * as F from '../../../nn/functional';
import { MaxPool2d } from '../../../nn/pooling';
import { poolArgs, poolGeometry } from '../geometry';
import { def } from '../registry';

def({
  op: 'MaxPool',
  module: {
    make: (n) => {
      const p = poolGeometry(n, n.fusedPad ?? 0);
      const a = poolArgs(p);
      return new MaxPool2d(a.kernel, { stride: a.stride, padding: a.padding, ceilMode: p.ceil });
    },
  },
  run: ({ n, x }) => {
    const p = poolGeometry(n, 0);
    return [F.maxPool2d(x(), p.kernel, p.stride, p.padding, p.ceil)];
  },
  checkPlanned: (n, ctx) => {
    if (n.outputs[1] && (ctx.consumers.get(n.outputs[1])?.length || ctx.isOutput(n.outputs[1])))
      throw new Error(`${n.what}: MaxPool's indices output is not supported`);
  },
});
