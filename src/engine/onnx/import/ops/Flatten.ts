// Flatten: nn.Flatten where its scope is a module of its own and axis is 1 (PyTorch's
// nn.Flatten()), else the tensor op; on constants a reshape to 2-d.
import { Flatten } from '../../../nn/misc';
import { constValue, sizeOf } from '../constEval';
import { def } from '../registry';

def({
  op: 'Flatten',
  module: { accepts: (n) => n.attrs.int('axis', 1) === 1, make: () => new Flatten(1, -1) },
  run: ({ n, x }) => {
    const t = x();
    const r = t.rank;
    let axis = n.attrs.int('axis', 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r) throw new Error(`${n.what}: axis ${n.attrs.int('axis', 1)} is out of range for rank ${r}`);
    if (axis === 1 && r >= 2) return [t.flatten(1)];
    const s = t.shape;
    return [t.reshape([sizeOf(s.slice(0, axis)), sizeOf(s.slice(axis))])];
  },
  fold: ({ n, need }) => {
    const x = need(0);
    const axis = n.attrs.int('axis', 1);
    const a = axis < 0 ? axis + x.dims.length : axis;
    return [constValue([sizeOf(x.dims.slice(0, a)), sizeOf(x.dims.slice(a))], x.dtype, x.data)];
  },
});
