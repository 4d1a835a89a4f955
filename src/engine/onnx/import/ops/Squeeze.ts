// Squeeze: axes from the attribute before opset 13, from the optional input 1 (a constant) from it,
// all size-1 axes when none are given; a reshape of a tensor, fewer dims on a constant.
import { constValue, intsOf, normAxis } from '../constEval';
import { def, foldCall, FoldCall } from '../registry';
import { asConst } from '../values';

def({
  op: 'Squeeze',
  run: ({ n, ins, opset, x }) => {
    const t = x();
    const axes = ins.slice(1).map((v) => (v === undefined ? undefined : asConst(v, `${n.what} axes`)));
    return [t.reshape(squeeze(foldCall(n, [constValue(t.shape, 'int', new Array(0)), ...axes], opset, false)).dims)];
  },
  fold: (c) => [squeeze(c)],
});

function squeeze({ n, ins, opset, need }: FoldCall) {
  const x = need(0);
  const given = opset >= 13 ? (ins[1] ? intsOf(ins[1], `${n.what} axes`) : undefined) : n.attrs.ints('axes');
  const axes = given
    ? given.map((a) => normAxis(a, x.dims.length, n.what))
    : x.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  for (const a of axes) if (x.dims[a] !== 1) throw new Error(`${n.what}: cannot squeeze axis ${a} of size ${x.dims[a]}`);
  return constValue(
    x.dims.filter((_, i) => !axes.includes(i)),
    x.dtype,
    x.data,
  );
}
