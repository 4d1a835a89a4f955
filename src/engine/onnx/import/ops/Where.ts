// Where (on constants): the second input where the condition is non-zero, else the third, broadcast.
import { broadcastDims, broadcastIndex, fillConst } from '../constEval';
import { def } from '../registry';

def({
  op: 'Where',
  fold: ({ n, need }) => {
    const c = need(0),
      a = need(1),
      b = need(2);
    const dims = broadcastDims(broadcastDims(c.dims, a.dims, n.what), b.dims, n.what);
    const ic = broadcastIndex(dims, c.dims),
      ia = broadcastIndex(dims, a.dims),
      ib = broadcastIndex(dims, b.dims);
    return [
      fillConst(dims, a.dtype === 'int' && b.dtype === 'int' ? 'int' : 'float', (i) => (c.data[ic(i)] ? a.data[ia(i)] : b.data[ib(i)])),
    ];
  },
});
