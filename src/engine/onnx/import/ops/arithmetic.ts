// Add, Sub, Mul, Div: elementwise with numpy broadcasting; a scalar constant operand is a number
// for the engine's op, a constant tensor operand is made once at build (tensorConsts). On constants
// (shape arithmetic) integer Div truncates toward zero, as onnxruntime's integer kernels do.
import { binary, isConst } from '../constEval';
import { def, FoldCall, OpCall, OpDef } from '../registry';
import { asTensor } from '../values';

def(arithmetic('Add', 'add', (a, b) => a + b));
def(arithmetic('Sub', 'sub', (a, b) => a - b));
def(arithmetic('Mul', 'mul', (a, b) => a * b));
def(arithmetic('Div', 'div', (a, b) => a / b, true));

function arithmetic(op: string, method: 'add' | 'sub' | 'mul' | 'div', f: (a: number, b: number) => number, intDiv = false): OpDef {
  return {
    op,
    tensorConsts: true,
    run: ({ n, ins, operand }: OpCall) => {
      const a = ins[0],
        b = ins[1];
      if (a !== undefined && !isConst(a)) return [a[method](operand(b, a))];
      const bt = asTensor(b, n.what);
      const at = asTensor(a, n.what);
      return [at[method](bt)];
    },
    fold: ({ n, need }: FoldCall) => [binary(need(0), need(1), f, n.what, intDiv)],
  };
}
