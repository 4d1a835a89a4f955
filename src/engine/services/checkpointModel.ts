// A checkpoint without a stored module tree — a `.pt` saved by PyTorch or the real linger — seen
// through the model file it is paired with (docs/python-models.md, "Checkpoints from real linger"):
// the model file builds the float model, the checkpoint's stage decides the transforms, its state
// loads strict, and the Model view shows the result with the graph and where each module is defined.
import type { ModelTree } from '../host/protocol';
import { graphOf } from '../linger/transforms';
import { moduleTree } from '../state/checkpoint';
import type { Graph } from '../trace/graph';
import { prepareModel } from './exportModel';
import { PythonTraceOptions } from './pythonModel';
import { definitionLines } from './traceModelFile';

export interface CheckpointModel {
  tree: ModelTree;
  graph?: Graph;
  /** the model file and where each module is defined in it (0-based lines), for Reveal in Editor */
  modelFile: string;
  definitions: Record<string, number>;
  /** what was assumed on the way (no module tree: default settings) */
  notes: string[];
}

export async function checkpointModel(checkpoint: string, modelFile: string, python: PythonTraceOptions = {}): Promise<CheckpointModel> {
  const p = await prepareModel(modelFile, checkpoint, python);
  const stage = p.model.stage();
  const modules = moduleTree(p.model);
  const paths = modules.map((e) => e.path).filter(Boolean);
  const definitions = p.definitions ?? definitionLines(modelFile, paths);
  return {
    tree: { label: `${checkpoint.split(/[\\/]/).pop()} (${stage})`, stage, modules, text: String(p.model) },
    ...(stage === 'float' ? {} : { graph: graphOf(p.model) }),
    modelFile: p.file,
    definitions,
    notes: p.notes,
  };
}
