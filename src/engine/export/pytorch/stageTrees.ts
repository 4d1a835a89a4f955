// The module tree of each stage a PyTorch project trains (docs/scale-out.md#what-the-export-writes):
// made here with the engine's transforms and recipe.json's settings, written to module_tree.json,
// so train.py's checkpoints carry linger.module_tree and the studio rebuilds them with the settings
// they were trained with (normalize clamps, bits, ahead-ReLU marks) instead of its defaults.
import { ModelFile, exampleOf } from '../../modelFile';
import { init } from '../../linger/init';
import { normalizeLayers, traceLayers } from '../../linger/transforms';
import { moduleTree, ModuleTreeEntry } from '../../state/checkpoint';
import type { ProjectRecipe } from './project';

export interface StageTrees {
  /** the settings the trees were made with: train.py writes a tree only while recipe.json still says these */
  settings: { normalize: ProjectRecipe['stages']['traced']['normalize']; parameter_bits: number; data_bits: number };
  trees: Record<string, ModuleTreeEntry[]>;
}

const STAGES = ['float', 'traced', 'fixed'] as const;

/** The trees of the stages from `from` on, without scales (train.py fills them from the trained buffers). */
export function stageTrees(mf: ModelFile, recipe: ProjectRecipe, from: string): StageTrees {
  const n = recipe.stages.traced.normalize;
  const f = recipe.stages.fixed;
  const trees: Record<string, ModuleTreeEntry[]> = {};
  for (const stage of STAGES.slice(Math.max(0, STAGES.indexOf(from as (typeof STAGES)[number])))) {
    const model = mf.createModel();
    const example = exampleOf(mf);
    if (stage !== 'float') {
      traceLayers(model, model, example);
      normalizeLayers(model, {
        normalizeWeightValue: n.normalize_weight_value,
        normalizeBiasValue: n.normalize_bias_value,
        normalizeOutputValue: n.normalize_output_value,
      });
    }
    if (stage === 'fixed') init(model, { dataBits: f.data_bits, parameterBits: f.parameter_bits, outBits: 8, dummyInput: example });
    trees[stage] = moduleTree(model).map(({ scales: _scales, ...e }) => e);
    example.dispose();
  }
  return { settings: { normalize: { ...n }, parameter_bits: f.parameter_bits, data_bits: f.data_bits }, trees };
}
