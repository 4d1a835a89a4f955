// Elementwise unary ops, each the engine tensor's method of the same meaning (`run`) and/or its
// plain-JS counterpart on constants (`fold`; Floor/Ceil appear only in shape arithmetic).
import { fillConst } from '../constEval';
import { def, FoldCall, OpCall, OpDef } from '../registry';

type Method = 'exp' | 'log' | 'sqrt' | 'neg' | 'abs';

def(unary('Exp', 'exp'));
def(unary('Log', 'log'));
def(unary('Sqrt', 'sqrt', Math.sqrt, true));
def(unary('Neg', 'neg', (v) => -v));
def(unary('Abs', 'abs', Math.abs));
def(unary('Floor', null, Math.floor));
def(unary('Ceil', null, Math.ceil));

/** `floatOut`: the fold's result is float whatever the input (Sqrt), else the input's dtype. */
function unary(op: string, method: Method | null, f?: (v: number) => number, floatOut = false): OpDef {
  return {
    op,
    ...(method ? { run: ({ x }: OpCall) => [x()[method]()] } : {}),
    ...(f
      ? {
          fold: ({ need }: FoldCall) => {
            const x = need(0);
            return [fillConst(x.dims, floatOut ? 'float' : x.dtype, (i) => f(x.data[i]))];
          },
        }
      : {}),
  };
}
