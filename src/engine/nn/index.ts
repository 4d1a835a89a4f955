export { Module, Parameter, Buffer, ShapeError } from './module';
export { Conv1d, Conv2d, ConvTranspose2d } from './conv';
export type { ConvOptions, ConvTransposeOptions } from './conv';
export { BatchNorm1d, BatchNorm2d } from './batchnorm';
export type { BatchNormOptions } from './batchnorm';
export { Linear } from './linear';
export { ReLU, ReLU6, Sigmoid, Tanh, Identity } from './activation';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d } from './pooling';
export { Flatten, Dropout, Softmax } from './misc';
export { LSTM, GRU } from './recurrent';
export { LayerNorm, Embedding } from './sequence';
export type { LayerNormOptions, EmbeddingOptions } from './sequence';
export type { RNNOptions } from './recurrent';
export { Sequential, ModuleList } from './container';
// linger's layers (docs/contract.md#layers)
export { NormalizeConvBN2d, NormalizeConvBN1d, NormalizeConvTransposeBN2d, EmptyBatchNorm } from '../linger/convbn';
export { NormalizeConv2d, NormalizeConv1d, NormalizeConvTranspose2d, NormalizeLinear, NormalizeBatchNorm2d } from '../linger/normalize';
export {
  Conv2dInt,
  Conv1dInt,
  ConvTranspose2dInt,
  LinearInt,
  BatchNormInt,
  AvgPool2dInt,
  IQAdd,
  IQCat,
  LayerNormInt,
  EmbeddingInt,
  BmmInt,
} from '../linger/ops';
