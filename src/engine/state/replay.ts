// Rebuilding a checkpoint's model from code: the model file makes the float model, and the
// checkpoint's metadata says which linger transforms, with which settings, made the state it holds
// (SPEC §6: a dict loads into a model at its own stage after the same transforms).
import { BatchNorm2d } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvTranspose2d } from '../nn/conv';
import { Linear } from '../nn/linear';
import { Module, TransformName, transformsOf } from '../nn/module';
import { AvgPool2d } from '../nn/pooling';
import { Embedding, LayerNorm } from '../nn/sequence';
import { GRU, LSTM } from '../nn/recurrent';
import { ReLU6 } from '../nn/activation';
import { Tensor } from '../tensor';
import { NormalizeConvBNBase } from '../linger/convbn';
import { disableQuant, init, quantModule } from '../linger/init';
import { disableNormalize, graphOf, normalizeLayers, traceLayers } from '../linger/transforms';
import { CheckpointMetadata, ModuleTreeEntry } from './checkpoint';
import { CheckpointFormatError } from './safetensors';

type NormalizeValues = { data: number | null; weight: number | null; bias: number | null };
type Bits = { dataBits: number; parameterBits: number; outBits: number };

const NORMALIZED_TYPES = /^Normalize(Conv2d|Conv1d|ConvTranspose2d|Linear|BatchNorm2d)$/;

function clampValue(s: string): number | null {
  return s === 'None' ? null : Number(s);
}

/** A module's normalize clamps: the structured field, else parsed from its printed settings. */
export function normalizeOfEntry(e: ModuleTreeEntry): NormalizeValues | undefined {
  if (e.normalize) return e.normalize;
  const m = /normalize_data:([^,]+),normalize_weight:([^,]+),normalize_bias:([^,)]+)/.exec(e.repr ?? '');
  return m ? { data: clampValue(m[1]), weight: clampValue(m[2]), bias: clampValue(m[3]) } : undefined;
}

/** A quantized module's bits: the structured field, else parsed from its printed settings. */
export function bitsOfEntry(e: ModuleTreeEntry): Bits | undefined {
  if (e.bits) return { dataBits: e.bits.data, parameterBits: e.bits.parameter, outBits: e.bits.out };
  const m = /data_bits=(\d+),parameter_bits=(\d+),o_bits=(\d+)/.exec(e.repr ?? '');
  return m ? { dataBits: Number(m[1]), parameterBits: Number(m[2]), outBits: Number(m[3]) } : undefined;
}

function aheadOfEntry(e: ModuleTreeEntry): boolean {
  return e.aheadRelu === true || /ahead_relu:True/.test(e.repr ?? '');
}

const hasClamp = (v: NormalizeValues | undefined) => !!v && (v.data !== null || v.weight !== null || v.bias !== null);

/**
 * The transforms that made a checkpoint's state, in order: `linger.transforms` when recorded;
 * otherwise from its stage (traced: traceLayers, plus normalizeLayers when the module tree shows
 * normalize layers or clamps; fixed: the same, plus init).
 */
export function transformsOfCheckpoint(meta: CheckpointMetadata): TransformName[] {
  if (meta.transforms) return [...meta.transforms];
  if (meta.stage === 'float') return [];
  const tree = meta.moduleTree ?? [];
  const normalized = tree.some((e) => NORMALIZED_TYPES.test(e.type) || hasClamp(normalizeOfEntry(e)));
  return ['trace', ...(normalized ? ['normalize' as const] : []), ...(meta.stage === 'fixed' ? ['init' as const] : [])];
}

function isNormalizable(m: Module): boolean {
  return m instanceof Conv2d || m instanceof ConvTranspose2d || m instanceof Conv1d || m instanceof Linear || m instanceof BatchNorm2d;
}
/** Modules init replaces by default (their tree entry shows their bits, or no bits when disabled). */
function isQuantizable(m: Module): boolean {
  return isNormalizable(m) || m instanceof AvgPool2d || m instanceof NormalizeConvBNBase || m instanceof GRU || m instanceof LSTM || m instanceof ReLU6;
}

export interface ReplayResult {
  transforms: TransformName[];
  /** what could not be known and was assumed */
  notes: string[];
}

/**
 * Applies to a fresh float `model` the transforms a checkpoint's model went through, with the
 * settings its module tree records (fusion, ahead-ReLU marks, per-layer normalize clamps, excluded
 * layers, per-layer bits), so that its state dict then loads strict. `dummyInput` drives the
 * trace. `file` names the checkpoint in errors.
 */
export function applyCheckpointTransforms(model: Module, meta: CheckpointMetadata, dummyInput: Tensor, file: string): ReplayResult {
  if (transformsOf(model).length || model.stage() !== 'float') {
    throw new Error(`applyCheckpointTransforms: expects a fresh float model, got one at the ${model.stage()} stage`);
  }
  const transforms = transformsOfCheckpoint(meta);
  const notes: string[] = [];
  const tree = meta.moduleTree;
  const byPath = new Map((tree ?? []).map((e) => [e.path, e]));
  if (!tree && transforms.length) {
    notes.push(`${file} has no module tree: applying ${transforms.join(' → ')} with default settings`);
  }
  if (!meta.transforms && transforms.length) notes.push(`${file} does not record its transforms; from its stage: ${transforms.join(' → ')}`);
  const fail = (p: string): never => { throw new CheckpointFormatError(file, p); };

  for (const t of transforms) {
    if (t === 'trace') {
      const fuseBn = !tree || tree.some((e) => e.type === 'EmptyBatchNorm');
      traceLayers(model, model, dummyInput, { fuseBn });
      if (tree) {
        for (const [p, m] of model.namedModules()) {
          const e = byPath.get(p);
          if (e && 'aheadRelu' in m) (m as { aheadRelu: boolean }).aheadRelu = aheadOfEntry(e);
          else if (e && aheadOfEntry(e)) (m as unknown as { aheadRelu: boolean }).aheadRelu = true;
        }
      }
    } else if (t === 'normalize') {
      if (tree) {
        // a layer the tree shows without clamps fields was excluded (linger.disableNormalize)
        for (const [p, m] of model.namedModules()) {
          const e = byPath.get(p);
          if (e && isNormalizable(m) && !normalizeOfEntry(e)) disableNormalize(m);
        }
      }
      // every clamp set per layer below; without a tree, linger's defaults
      normalizeLayers(model, tree ? { normalizeWeightValue: null, normalizeBiasValue: null, normalizeOutputValue: null } : {});
      if (tree) {
        for (const [p, m] of model.namedModules()) {
          const e = byPath.get(p);
          const v = e && normalizeOfEntry(e);
          if (!v || !('normalizeData' in m)) continue;
          for (const x of [v.data, v.weight, v.bias]) {
            if (x !== null && !(typeof x === 'number' && x > 0 && Number.isFinite(x))) fail(`module '${p}': normalize value ${JSON.stringify(x)} is not a positive number or null`);
          }
          Object.assign(m, { normalizeData: v.data, normalizeWeight: v.weight, normalizeBias: v.bias });
        }
      }
    } else {
      let defaults: Bits = { dataBits: 8, parameterBits: 8, outBits: 8 };
      let iq = false;
      // LayerNorm/Embedding/bmm were quantized only when asked: the tree shows whether they were
      const quantModules: ('LayerNorm' | 'Embedding')[] = [];
      let bmm = false;
      if (tree) {
        const iqEntry = tree.find((e) => /^linger_iq\.\d+$/.test(e.path));
        iq = !!iqEntry;
        if (tree.some((e) => e.type === 'LayerNormInt')) quantModules.push('LayerNorm');
        if (tree.some((e) => e.type === 'EmbeddingInt')) quantModules.push('Embedding');
        bmm = tree.some((e) => /^linger_bmm\.\d+$/.test(e.path));
        // (LayerNormInt's parameter_bits is always 16: not a default for the others)
        const first = (iqEntry && bitsOfEntry(iqEntry)) ?? tree.filter((e) => e.type !== 'LayerNormInt').map(bitsOfEntry).find((b) => b);
        if (first) defaults = first;
        const asked = (m: Module) => (m instanceof LayerNorm && quantModules.includes('LayerNorm')) || (m instanceof Embedding && quantModules.includes('Embedding'));
        for (const [p, m] of [...model.namedModules()]) {
          const e = byPath.get(p);
          if (!p || !e || !(isQuantizable(m) || asked(m))) continue;
          const bits = bitsOfEntry(e);
          if (!bits) disableQuant(m);
          else {
            try {
              quantModule(m, bits);
            } catch (err) {
              fail(`module '${p}': ${(err as Error).message}`);
            }
          }
        }
      }
      try {
        init(model, { ...defaults, ...(quantModules.length ? { quantModules } : {}), ...(bmm ? { bmm } : {}), ...((iq || bmm) && !graphOf(model) ? { dummyInput } : {}) });
      } catch (err) {
        if (/must be an integer/.test((err as Error).message)) fail((err as Error).message);
        throw err;
      }
    }
  }
  return { transforms, notes };
}
