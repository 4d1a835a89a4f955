// Every linger op of the fixed stage, one folder each (docs/architecture.md): importing this file
// registers them all and exports their public classes. Adding an op is adding its folder and one
// line here.
import { AdaptiveAvgPool2d } from '../../nn/pooling';
import { Softmax } from '../../nn/misc';
import { defineFloatOnly } from './registry';
export * from './conv2d';
export * from './conv1d';
export * from './convTranspose2d';
export * from './linear';
export * from './batchnorm';
export * from './avgPool2d';
export * from './iqAdd';
export * from './iqCat';
export * from './iqMul';
export * from './iqSum';
export * from './iqActivation';
export * from './iqClamp';
export * from './relu6';
export * from './recurrent';
export * from './layerNorm';
export * from './embedding';
export * from './bmm';
export * from './channelShuffle';

// layers init leaves in float (their input is dequantized), saying so
defineFloatOnly([Softmax, AdaptiveAvgPool2d]);

export { NotCalibratedError } from './base';
export type { QuantBits, IntLayer, IntOrigin } from './base';
export { isIntLayer, intOpOf } from './registry';
export type { QuantReportRow } from './registry';
