// MatMul: a layer (Linear) when B is a constant matrix and A is computed — with the bias of the
// Add that follows it in PyTorch's export of nn.Linear on inputs of rank > 2; otherwise the tensor op.
import { Linear } from '../../../nn/linear';
import { transpose } from '../constEval';
import { assignParam } from '../params';
import { def, NodeInfo, PlanContext } from '../registry';
import { asTensor } from '../values';

def({
  op: 'MatMul',
  tensorConsts: true,
  layer: {
    accepts: (n, ctx) => {
      if (!(ctx.isConst(n.inputs[1]) && ctx.consts.get(n.inputs[1])!.dims.length === 2 && !ctx.isConst(n.inputs[0]))) return false;
      fuseBias(n, ctx);
      return true;
    },
    params: (n) => n.inputs.slice(1, 3).filter(Boolean),
    stem: 'linear',
    make: (n, _x, ctx) => {
      const w = ctx.constant(n.inputs[1]);
      const [inF, outF] = w.dims;
      const bn = n.fusedBias;
      const bName = bn ? (bn.inputs[0] === n.outputs[0] ? bn.inputs[1] : bn.inputs[0]) : undefined;
      const m = new Linear(inF, outF, { bias: !!bName });
      assignParam(n.what, m.weight, transpose(w, [1, 0]), [outF, inF], 'the weight');
      if (bName) assignParam(n.what, m.bias, ctx.constant(bName), [outF], 'the bias');
      return m;
    },
  },
  run: ({ n, ins, x }) => [x().matmul(asTensor(ins[1], n.what))],
});

/** The Add of a constant [outF] vector that is the MatMul's only reader, in its scope: the Linear's bias. */
function fuseBias(n: NodeInfo, ctx: PlanContext): void {
  const outC = ctx.consts.get(n.inputs[1])!.dims[1];
  const users = ctx.consumers.get(n.outputs[0]) ?? [];
  const add = users[0];
  if (users.length === 1 && add.op === 'Add' && !ctx.isOutput(n.outputs[0])) {
    const other = add.inputs[0] === n.outputs[0] ? add.inputs[1] : add.inputs[0];
    const c = other ? ctx.consts.get(other) : undefined;
    if (c && c.dims.length === 1 && c.dims[0] === outC && (add.scope === null || add.scope === n.scope)) {
      ctx.absorb(add);
      n.fusedBias = add;
    }
  }
}
