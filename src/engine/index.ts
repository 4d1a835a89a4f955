// linger-studio: the engine's public API (docs/contract.md#api).
import * as nn from './nn';
import * as linger from './linger';
import * as F from './nn/functional';
import * as optim from './train/optim';
import * as data from './train/data';
import { Tensor, tensor, zeros, ones, full, randn, rand, arange, tidy } from './tensor';
import { manualSeed } from './random';
import { memory, collectGarbage, OutOfMemoryError } from './memory';
import { initBackend, backendName } from './backend/select';
import { stageOfDict } from './state/stateDict';
import { fit, evaluate } from './train/loop';
import { DemoCNN } from './train/demoCnn';
import { DemoGRU } from './train/demoGru';
import { InterruptedError } from './interrupt';
import { provideEngine } from './modelFile';

// Named one by one (no `export *`): Node's ESM import of this file finds only the names it can read here.
export {
  nn,
  linger,
  F,
  optim,
  data,
  Tensor,
  tensor,
  zeros,
  ones,
  full,
  randn,
  rand,
  arange,
  tidy,
  manualSeed,
  memory,
  collectGarbage,
  OutOfMemoryError,
  initBackend,
  backendName,
  stageOfDict,
  fit,
  evaluate,
  DemoCNN,
  DemoGRU,
  InterruptedError,
};
export type { DType } from './tensor';
export type { MemoryInfo } from './memory';
export type { StateDict, Stage } from './state/stateDict';
export type { StepProgress, FitOptions, EvalResult } from './train/loop';
export type { ChipReport, Finding, CheckChipOptions } from './chip';

// The hand-over of the engine (modelFile.ts, docs/architecture.md): `import … from 'linger-studio'`
// in a user's model file gets these values, the export list above. The model-file loader is part
// of this API (linger.loadModelFile), so it cannot import this module without an import cycle;
// this entry point gives itself to it instead. Marked as an ES module, as the package's exports are.
provideEngine({
  __esModule: true,
  nn,
  linger,
  F,
  optim,
  data,
  Tensor,
  tensor,
  zeros,
  ones,
  full,
  randn,
  rand,
  arange,
  tidy,
  manualSeed,
  memory,
  collectGarbage,
  OutOfMemoryError,
  initBackend,
  backendName,
  stageOfDict,
  fit,
  evaluate,
  DemoCNN,
  DemoGRU,
  InterruptedError,
});
