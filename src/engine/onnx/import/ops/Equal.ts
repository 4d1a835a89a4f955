// Equal (on constants): 1 where the broadcast values are equal, else 0, as integers.
import { binary, constValue } from '../constEval';
import { def } from '../registry';

def({
  op: 'Equal',
  fold: ({ n, need }) => {
    const r = binary(need(0), need(1), (a, b) => (a === b ? 1 : 0), n.what);
    return [constValue(r.dims, 'int', Array.from(r.data))];
  },
});
