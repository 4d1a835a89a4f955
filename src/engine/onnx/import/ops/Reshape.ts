// Reshape to a constant shape (ONNX's 0 = copy and -1 = infer resolved), on tensors and constants.
import { constValue, intsOf, reshapeTarget } from '../constEval';
import { def } from '../registry';
import { asConst } from '../values';

def({
  op: 'Reshape',
  run: ({ n, ins, x }) => {
    const t = x();
    const shape = intsOf(asConst(ins[1], `${n.what} shape`), `${n.what} shape`);
    return [t.reshape(reshapeTarget(t.shape, shape, n.attrs.int('allowzero', 0) === 1, n.what))];
  },
  fold: ({ n, opset, need }) => {
    const x = need(0);
    const shape = opset >= 5 ? intsOf(need(1), `${n.what} shape`) : (n.attrs.ints('shape') ?? []);
    return [constValue(reshapeTarget(x.dims, shape, n.attrs.int('allowzero', 0) === 1, n.what), x.dtype, x.data)];
  },
});
