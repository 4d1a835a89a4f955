// Cast: a float tensor stays itself (float models only); on constants, to float, bool or integers.
import { constValue } from '../constEval';
import { DT_NAMES } from '../../proto';
import { def } from '../registry';

def({
  op: 'Cast',
  run: ({ n, x }) => {
    const to = n.attrs.int('to', 1);
    if (to !== 1 && to !== 11 && to !== 10)
      throw new Error(`${n.what}: casting a tensor to ${DT_NAMES[to] ?? to} is not supported (float models only)`);
    return [x()];
  },
  fold: ({ n, need }) => {
    const x = need(0);
    const to = n.attrs.int('to', 1);
    const float = to === 1 || to === 10 || to === 11 || to === 16;
    if (float) return [constValue(x.dims, 'float', Float32Array.from(x.data))];
    if (to === 9)
      return [
        constValue(
          x.dims,
          'int',
          Array.from(x.data, (v) => (v !== 0 ? 1 : 0)),
        ),
      ];
    return [
      constValue(
        x.dims,
        'int',
        Array.from(x.data, (v) => Math.trunc(v)),
      ),
    ];
  },
});
