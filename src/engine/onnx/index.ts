// ONNX export (every stage; fixed stage as 'qdq' or 'thinker') and import of PyTorch float models.
export { exportOnnx, buildOnnxModel, OnnxExportError, scopeName } from './export';
export type { ExportOptions, OnnxDialect } from './export';
export { importOnnx, importOnnxBuffer, OnnxImportError, OnnxModel, OnnxScope, scopeOfNodeName } from './import';
export type { ImportOptions } from './import';
