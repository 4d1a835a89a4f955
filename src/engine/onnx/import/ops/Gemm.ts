// Gemm: a layer (Linear) when B (and C) are constants and A is not transposed, the weight scaled
// by alpha and the bias by beta; otherwise the tensor op.
import { Linear } from '../../../nn/linear';
import { constValue, transpose } from '../constEval';
import { assignParam } from '../params';
import { def } from '../registry';
import { asTensor } from '../values';

def({
  op: 'Gemm',
  tensorConsts: true,
  layer: {
    accepts: (n, ctx) => ctx.isConst(n.inputs[1]) && (!n.inputs[2] || ctx.isConst(n.inputs[2])) && !n.attrs.int('transA', 0),
    params: (n) => n.inputs.slice(1, 3).filter(Boolean),
    stem: 'linear',
    make: (n, _x, ctx) => {
      const { what, attrs } = n;
      const w = ctx.constant(n.inputs[1]);
      if (w.dims.length !== 2) throw new Error(`${what}: the weight must be 2-d, got [${w.dims.join(', ')}]`);
      const alpha = attrs.float('alpha', 1),
        beta = attrs.float('beta', 1);
      const transB = attrs.int('transB', 0) === 1;
      const [outF, inF] = transB ? w.dims : [w.dims[1], w.dims[0]];
      const wv = transB ? w : transpose(w, [1, 0]);
      const b = n.inputs[2] ? ctx.constant(n.inputs[2]) : undefined;
      if (b && b.data.length !== outF && b.data.length !== 1)
        throw new Error(`${what}: bias of ${b.data.length} values for ${outF} outputs`);
      const m = new Linear(inF, outF, { bias: !!b });
      assignParam(
        what,
        m.weight,
        alpha === 1
          ? wv
          : constValue(
              wv.dims,
              'float',
              Float32Array.from(wv.data, (v) => v * alpha),
            ),
        [outF, inF],
        'the weight',
      );
      if (b)
        assignParam(
          what,
          m.bias,
          constValue(
            [outF],
            'float',
            Float32Array.from({ length: outF }, (_, i) => beta * b.data[b.data.length === 1 ? 0 : i]),
          ),
          [outF],
          'the bias',
        );
      return m;
    },
  },
  run: ({ n, ins, x }) => {
    const { attrs, what } = n;
    const alpha = attrs.float('alpha', 1),
      beta = attrs.float('beta', 1);
    let a = x();
    let b = asTensor(ins[1], what);
    if (attrs.int('transA', 0)) a = a.transpose(0, 1);
    if (attrs.int('transB', 0)) b = b.transpose(0, 1);
    let y = a.matmul(b);
    if (alpha !== 1) y = y.mul(alpha);
    if (ins[2] !== undefined) y = y.add(beta === 1 ? asTensor(ins[2], what) : asTensor(ins[2], what).mul(beta));
    return [y];
  },
});
