// ConstantOfShape: a constant of the given (constant) shape filled with the 'value' attribute
// (default float 0). While the graph is read the attribute is passed as one more input after the
// node's own (input 1 for a well-formed node); a node evaluated in a forward (its shape computed
// from the input's) gets no attribute and fills float zeros. Both are the importer's behaviour
// before the registry, kept exactly (the forward case is a known gap).
import { checkSize, ConstValue, constValue, fillConst, intsOf, sizeOf } from '../constEval';
import { onnx, readTensor } from '../../proto';
import { def, foldCall } from '../registry';

def({
  op: 'ConstantOfShape',
  fold: (c) => {
    const { n } = c;
    const { ins, need } = c.atImport ? foldCall(n, [...c.ins, ...valueAttribute(n.attrs.tensor('value'), n.what)], c.opset, true) : c;
    const dims = intsOf(need(0), `${n.what} shape`);
    if (dims.some((d) => d < 0)) throw new Error(`${n.what}: negative dimension`);
    checkSize(sizeOf(dims), n.what);
    const fill = ins[1];
    const v = fill ? fill.data[0] : 0;
    return [fillConst(dims, fill?.dtype ?? 'float', () => v)];
  },
});

function valueAttribute(t: onnx.ITensorProto | undefined, what: string): ConstValue[] {
  if (!t) return [];
  const v = readTensor(t, `${what} value`);
  return [constValue(v.dims, v.dtype, v.data)];
}
