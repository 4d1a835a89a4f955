// Expand (on constants): the input broadcast to the given shape.
import { broadcastDims, broadcastIndex, checkSize, fillConst, intsOf, sizeOf } from '../constEval';
import { def } from '../registry';

def({
  op: 'Expand',
  fold: ({ n, need }) => {
    const x = need(0);
    const dims = broadcastDims(x.dims, intsOf(need(1), `${n.what} shape`), n.what);
    checkSize(sizeOf(dims), n.what);
    const ix = broadcastIndex(dims, x.dims);
    return [fillConst(dims, x.dtype, (i) => x.data[ix(i)])];
  },
});
