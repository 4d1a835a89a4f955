// The `linger` namespace of the public API (docs/contract.md#api).
export { traceLayers, normalizeLayers, disableNormalize, graphOf, LINGER_LOAD_ORDER, LINGER_STAGE_ORDER } from './transforms';
export type { TraceOptions, NormalizeOptions } from './transforms';
export type { Graph, GraphNode, TensorRef } from '../trace/graph';
export { stageOfDict } from '../state/stateDict';
export { init, disableQuant, quantModule, calibrate, quantReport, formatQuantReport } from './init';
export type { InitOptions, QuantReportRow, Batches } from './init';
export {
  NotCalibratedError,
  LayerNormInt,
  EmbeddingInt,
  BmmInt,
  GRUInt,
  LSTMInt,
  IQMul,
  IQSum,
  IQSigmoid,
  IQTanh,
  IQClamp,
  ReLU6Int,
  channelShuffle,
} from './ops';
export { save, load, loadCheckpoint, readCheckpointInfo, moduleTree, structureHash } from '../state/checkpoint';
export type { SaveOptions, Checkpoint, CheckpointMetadata, CheckpointInfo, ModuleTreeEntry } from '../state/checkpoint';
export { applyCheckpointTransforms } from '../state/replay';
export { loadModelFile, ModelFileError } from '../modelFile';
export type { ModelFile } from '../modelFile';
export { CheckpointFormatError } from '../state/safetensors';
export { exportOnnx, importOnnx, OnnxExportError, OnnxImportError } from '../onnx';
export { verifyOnnx } from '../onnx/verify';
export { importPythonModel, PythonModelError } from '../services/pythonModel';
export type { PythonTraceOptions } from '../services/pythonModel';
export { checkChip, checkOnnxModel, formatFindings, ChipRulesError } from '../chip';
export type { OnnxVerification } from '../onnx/verify';
export type { ExportOptions, ImportOptions } from '../onnx';
export { setIntActivations, intActivations, PIECEWISE_ACTIVATIONS, FLOAT_ACTIVATIONS } from '../quant/intActivation';
export type { IntActivations } from '../quant/intActivation';
