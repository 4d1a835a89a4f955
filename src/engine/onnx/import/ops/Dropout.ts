// Dropout (an eval export): its input; the mask output is not supported.
import { def } from '../registry';

def({
  op: 'Dropout',
  run: ({ n, ins }) => {
    if (n.outputs[1]) throw new Error(`${n.what}: the dropout mask output is not supported`);
    return [ins[0]!];
  },
});
