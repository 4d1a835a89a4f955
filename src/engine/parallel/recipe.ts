// How a data-parallel worker builds its replica of a model: it cannot receive the model object
// (a thread shares no objects), so it rebuilds it from where it came from, replays the linger
// transforms the model went through, and loads its state.
//
// This module only records recipes and keeps the rebuilders: the modules that make models from
// files (modelFile.ts; the ONNX importer through builders.ts) register theirs, so that nothing
// here imports them and they can record recipes without an import cycle. A worker loads
// builders.ts, which brings every rebuilder in; the coordinator only reads recipes.
import { Module } from '../nn/module';
import { DemoCNN } from '../train/demoCnn';
import { DemoGRU } from '../train/demoGru';

export type ModelRecipe =
  { kind: 'demo' } | { kind: 'demo-gru' } | { kind: 'file'; file: string } | { kind: 'onnx'; file: string; inputShape?: number[] };

type Kind = ModelRecipe['kind'];
type Builder<K extends Kind> = (r: Extract<ModelRecipe, { kind: K }>) => Module | Promise<Module>;

const recipes = new WeakMap<Module, ModelRecipe>();
const builders = new Map<Kind, (r: ModelRecipe) => Module | Promise<Module>>([
  ['demo', () => new DemoCNN()],
  ['demo-gru', () => new DemoGRU()],
]);

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

/** Makes `build` the way recipes of `kind` become models (the module that records them calls this). */
export function registerRecipeBuilder<K extends Kind>(kind: K, build: Builder<K>): void {
  builders.set(kind, (r) => build(r as Extract<ModelRecipe, { kind: K }>));
}

/** The float model a recipe makes (in the worker). */
export async function buildFromRecipe(r: ModelRecipe): Promise<Module> {
  const build = builders.get(r.kind);
  if (!build) throw new Error(`no way to rebuild a model of kind '${r.kind}' on this thread (parallel/builders.ts registers them)`);
  return build(r);
}
