// LogSoftmax: the tensor op, with Softmax's axis semantics (ops/Softmax.ts).
import * as F from '../../../nn/functional';
import { def } from '../registry';
import { softmaxOp } from './Softmax';

def({ op: 'LogSoftmax', run: ({ n, opset, x }) => [softmaxOp(n, opset, x(), F.logSoftmax)] });
