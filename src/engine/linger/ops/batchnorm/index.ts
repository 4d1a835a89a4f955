// linger's BatchNormInt: a BatchNorm2d (and NormalizeBatchNorm2d) that no conv absorbed.
import { BatchNorm2d } from '../../../nn/batchnorm';
import { defineIntOp } from '../registry';
import { BatchNormInt } from './layer';
import { qdqBatchNorm, thinkerBatchNorm } from './lower';

export { BatchNormInt } from './layer';

defineIntOp({
  name: 'BatchNormInt',
  intClass: BatchNormInt,
  replaces: [{ float: BatchNorm2d, from: (m, o) => BatchNormInt.from(m as BatchNorm2d, o) }],
  lower: { qdq: qdqBatchNorm, thinker: thinkerBatchNorm },
});
