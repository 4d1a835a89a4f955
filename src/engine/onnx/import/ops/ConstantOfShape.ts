// ConstantOfShape: a constant of the given (constant) shape filled with the 'value' attribute
// (default float 0). Only a node folded while the graph is read honours the attribute: one
// evaluated in a forward (its shape computed from the input's) fills float zeros, as the importer
// always has (a known gap, kept so that this file changes nothing).
import { checkSize, ConstValue, constValue, fillConst, intsOf, sizeOf } from '../constEval';
import { onnx, readTensor } from '../../proto';
import { def } from '../registry';

def({
  op: 'ConstantOfShape',
  fold: ({ n, ins, atImport, need }) => {
    const attr = atImport ? valueAttribute(n.attrs.tensor('value'), n.what) : undefined;
    const dims = intsOf(need(0), `${n.what} shape`);
    if (dims.some((d) => d < 0)) throw new Error(`${n.what}: negative dimension`);
    checkSize(sizeOf(dims), n.what);
    const fill = ins[1] ?? attr;
    const v = fill ? fill.data[0] : 0;
    return [fillConst(dims, fill?.dtype ?? 'float', () => v)];
  },
});

function valueAttribute(t: onnx.ITensorProto | undefined, what: string): ConstValue | undefined {
  if (!t) return undefined;
  const v = readTensor(t, `${what} value`);
  return constValue(v.dims, v.dtype, v.data);
}
