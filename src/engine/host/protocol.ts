// The messages between the VS Code extension and the engine process (src/engine/host/main.ts):
// JSON-RPC over the Node IPC channel of child_process.fork, typed with vscode-jsonrpc. This file is
// shared by both sides and imports nothing of the engine, so the extension bundles it without
// TensorFlow.js.
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { ModuleTreeEntry } from '../state/checkpoint';
import type { TraceOptions } from '../linger/transforms';
import type { Graph } from '../trace/graph';
import type { InspectResult } from '../services/inspect';
import type { ExperimentReport } from '../services/experiment';
import type { PythonFailure, PythonTraceResult } from '../services/pythonModel';
import type { CheckpointModel } from '../services/checkpointModel';
import type { PytorchExportOptions, PytorchExportResult } from '../export/pytorch/project';
import type { ModelChipReport } from '../services/chipOfModel';

export interface EngineInfo {
  backend: string;
  pid: number;
  memory: { tensors: number; bytes: number; wasmHeapBytes?: number };
}

/** A checkpoint as the explorer shows it (header only: nothing of the data is read). */
export interface CheckpointSummary {
  file: string;
  size: number;
  /** false for a plain safetensors file (e.g. written by PyTorch): no linger metadata */
  linger: boolean;
  stage: 'float' | 'traced' | 'fixed';
  created?: string;
  metrics: Record<string, number>;
  parent?: string;
  model?: string;
  version?: string;
  tensors: number;
  parameters: number;
  optimizer?: string;
  moduleTree?: ModuleTreeEntry[];
  transforms?: string[];
  /** the dataflow graph traceLayers recorded (traced and fixed checkpoints) */
  graph?: Graph;
  /** how the stage was trained (linger.recipe), when recorded */
  recipe?: Record<string, string | number | boolean | null>;
  /** why the recorded parent is not the file this one was made from (its content hash changed) */
  parentProblem?: string;
}

/** One root of the Model view: a module tree and the model's PyTorch-style printout. */
export interface ModelTree {
  label: string;
  stage: 'float' | 'traced' | 'fixed';
  modules: ModuleTreeEntry[];
  /** String(model): exactly what PyTorch would print */
  text?: string;
}

export interface TraceResult {
  file: string;
  inputShape: number[];
  before: ModelTree;
  after: ModelTree;
  /** where each module is defined in the model file: path → 0-based line */
  definitions: Record<string, number>;
  /** the dataflow graph traceLayers recorded */
  graph?: Graph;
  ms: number;
}

export const Info = new RequestType0<EngineInfo, void>('linger/info');
export const CheckpointSummaryRequest = new RequestType<{ file: string }, CheckpointSummary, void>('linger/checkpointSummary');
export const ExperimentRequest = new RequestType<
  { files: string[]; title?: string },
  { report: ExperimentReport; svgs: { metric: string; svg: string }[] },
  void
>('linger/experiment');
export const InspectRequest = new RequestType<{ file: string }, { text: string; result: InspectResult }, void>('linger/inspect');
export const TraceModelFileRequest = new RequestType<{ file: string; traceOptions?: TraceOptions }, TraceResult, void>(
  'linger/traceModelFile',
);

/** A PyTorch model file traced through the user's Python (services/pythonModel.ts; docs/python-models.md). */
export interface PythonTraceParams {
  file: string;
  className?: string;
  inputShape?: number[];
  python?: string;
  traceOptions?: TraceOptions;
}
/** Either the trace, or why the Python side failed (kind) with what the user can pick from (classes). */
export type PythonTraceReply =
  | { ok: true; result: PythonTraceResult }
  | {
      ok: false;
      kind: PythonFailure;
      message: string;
      classes: string[];
      frame?: { file: string; line: number; function: string; text: string };
    };
export const TracePythonModelRequest = new RequestType<PythonTraceParams, PythonTraceReply, void>('linger/tracePythonModel');

/** How the user's Python builds a PyTorch model file (the class, the input shape, the interpreter). */
export interface PythonSpec {
  className?: string;
  inputShape?: number[];
  python?: string;
}

/**
 * A checkpoint with no stored module tree (a PyTorch or real-linger `.pt`) through the model file
 * it is paired with: its tree at its stage, the graph, where each module is defined.
 */
export const CheckpointModelRequest = new RequestType<
  { checkpoint: string; modelFile: string; python?: PythonSpec },
  CheckpointModel,
  void
>('linger/checkpointModel');

/** The chip's rules on the model a model file builds (services/chipOfModel.ts; docs/chip-rules.md). */
export const CheckChipRequest = new RequestType<
  { modelFile: string; checkpoint?: string; python?: PythonSpec; platform?: string },
  ModelChipReport,
  void
>('linger/checkChip');

/** A checkpoint or model file as a PyTorch + linger project (export/pytorch/project.ts; docs/scale-out.md). */
export const ExportPytorchRequest = new RequestType<PytorchExportOptions, PytorchExportResult, void>('linger/exportPytorch');

export interface ExportParams {
  /** the checkpoint whose stage and state are exported (none: the model file's fresh float model) */
  checkpoint?: string;
  /** the model file that builds the model; not needed for a checkpoint of the built-in DemoCNN */
  modelFile?: string;
  /** a PyTorch model file's class, input shape and interpreter (services/pythonModel.ts) */
  python?: PythonSpec;
  dialect: 'qdq' | 'thinker';
  /** default: beside the checkpoint (or model file), <name>[.<dialect>].onnx */
  output?: string;
}
export interface ExportResult {
  file: string;
  stage: 'float' | 'traced' | 'fixed';
  bytes: number;
  /** the check against the engine (onnxruntime, or the structure for thinker) */
  verification: { ok: boolean; summary: string; method: 'onnxruntime' | 'structure'; equalFraction?: number; maxAbs?: number; n: number };
  notes: string[];
  ms: number;
}
/** Two checkpoints side by side: keys, values, metrics. */
export interface CompareResult {
  a: string;
  b: string;
  stages: [string, string];
  added: string[];
  removed: string[];
  /** a key of a that is in b under another name (e.g. conv1.weight → conv1.conv.weight), and how far its values moved */
  moved: { from: string; to: string; maxAbs: number }[];
  /** keys in both with the same shape: the largest |Δ| */
  changed: { key: string; maxAbs: number }[];
  /** keys in both with different shapes */
  reshaped: { key: string; a: number[]; b: number[] }[];
  metrics: { name: string; a?: number; b?: number }[];
  /** BatchNorms folded into a conv at either checkpoint's stage (conv path → BN path): its weight and bias are expected to move */
  folded: { conv: string; bn: string; in: 'a' | 'b' }[];
  text: string;
}

export const ExportOnnxRequest = new RequestType<ExportParams, ExportResult, void>('linger/exportOnnx');
export const CompareRequest = new RequestType<{ a: string; b: string }, CompareResult, void>('linger/compare');

/** The two-stage demo (the CLI's `linger demo`) as a job of the engine process. */
export interface DemoParams {
  checkpointDir: string;
  experiment: string;
  /** float, float stage, QAT (default 2,1,1) */
  epochs?: [number, number, number];
  /** images per class (quick runs) */
  limit?: number;
  batchSize?: number;
  seed?: number;
}
export interface DemoSummary {
  stages: { stage: string; accuracy: number; checkpoint?: string }[];
  floatAccuracy: number;
  fixedAccuracy: number | null;
  seconds: number;
}
/** A job's progress (sent while it runs): `step` of `steps` in `phase`. */
export interface JobProgress {
  job: string;
  phase: string;
  step: number;
  steps: number;
  detail?: string;
}

export const RunDemoRequest = new RequestType<DemoParams, DemoSummary, void>('linger/runDemo');
export const ProgressNotification = new NotificationType<JobProgress>('linger/progress');
export const LogNotification = new NotificationType<{ line: string }>('linger/log');

/** An ONNX model imported (a PyTorch export), and optionally traced. */
export interface ImportResult {
  file: string;
  inputShape: number[];
  before: ModelTree;
  /** after traceLayers, when asked */
  after?: ModelTree;
  graph?: Graph;
  ms: number;
}
export const ImportOnnxRequest = new RequestType<{ file: string; trace?: boolean; traceOptions?: TraceOptions }, ImportResult, void>(
  'linger/importOnnx',
);
