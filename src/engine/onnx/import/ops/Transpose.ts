// Transpose (default perm: reversed axes), on tensors and constants.
import { transpose } from '../constEval';
import { def } from '../registry';

def({
  op: 'Transpose',
  run: ({ n, x }) => {
    const t = x();
    const perm = n.attrs.ints('perm') ?? t.shape.map((_, i) => t.rank - 1 - i);
    return [t.permute(perm)];
  },
  fold: ({ n, need }) => {
    const x = need(0);
    const perm = n.attrs.ints('perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
    return [transpose(x, perm)];
  },
});
