// ConvTranspose: a layer (ConvTranspose2d) with the node's constant weight and bias.
import { ConvTranspose2d } from '../../../nn/conv';
import { checkGeometry, convGeometry, convolutionAccepts } from '../geometry';
import { assignParam } from '../params';
import { def } from '../registry';

def({
  op: 'ConvTranspose',
  layer: {
    accepts: convolutionAccepts,
    params: (n) => n.inputs.slice(1, 3).filter(Boolean),
    stem: 'conv_transpose',
    make: (n, x, ctx) => {
      const { what, attrs } = n;
      const w = ctx.constant(n.inputs[1]);
      const b = n.inputs[2] ? ctx.constant(n.inputs[2]) : undefined;
      const rank = w.dims.length;
      if (rank !== 4) throw new Error(`${what}: a ${rank - 2}-d convolution is not supported (1-d and 2-d are)`);
      const { group, k, s, d, padding } = convGeometry(n, w);
      if (attrs.has('output_shape')) throw new Error(`${what}: output_shape is not supported (PyTorch exports pads and output_padding)`);
      const op = attrs.ints('output_padding') ?? [0, 0];
      checkGeometry(what, op, 0);
      const [inC, outG] = w.dims;
      if (inC % group !== 0) throw new Error(`${what}: ${inC} input channels do not split into ${group} groups`);
      const [, , h, wd] = x.shape;
      const out = [0, 1].map((i) => ([h, wd][i] - 1) * s[i] - 2 * padding[i] + d[i] * (k[i] - 1) + op[i] + 1);
      if (out.some((v) => v < 1) || x.shape[0] * outG * group * out[0] * out[1] > 1 << 26)
        throw new Error(`${what}: output size ${out.join('×')} is invalid or too large`);
      const m = new ConvTranspose2d(inC, outG * group, [k[0], k[1]], {
        stride: s,
        padding,
        dilation: d,
        groups: group,
        outputPadding: op,
        bias: b !== undefined,
      });
      assignParam(what, m.weight, w, w.dims, 'the weight');
      assignParam(what, m.bias, b, [outG * group], 'the bias');
      return m;
    },
  },
});
