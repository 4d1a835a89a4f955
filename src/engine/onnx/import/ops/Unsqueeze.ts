// Unsqueeze: axes from the attribute before opset 13, from input 1 (a constant) from it; a reshape
// of a tensor, new dims on a constant.
import { constValue, intsOf, normAxis } from '../constEval';
import { def, foldCall, FoldCall } from '../registry';
import { asConst } from '../values';

def({
  op: 'Unsqueeze',
  run: ({ n, ins, opset, x }) => {
    const t = x();
    const axes = ins.slice(1).map((v) => (v === undefined ? undefined : asConst(v, `${n.what} axes`)));
    return [t.reshape(unsqueeze(foldCall(n, [constValue(t.shape, 'int', new Array(0)), ...axes], opset, false)).dims)];
  },
  fold: (c) => [unsqueeze(c)],
});

function unsqueeze({ n, opset, need }: FoldCall) {
  const x = need(0);
  const axes = opset >= 13 ? intsOf(need(1), `${n.what} axes`) : (n.attrs.ints('axes') ?? []);
  const r = x.dims.length + axes.length;
  const norm = axes.map((a) => normAxis(a, r, n.what)).sort((a, b) => a - b);
  const dims = [...x.dims];
  for (const a of norm) dims.splice(a, 0, 1);
  return constValue(dims, x.dtype, x.data);
}
