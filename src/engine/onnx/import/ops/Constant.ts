// Constant: its value attribute (tensor, or value_float(s) / value_int(s)), folded while the graph is read.
import { ConstValue, constValue } from '../constEval';
import { readTensor } from '../../proto';
import { def } from '../registry';

def({
  op: 'Constant',
  foldsAtImport: () => true,
  fold: ({ n }) => {
    const a = n.attrs;
    let v: ConstValue;
    const t = a.tensor('value');
    if (t) {
      const r = readTensor(t, `${n.what} value`);
      v = constValue(r.dims, r.dtype, r.data);
    } else if (a.has('value_float')) v = constValue([], 'float', Float32Array.of(a.float('value_float', 0)));
    else if (a.has('value_int')) v = constValue([], 'int', [a.int('value_int', 0)]);
    else if (a.has('value_ints')) {
      const l = a.ints('value_ints')!;
      v = constValue([l.length], 'int', l);
    } else if (a.has('value_floats')) {
      const raw = a.raw('value_floats')!;
      const l = raw.floats ?? [];
      v = constValue([l.length], 'float', Float32Array.from(l));
    } else throw new Error(`${n.what}: no supported value attribute (${a.names().join(', ') || 'none'})`);
    return [v];
  },
});
