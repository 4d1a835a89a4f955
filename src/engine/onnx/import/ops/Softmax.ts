// Softmax: nn.Softmax where its scope is a module of its own, else the tensor op. Before opset 13
// the op works on the input flattened to 2-d at `axis` (default 1); from 13 on one axis (default -1).
import * as F from '../../../nn/functional';
import { Softmax } from '../../../nn/misc';
import { Tensor } from '../../../tensor';
import { sizeOf } from '../constEval';
import { def, NodeInfo } from '../registry';

def({
  op: 'Softmax',
  module: {
    make: (n, x, ctx) => {
      const axis = n.attrs.int('axis', ctx.opset >= 13 ? -1 : 1);
      const r = x.rank;
      const a = axis < 0 ? axis + r : axis;
      if (ctx.opset < 13 && a !== r - 1) throw new Error(`${n.what}: Softmax over a non-last axis at opset ${ctx.opset} is not supported`);
      return new Softmax(a);
    },
  },
  run: ({ n, opset, x }) => [softmaxOp(n, opset, x(), F.softmax)],
});

/** Softmax or LogSoftmax with ONNX's axis semantics for the opset. */
export function softmaxOp(n: NodeInfo, opset: number, t: Tensor, fn: (t: Tensor, axis: number) => Tensor): Tensor {
  const r = t.rank;
  let axis = n.attrs.int('axis', opset >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) throw new Error(`${n.what}: axis out of range for rank ${r}`);
  if (opset >= 13 || axis === r - 1) return fn(t, axis);
  const s = t.shape;
  return fn(t.reshape([sizeOf(s.slice(0, axis)), sizeOf(s.slice(axis))]), 1).reshape(s);
}
