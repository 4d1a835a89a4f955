// Gather with constant indices: on a computed tensor (`h[-1]`, `y[:, -1]`), and on constants
// (picking dims out of a Shape).
import { tf } from '../../../backend/tf';
import { Tensor } from '../../../tensor';
import { constValue, intsOf, normAxis, sizeOf } from '../constEval';
import { def } from '../registry';
import { asConst } from '../values';

def({
  op: 'Gather',
  run: ({ n, ins, x }) => {
    const t = x();
    const idx = asConst(ins[1], `${n.what} indices`);
    const r = t.rank;
    let axis = n.attrs.int('axis', 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) throw new Error(`${n.what}: axis ${n.attrs.int('axis', 0)} is out of range for rank ${r}`);
    const d = t.shape[axis];
    const ids = intsOf(idx, `${n.what} indices`).map((i) => {
      const j = i < 0 ? i + d : i;
      if (j < 0 || j >= d) throw new Error(`${n.what}: index ${i} is out of range for a dimension of size ${d}`);
      return j;
    });
    // a single index (x[:, -1]) is a recorded select, which traces and exports
    if (idx.dims.length === 0) return [t.select(axis, ids[0])];
    const s = t.shape;
    const g = tf.gather(t.logical(), tf.tensor1d(ids, 'int32'), axis);
    return [new Tensor(tf.reshape(g, [...s.slice(0, axis), ...idx.dims, ...s.slice(axis + 1)]))];
  },
  fold: ({ n, need }) => {
    const { what, attrs } = n;
    const data = need(0),
      idx = need(1);
    const axis = normAxis(attrs.int('axis', 0), data.dims.length, what);
    const n0 = data.dims[axis];
    const ids = intsOf(idx, `${what} indices`).map((i) => {
      const j = i < 0 ? i + n0 : i;
      if (j < 0 || j >= n0) throw new Error(`${what}: index ${i} is out of range for a dimension of size ${n0}`);
      return j;
    });
    const dims = [...data.dims.slice(0, axis), ...idx.dims, ...data.dims.slice(axis + 1)];
    const outer = sizeOf(data.dims.slice(0, axis)),
      inner = sizeOf(data.dims.slice(axis + 1));
    const out: number[] = [];
    for (let o = 0; o < outer; o++) for (const j of ids) for (let k = 0; k < inner; k++) out.push(data.data[(o * n0 + j) * inner + k]);
    return [constValue(dims, data.dtype, data.dtype === 'float' ? Float32Array.from(out) : out)];
  },
});
