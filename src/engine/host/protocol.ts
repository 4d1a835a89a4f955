// The messages between the VS Code extension and the engine process (src/engine/host/main.ts):
// JSON-RPC over the Node IPC channel of child_process.fork, typed with vscode-jsonrpc. This file is
// shared by both sides and imports nothing of the engine, so the extension bundles it without
// TensorFlow.js.
import { RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { ModuleTreeEntry } from '../state/checkpoint';
import type { TraceOptions } from '../linger/transforms';

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
  ms: number;
}

export const Info = new RequestType0<EngineInfo, void>('linger/info');
export const CheckpointSummaryRequest = new RequestType<{ file: string }, CheckpointSummary, void>('linger/checkpointSummary');
export const InspectRequest = new RequestType<{ file: string }, { text: string }, void>('linger/inspect');
export const TraceModelFileRequest = new RequestType<{ file: string; traceOptions?: TraceOptions }, TraceResult, void>('linger/traceModelFile');
