// Range (on constants): start, start + delta, … below limit.
import { checkSize, fillConst, scalarOf } from '../constEval';
import { def } from '../registry';

def({
  op: 'Range',
  fold: ({ n, need }) => {
    const { what } = n;
    const start = scalarOf(need(0), `${what} start`),
      limit = scalarOf(need(1), `${what} limit`),
      delta = scalarOf(need(2), `${what} delta`);
    if (delta === 0) throw new Error(`${what}: delta 0`);
    const count = Math.max(0, Math.ceil((limit - start) / delta));
    checkSize(count, what);
    const dtype = need(0).dtype;
    return [fillConst([count], dtype, (i) => start + i * delta)];
  },
});
