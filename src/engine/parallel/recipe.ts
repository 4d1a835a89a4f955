// How a data-parallel worker builds its replica of a model: it cannot receive the model object
// (a thread shares no objects), so it rebuilds it from where it came from, replays the linger
// transforms the model went through, and loads its state.
import { Module } from '../nn/module';
import { DemoCNN } from '../train/demoCnn';
import { DemoGRU } from '../train/demoGru';

export type ModelRecipe =
  | { kind: 'demo' }
  | { kind: 'demo-gru' }
  | { kind: 'file'; file: string }
  | { kind: 'onnx'; file: string; inputShape?: number[] };

const recipes = new WeakMap<Module, ModelRecipe>();

/** Records how `model` was made (model files and ONNX imports call this). */
export function setRecipe(model: Module, recipe: ModelRecipe): void {
  recipes.set(model, recipe);
}

/** How a worker can rebuild `model`, or null when it cannot (a class defined in a notebook cell or a script). */
export function recipeOf(model: Module): ModelRecipe | null {
  const r = recipes.get(model);
  if (r) return r;
  if (model.constructor === DemoCNN) return { kind: 'demo' };
  if (model.constructor === DemoGRU) return { kind: 'demo-gru' };
  return null;
}

/** The float model a recipe makes (in the worker). */
export async function buildFromRecipe(r: ModelRecipe): Promise<Module> {
  if (r.kind === 'demo') return new DemoCNN();
  if (r.kind === 'demo-gru') return new DemoGRU();
  // required here: both modules record recipes, so importing them above would be a cycle
  if (r.kind === 'file') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { loadModelFile } = require('../modelFile') as typeof import('../modelFile');
    return (await loadModelFile(r.file)).createModel();
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { importOnnx } = require('../onnx/import') as typeof import('../onnx/import');
  return importOnnx(r.file, r.inputShape ? { inputShape: r.inputShape } : {});
}
