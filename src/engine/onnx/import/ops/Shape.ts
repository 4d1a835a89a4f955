// Shape: the dims of a tensor (in the forward, so view/reshape arithmetic follows the actual
// batch) or of a constant (folded at import); opset 15's start/end select a range of them.
import { shapeValue } from '../constEval';
import { def } from '../registry';
import { Tensor } from '../../../tensor';

def({
  op: 'Shape',
  run: ({ n, ins }) => [shapeValue((ins[0] as Tensor).shape, n.attrs)],
  fold: ({ n, need }) => [shapeValue(need(0).dims, n.attrs)],
  // a Shape of nothing stays in the program (and fails there, naming the node)
  foldsAtImport: (n, isConst) => !!n.inputs[0] && n.inputs.every((i) => !i || isConst(i)),
});
