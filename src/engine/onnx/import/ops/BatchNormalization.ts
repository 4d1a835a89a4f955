// BatchNormalization (eval mode): a layer (BatchNorm1d / BatchNorm2d) with the node's constant
// scale, bias and running statistics; PRESERVE exports keep it, default exports fold it into Conv.
import { BatchNorm1d, BatchNorm2d } from '../../../nn/batchnorm';
import { assignParam } from '../params';
import { def } from '../registry';

def({
  op: 'BatchNormalization',
  layer: {
    accepts: (n, ctx) => {
      if (!n.inputs.slice(1, 5).every((i) => ctx.isConst(i)) || n.inputs.length < 5)
        throw new Error(`${n.what}: BatchNormalization needs constant scale, bias, mean and variance`);
      if (n.attrs.int('training_mode', 0) === 1)
        throw new Error(`${n.what}: a training-mode BatchNormalization is not supported (export the model in eval mode)`);
      return true;
    },
    params: (n) => n.inputs.slice(1, 5).filter(Boolean),
    stem: 'bn',
    make: (n, x, ctx) => {
      const { what, attrs } = n;
      const [scale, bias, mean, variance] = n.inputs.slice(1, 5).map((i) => ctx.constant(i));
      const c = scale.data.length;
      if ([bias, mean, variance].some((v) => v.data.length !== c))
        throw new Error(`${what}: scale, bias, mean and variance differ in length`);
      const eps = float32Shortest(attrs.float('epsilon', 1e-5));
      // ONNX's momentum weighs the running value, PyTorch's the new batch's
      const momentum = float32Shortest(1 - float32Shortest(attrs.float('momentum', 0.9)));
      if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) throw new Error(`${what}: epsilon ${eps} or momentum out of range`);
      const rank = x.rank;
      if (x.shape[1] !== c) throw new Error(`${what}: input has ${x.shape[1]} channels, the statistics ${c}`);
      const m =
        rank === 4 ? new BatchNorm2d(c, { eps, momentum }) : rank === 2 || rank === 3 ? new BatchNorm1d(c, { eps, momentum }) : null;
      if (!m) throw new Error(`${what}: a rank-${rank} input is not supported`);
      assignParam(what, m.weight, scale, [c], 'the scale');
      assignParam(what, m.bias, bias, [c], 'the bias');
      assignParam(what, m.running_mean, mean, [c], 'the mean');
      assignParam(what, m.running_var, variance, [c], 'the variance');
      return m;
    },
  },
});

/** The shortest decimal that reads back as the same float32 (1e-5, not 9.999999747378752e-06). */
function float32Shortest(v: number): number {
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const c = parseFloat(f.toPrecision(p));
    if (Math.fround(c) === f) return c;
  }
  return f;
}
