// A checkpoint as the Checkpoints view and the experiment view show it: its header only (stage,
// metrics, recipe, parent and whether the parent is still the file it was made from, the module
// tree and graph); no tensor data is read.
import type { CheckpointSummary } from '../host/protocol';
import { parentProblem, readCheckpointInfo } from '../state/checkpoint';
import type { Graph } from '../trace/graph';

export function checkpointSummary(file: string): CheckpointSummary {
  const info = readCheckpointInfo(file);
  const m = info.metadata;
  const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const problem = parentProblem(file, m);
  return {
    file,
    size: info.fileSize,
    linger: m.format !== '',
    stage: m.stage,
    created: m.created || undefined,
    metrics: m.metrics,
    parent: m.parent,
    model: m.model || undefined,
    version: m.version || undefined,
    tensors: info.tensors.length,
    parameters: info.tensors.reduce((a, e) => a + count(e.shape), 0),
    optimizer: info.optimizerType,
    moduleTree: m.moduleTree,
    transforms: m.transforms,
    ...(m.graph ? { graph: m.graph as Graph } : {}),
    ...(m.recipe ? { recipe: m.recipe } : {}),
    ...(problem ? { parentProblem: problem } : {}),
  };
}
