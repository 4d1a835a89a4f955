// ReduceMean, ReduceSum, ReduceMax, ReduceMin: the engine tensor's reduction over the axes (all
// when none are given), keepdims as ONNX's default 1. The axes moved from the attribute to input 1
// at the opset each op names.
import { intsOf } from '../constEval';
import { def, OpCall, OpDef } from '../registry';
import { asConst } from '../values';

def(reduce('ReduceMean', 'mean', 18));
def(reduce('ReduceSum', 'sum', 13));
def(reduce('ReduceMax', 'max', 18));
def(reduce('ReduceMin', 'min', 18));

function reduce(op: string, method: 'mean' | 'sum' | 'max' | 'min', axesInputFrom: number): OpDef {
  return {
    op,
    run: ({ n, ins, opset, x }: OpCall) => {
      const { what, attrs } = n;
      const t = x();
      const axes =
        opset >= axesInputFrom ? (ins[1] ? intsOf(asConst(ins[1], `${what} axes`), `${what} axes`) : undefined) : attrs.ints('axes');
      const keep = attrs.int('keepdims', 1) === 1;
      const dims = axes && axes.length ? axes : t.shape.map((_, i) => i);
      return [t[method](dims, keep)];
    },
  };
}
