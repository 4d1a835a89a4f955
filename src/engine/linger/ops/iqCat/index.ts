// linger's iqCat: a cat of quantized tensors in the fixed stage, one IQCat layer per cat of the
// traced graph (a child of the calling module, linger's name); export shares iqAdd's rescaling.
import { PLATFORM, THINKER } from '../../../onnx/proto';
import { catAxis, qdqRescaled, thinkerOperands } from '../iqAdd/lower';
import { defineIntOp, defineTensorOp } from '../registry';
import { IQCat } from './layer';

export { IQCat } from './layer';

defineIntOp({
  name: 'IQCat',
  intClass: IQCat,
  lower: {
    qdq: (ctx, c, m, scope) => qdqRescaled(ctx, c, m, scope, (r) => ctx.g.op('Concat', r, `${scope}/Concat`, { axis: catAxis(c) })),
    thinker: (ctx, c, m, scope) => {
      const { sz, xs, ins } = thinkerOperands(ctx, c, m, scope);
      const attrs: Record<string, { float: number } | number | string> = {};
      xs.forEach((t, i) => {
        attrs[`scale_x_${i}`] = { float: t.quantScale! };
      });
      const y = ctx.g.op('iqCat', ins, `${scope}/iqCat`, { ...attrs, scale_o: { float: sz }, dim: catAxis(c), ...PLATFORM }, THINKER);
      ctx.out(c, { name: y, int8Scale: sz });
    },
  },
});

defineTensorOp({
  op: 'cat',
  list: 'linger_iq',
  child: 'iqcat_',
  make: (bits) => new IQCat(bits),
  call: (layer, args, dim) =>
    layer instanceof IQCat && args.every((a) => a.quantScale !== undefined) ? (layer(args, dim ?? 0) as never) : undefined,
});
