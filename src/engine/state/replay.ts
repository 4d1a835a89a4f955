// Rebuilding a checkpoint's model from code: the model file makes the float model, and the
// checkpoint's metadata says which linger transforms, with which settings, made the state it holds
// (docs/contract.md#load-order: a dict loads into a model at its own stage after the same transforms).
import { Module, TransformName, transformsOf } from '../nn/module';
import { Tensor } from '../tensor';
import { disableQuant, init, quantModule } from '../linger/init';
import { isNormalizable, NORMALIZED_TYPE_NAMES } from '../linger/normalize';
import { intOps, opListOfLayerName, opLists, replacementOf } from '../linger/ops/registry';
import { disableNormalize, graphOf, normalizeLayers, traceLayers } from '../linger/transforms';
import { CheckpointMetadata, ModuleTreeEntry } from './checkpoint';
import { CheckpointFormatError } from './safetensors';

type NormalizeValues = { data: number | null; weight: number | null; bias: number | null };
type Bits = { dataBits: number; parameterBits: number; outBits: number };

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
  const normalized = tree.some((e) => NORMALIZED_TYPE_NAMES.includes(e.type) || hasClamp(normalizeOfEntry(e)));
  return ['trace', ...(normalized ? ['normalize' as const] : []), ...(meta.stage === 'fixed' ? ['init' as const] : [])];
}

/** Modules init replaces by default (their tree entry shows their bits, or no bits when disabled). */
function isQuantizable(m: Module): boolean {
  const r = replacementOf(m);
  return !!r && !r.def.optIn;
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
  if (!meta.transforms && transforms.length)
    notes.push(`${file} does not record its transforms; from its stage: ${transforms.join(' → ')}`);
  const fail = (p: string): never => {
    throw new CheckpointFormatError(file, p);
  };

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
            if (x !== null && !(typeof x === 'number' && x > 0 && Number.isFinite(x)))
              fail(`module '${p}': normalize value ${JSON.stringify(x)} is not a positive number or null`);
          }
          Object.assign(m, { normalizeData: v.data, normalizeWeight: v.weight, normalizeBias: v.bias });
        }
      }
    } else {
      let defaults: Bits = { dataBits: 8, parameterBits: 8, outBits: 8 };
      let iq = false;
      // opt-in layers (LayerNorm/Embedding) and functions (bmm) were quantized only when asked: the tree shows whether they were
      const quantModules: string[] = [];
      const functions: string[] = [];
      if (tree) {
        // an op layer: linger's `…_linger_round_tensor_<op>_<i>` child, or our older root list's `<list>.<k>`
        const inList = (list: string) =>
          tree.find(
            (e) =>
              opListOfLayerName(e.path.slice(e.path.lastIndexOf('.') + 1)) === list ||
              (e.path.startsWith(`${list}.`) && /^\d+$/.test(e.path.slice(list.length + 1))),
          );
        const lists = opLists();
        const iqEntry = lists
          .filter((l) => !l.flag)
          .map((l) => inList(l.list))
          .find((e) => e);
        iq = !!iqEntry;
        for (const l of lists) if (l.flag && inList(l.list)) functions.push(l.flag);
        for (const d of intOps()) if (d.optIn && tree.some((e) => e.type === d.name)) quantModules.push(d.optIn);
        // (a layer with bits of its own, as LayerNormInt's parameter_bits of 16, is no default for the others)
        const ownBits = new Set(
          intOps()
            .filter((d) => d.ownBits)
            .map((d) => d.name),
        );
        const first =
          (iqEntry && bitsOfEntry(iqEntry)) ??
          tree
            .filter((e) => !ownBits.has(e.type))
            .map(bitsOfEntry)
            .find((b) => b);
        if (first) defaults = first;
        const asked = (m: Module) => {
          const optIn = replacementOf(m)?.def.optIn;
          return !!optIn && quantModules.includes(optIn);
        };
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
        init(model, {
          ...defaults,
          ...(quantModules.length ? { quantModules } : {}),
          ...(functions.length ? { functions } : {}),
          ...((iq || functions.length) && !graphOf(model) ? { dummyInput } : {}),
        });
      } catch (err) {
        if (/must be an integer/.test((err as Error).message)) fail((err as Error).message);
        throw err;
      }
    }
  }
  return { transforms, notes };
}
