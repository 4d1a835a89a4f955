// linger-studio: the engine's public API (SPEC §2). index.ts, the package's entry point, re-exports
// all of it and hands it to the model-file loader (modelFile.ts).
export * as nn from './nn';
export * as linger from './linger';
export * as F from './nn/functional';
export * as optim from './train/optim';
export * as data from './train/data';
export { Tensor, tensor, zeros, ones, full, randn, rand, arange, tidy } from './tensor';
export type { DType } from './tensor';
export { manualSeed } from './random';
export { memory, collectGarbage, OutOfMemoryError } from './memory';
export type { MemoryInfo } from './memory';
export { initBackend, backendName } from './backend/select';
export type { StateDict, Stage } from './state/stateDict';
export { stageOfDict } from './state/stateDict';
export { fit, evaluate } from './train/loop';
export type { StepProgress, FitOptions, EvalResult } from './train/loop';
export { DemoCNN } from './train/demoCnn';
export { DemoGRU } from './train/demoGru';
export { InterruptedError } from './interrupt';
