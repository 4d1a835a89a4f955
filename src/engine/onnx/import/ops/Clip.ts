// Clip: nn.ReLU6 where its scope is a module of its own and the bounds are [0, 6] (PyTorch's export
// of ReLU6), else the tensor op (clamp). Bounds are attributes before opset 11, inputs from it.
import { ReLU6 } from '../../../nn/activation';
import { scalarOf } from '../constEval';
import { def, NodeInfo, PlanContext } from '../registry';
import { asConst, RtValue } from '../values';

def({
  op: 'Clip',
  module: { accepts: isRelu6, make: () => new ReLU6() },
  run: ({ n, ins, opset, x }) => {
    const { min, max } = clipBounds(n, ins, opset);
    return [x().clamp(min, max)];
  },
});

function isRelu6(n: NodeInfo, ctx: PlanContext): boolean {
  if (ctx.opset < 11) return n.attrs.float('min', NaN) === 0 && n.attrs.float('max', NaN) === 6;
  const v = (i: number) => (n.inputs[i] && ctx.consts.has(n.inputs[i]) ? ctx.consts.get(n.inputs[i])!.data : null);
  const lo = v(1),
    hi = v(2);
  return !!lo && !!hi && lo.length === 1 && hi.length === 1 && lo[0] === 0 && hi[0] === 6;
}

function clipBounds(n: NodeInfo, ins: (RtValue | undefined)[], opset: number): { min: number | null; max: number | null } {
  if (opset < 11) {
    const min = n.attrs.has('min') ? n.attrs.float('min', 0) : null;
    const max = n.attrs.has('max') ? n.attrs.float('max', 0) : null;
    return { min, max };
  }
  const b = (i: number) => (ins[i] === undefined ? null : scalarOf(asConst(ins[i], `${n.what} bound`), `${n.what} bound`));
  return { min: b(1), max: b(2) };
}
