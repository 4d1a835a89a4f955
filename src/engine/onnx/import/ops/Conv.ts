// Conv: a layer (Conv1d / Conv2d) with the node's constant weight and bias.
import { Conv1d, Conv2d } from '../../../nn/conv';
import { sizeOf } from '../constEval';
import { convGeometry, convolutionAccepts } from '../geometry';
import { assignParam } from '../params';
import { def } from '../registry';

def({
  op: 'Conv',
  layer: {
    accepts: convolutionAccepts,
    params: (n) => n.inputs.slice(1, 3).filter(Boolean),
    stem: 'conv',
    make: (n, x, ctx) => {
      const { what } = n;
      const w = ctx.constant(n.inputs[1]);
      const b = n.inputs[2] ? ctx.constant(n.inputs[2]) : undefined;
      const rank = w.dims.length;
      if (rank !== 4 && rank !== 3) throw new Error(`${what}: a ${rank - 2}-d convolution is not supported (1-d and 2-d are)`);
      const { sp, group, k, s, d, padding } = convGeometry(n, w);
      const hasBias = b !== undefined;
      const [outC, inG] = w.dims;
      if (outC % group !== 0) throw new Error(`${what}: ${outC} output channels do not split into ${group} groups`);
      if (x.shape[0] * outC * sizeOf(x.shape.slice(2)) > 1 << 26) throw new Error(`${what}: its output would be too large`);
      const m =
        sp === 1
          ? new Conv1d(inG * group, outC, k[0], { stride: s[0], padding: padding[0], dilation: d[0], groups: group, bias: hasBias })
          : new Conv2d(inG * group, outC, [k[0], k[1]], { stride: s, padding, dilation: d, groups: group, bias: hasBias });
      assignParam(what, m.weight, w, w.dims, 'the weight');
      assignParam(what, m.bias, b, [outC], 'the bias');
      return m;
    },
  },
});
