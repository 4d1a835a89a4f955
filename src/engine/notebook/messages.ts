// What the kernel's thread (runtime.ts) and its owner (session.ts) say to each other, and the
// Jupyter output shapes (nbformat 4) both use.
import type { MimeBundle } from './display';
import type { ModuleTreeEntry } from '../state/checkpoint';

export type NbOutput =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: string }
  | { output_type: 'display_data'; data: MimeBundle; metadata: Record<string, unknown>; transient?: { display_id: string } }
  | { output_type: 'update_display_data'; data: MimeBundle; metadata: Record<string, unknown>; transient: { display_id: string } }
  | { output_type: 'execute_result'; data: MimeBundle; metadata: Record<string, unknown>; execution_count: number | null }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };

export interface ModelSnapshot {
  label: string;
  stage: 'float' | 'traced' | 'fixed';
  modules: ModuleTreeEntry[];
  text: string;
}

/** What a cell did that the editor's views follow. */
export type KernelEvent =
  | {
      kind: 'model';
      name: string;
      transform: 'traceLayers' | 'normalizeLayers' | 'init' | 'loadStateDict';
      before: ModelSnapshot;
      after: ModelSnapshot;
    }
  | { kind: 'saved'; file: string; stage: string };

export interface ModuleVariable {
  name: string;
  type: string;
  stage: string;
  parameters: number;
}

export type ToKernel =
  | { type: 'execute'; exec: number; source: string; cell: string; executionCount: number }
  | { type: 'interrupt' }
  | { type: 'request'; id: number; method: 'listModules' }
  | { type: 'request'; id: number; method: 'loadCheckpoint'; name: string; file: string };

export type FromKernel =
  | { type: 'ready'; backend: string }
  | { type: 'output'; exec: number; output: NbOutput }
  | { type: 'done'; exec: number; status: 'ok' | 'error'; ename?: string; evalue?: string }
  | { type: 'event'; event: KernelEvent }
  | { type: 'response'; id: number; result?: unknown; error?: string };
