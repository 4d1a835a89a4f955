// linger's AvgPool2dInt: nn.AvgPool2d in the fixed stage.
import { AvgPool2d } from '../../../nn/pooling';
import { defineIntOp } from '../registry';
import { AvgPool2dInt } from './layer';
import { qdqAvgPool, thinkerAvgPool } from './lower';

export { AvgPool2dInt } from './layer';

defineIntOp({
  name: 'AvgPool2dInt',
  intClass: AvgPool2dInt,
  replaces: [{ float: AvgPool2d, from: (m, o) => AvgPool2dInt.from(m as AvgPool2d, o) }],
  lower: { qdq: qdqAvgPool, thinker: thinkerAvgPool },
});
