// ConstantOfShape: a constant of the given (constant) shape filled with the 'value' attribute
// (default float 0), whether the shape is known at import or computed in a forward from the input's.
import { checkSize, ConstValue, constValue, fillConst, intsOf, sizeOf } from '../constEval';
import { onnx, readTensor } from '../../proto';
import { def } from '../registry';

def({
  op: 'ConstantOfShape',
  fold: (c) => {
    const { n, need } = c;
    const dims = intsOf(need(0), `${n.what} shape`);
    if (dims.some((d) => d < 0)) throw new Error(`${n.what}: negative dimension`);
    checkSize(sizeOf(dims), n.what);
    const fill = valueAttribute(n.attrs.tensor('value'), n.what);
    const v = fill ? fill.data[0] : 0;
    return [fillConst(dims, fill?.dtype ?? 'float', () => v)];
  },
});

function valueAttribute(t: onnx.ITensorProto | undefined, what: string): ConstValue | undefined {
  if (!t) return undefined;
  const v = readTensor(t, `${what} value`);
  return constValue(v.dims, v.dtype, v.data);
}
