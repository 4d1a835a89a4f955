// Pow with a constant scalar exponent.
import { scalarOf } from '../constEval';
import { def } from '../registry';
import { asConst } from '../values';

def({ op: 'Pow', run: ({ n, ins, x }) => [x().pow(scalarOf(asConst(ins[1], `${n.what} exponent`), `${n.what} exponent`))] });
