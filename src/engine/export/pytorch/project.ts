// `linger export-pytorch`: a folder that continues an experiment on PyTorch + linger
// (docs/scale-out.md#what-the-export-writes): model.py (modelPy.ts), the weights at the checkpoint's
// stage (safetensors and .pt), recipe.json (the stages' settings, recorded ones first), train.py
// (trainPy.ts), README.md (readme.ts) and, for the demo data set, data/*.npy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exampleOf, loadModelFile, ModelFile } from '../../modelFile';
import { Module } from '../../nn/module';
import { CheckpointMetadata, readCheckpointInfo, Recipe, save } from '../../state/checkpoint';
import { normalizeOfEntry, bitsOfEntry } from '../../state/replay';
import { builtinModelFile, BUILTIN_MODELS, ExportError, prepareModel } from '../../services/exportModel';
import { Dataset, fashionMnist } from '../../train/data';
import { DEMO_RECIPE } from '../../train/demoCnn';
import { modelPy } from './modelPy';
import { TRAIN_PY } from './trainPy';
import { readmeMd } from './readme';
import { stageTrees } from './stageTrees';

export { PytorchExportError } from './modelPy';

export interface PytorchExportOptions {
  /** a model file (.ts/.js: createModel + inputShape); none for a checkpoint of a built-in model */
  modelFile?: string;
  checkpoint?: string;
  outDir: string;
  /** write the demo's Fashion-MNIST into data/ (default: when the recipe names it, or for a built-in model) */
  data?: boolean;
  /** images per class in data/ (the demo's --limit); default all */
  limitPerClass?: number;
  /** replace the files of an existing folder */
  force?: boolean;
}

export interface PytorchExportResult {
  dir: string;
  model: string;
  stage: string;
  files: string[];
  notes: string[];
}

/** One stage's settings in recipe.json, with where each came from. */
export interface ProjectRecipe {
  model: string;
  stage: string;
  checkpoint: string | null;
  /** the data set the studio trained on (linger.recipe's dataset), when recorded */
  dataset: string | null;
  inputShape: number[];
  trace: Record<string, boolean>;
  stages: {
    float: { epochs: number; lr: number; momentum: number; batchSize: number };
    traced: {
      epochs: number;
      lr: number;
      momentum: number;
      batchSize: number;
      normalize: { normalize_weight_value: number | null; normalize_bias_value: number | null; normalize_output_value: number | null };
    };
    fixed: { epochs: number; lr: number; momentum: number; batchSize: number; parameter_bits: number; data_bits: number };
  };
  /** the linger.recipe of each checkpoint of the chain, by stage, as recorded */
  recorded: Record<string, Recipe>;
  notes: string[];
}

/** The recorded recipes of a checkpoint and its parents (linger.parent), by stage. */
function chainOf(file: string): { stage: string; meta: CheckpointMetadata }[] {
  const out: { stage: string; meta: CheckpointMetadata }[] = [];
  let f: string | undefined = file;
  const seen = new Set<string>();
  while (f && !seen.has(path.resolve(f)) && out.length < 8) {
    seen.add(path.resolve(f));
    let meta: CheckpointMetadata;
    try {
      meta = readCheckpointInfo(f).metadata;
    } catch {
      break; // a parent that moved or is unreadable ends the chain
    }
    out.push({ stage: meta.stage, meta });
    const p = meta.parent;
    f = p === undefined ? undefined : [p, path.join(path.dirname(f), path.basename(p))].find((c) => fs.existsSync(c));
  }
  return out;
}

const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const clampOf = (v: unknown, d: number | null) => (v === null ? null : typeof v === 'number' ? v : d);

/** recipe.json: recorded values where the checkpoints have them, the demo's schedule otherwise. */
export function projectRecipe(model: string, inputShape: number[], checkpoint: string | undefined, stage: string): ProjectRecipe {
  const chain = checkpoint ? chainOf(checkpoint) : [];
  const recorded: Record<string, Recipe> = {};
  for (const c of [...chain].reverse()) if (c.meta.recipe) recorded[c.stage] = c.meta.recipe;
  const notes: string[] = [];
  const fl = recorded.float ?? {};
  const baseLr = num(fl.lr, DEMO_RECIPE.lr);
  const batch = num(fl.batchSize ?? recorded.traced?.batchSize ?? recorded.fixed?.batchSize, DEMO_RECIPE.batchSize);
  const momentum = num(fl.momentum, DEMO_RECIPE.momentum);
  const tr = recorded.traced ?? {};
  const fx = recorded.fixed ?? {};
  // the normalize clamps and bits of a later-stage checkpoint's module tree, when its recipe lacks them
  const tree = chain.find((c) => c.stage !== 'float')?.meta.moduleTree ?? [];
  const norm = tree.map(normalizeOfEntry).find((v) => v && (v.data !== null || v.weight !== null || v.bias !== null));
  const bits = tree.map(bitsOfEntry).find((v) => v);
  for (const s of ['float', 'traced', 'fixed'])
    if (!recorded[s]) notes.push(`no recorded recipe for the ${s} stage: recipe.json has the demo's settings for it`);
  return {
    model,
    stage,
    checkpoint: checkpoint ? path.basename(checkpoint) : null,
    dataset: typeof (fl.dataset ?? tr.dataset ?? fx.dataset) === 'string' ? String(fl.dataset ?? tr.dataset ?? fx.dataset) : null,
    inputShape,
    // the studio's traceLayers defaults, under linger's names (a Linear: linger 1.1.1 marks none, docs/contract.md#ahead-relu-marks)
    trace: { fuse_bn: true, ahead_conv_relu: true, ahead_bn_relu: true },
    stages: {
      float: { epochs: num(fl.epochs, 2), lr: baseLr, momentum, batchSize: batch },
      traced: {
        epochs: num(tr.epochs, 1),
        lr: num(tr.lr, baseLr / 5),
        momentum: num(tr.momentum, momentum),
        batchSize: num(tr.batchSize, batch),
        normalize: {
          normalize_weight_value: clampOf(tr.normalizeWeightValue, norm ? norm.weight : 8),
          normalize_bias_value: clampOf(tr.normalizeBiasValue, norm ? norm.bias : null),
          normalize_output_value: clampOf(tr.normalizeOutputValue, norm ? norm.data : 8),
        },
      },
      fixed: {
        epochs: num(fx.epochs, 1),
        lr: num(fx.lr, baseLr / 10),
        momentum: num(fx.momentum, momentum),
        batchSize: num(fx.batchSize, batch),
        parameter_bits: num(fx.bits, bits?.parameterBits ?? 8),
        data_bits: bits?.dataBits ?? num(fx.bits, 8),
      },
    },
    recorded,
    notes,
  };
}

/** A .npy file (format 1.0) of uint8 values. */
export function npyU8(values: Uint8Array, shape: number[]): Buffer {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}

function writeDataset(dir: string, name: string, ds: Dataset): string[] {
  const x = new Uint8Array(ds.x.length);
  for (let i = 0; i < x.length; i++) x[i] = Math.round(ds.x[i] * 255);
  const y = Uint8Array.from(ds.y);
  const fx = path.join(dir, `${name}_x.npy`);
  const fy = path.join(dir, `${name}_y.npy`);
  fs.writeFileSync(fx, npyU8(x, [ds.length, ...ds.sampleShape]));
  fs.writeFileSync(fy, npyU8(y, [ds.length]));
  return [fx, fy];
}

const WRITES = ['model.py', 'train.py', 'recipe.json', 'module_tree.json', 'README.md', 'weights.safetensors', 'pt/weights.pt'];

/** Writes the project folder; errors name what cannot be exported. */
export async function exportPytorchProject(o: PytorchExportOptions): Promise<PytorchExportResult> {
  let mf: ModelFile;
  if (o.modelFile) mf = await loadModelFile(o.modelFile);
  else {
    if (!o.checkpoint) throw new ExportError('give a model file, or a checkpoint of a built-in model (DemoCNN, DemoGRU)');
    const name = readCheckpointInfo(o.checkpoint).metadata.model;
    const b = builtinModelFile(name);
    if (!b)
      throw new ExportError(
        `${path.basename(o.checkpoint)} was saved from ${name ? `a ${name}` : 'a model'}: give the model file that builds it (built-in: ${Object.keys(BUILTIN_MODELS).join(', ')})`,
      );
    mf = b;
  }
  const example = exampleOf(mf);
  const float: Module = mf.createModel();
  const className = float.typeName();
  const source = modelPy(float, example, className);
  const p = await prepareModel(mf, o.checkpoint);
  const stage = p.model.stage();
  const dir = path.resolve(o.outDir);
  if (fs.existsSync(dir) && !o.force) {
    const clash = WRITES.filter((f) => fs.existsSync(path.join(dir, f)));
    if (clash.length) throw new ExportError(`${dir} already holds ${clash.join(', ')} (--force replaces them)`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    files.push(f);
  };
  put('model.py', source);
  const recipe = projectRecipe(className, mf.inputShape, o.checkpoint, stage);
  const notes = [...p.notes, ...recipe.notes];
  const meta = p.checkpoint?.metadata;
  const saveOpts = {
    metrics: meta?.metrics ?? {},
    inputShape: mf.inputShape,
    ...(example.dtype === 'int32' ? { inputDtype: 'int32' as const } : {}),
    // the studio checkpoint it came from (and its sha256), so the chain goes on from there
    ...(o.checkpoint ? { parent: o.checkpoint } : {}),
    ...(meta?.recipe ? { recipe: meta.recipe } : {}),
  };
  files.push(await save(p.model, path.join(dir, 'weights.safetensors'), saveOpts));
  // the .pt in a folder of its own: the experiment view of the project folder shows one chain, not a twin
  fs.mkdirSync(path.join(dir, 'pt'), { recursive: true });
  files.push(await save(p.model, path.join(dir, 'pt', 'weights.pt'), saveOpts));
  put('recipe.json', JSON.stringify(recipe, null, 2) + '\n');
  put('module_tree.json', JSON.stringify(stageTrees(mf, recipe, stage)) + '\n');
  put('train.py', TRAIN_PY);
  const dataset = String(meta?.recipe?.dataset ?? (BUILTIN_MODELS[className] ? 'fashion-mnist' : ''));
  const withData = o.data ?? (dataset === 'fashion-mnist' && example.dtype === 'float32');
  if (withData) {
    if (mf.inputShape.slice(1).join() !== '1,28,28')
      throw new ExportError(
        `--data: the demo's Fashion-MNIST is [1, 28, 28] images; the model takes [${mf.inputShape.slice(1).join(', ')}]`,
      );
    const d = path.join(dir, 'data');
    fs.mkdirSync(d, { recursive: true });
    const ds = fashionMnist({ limitPerClass: o.limitPerClass });
    files.push(...writeDataset(d, 'train', ds.train), ...writeDataset(d, 'test', ds.test));
  } else notes.push('no data/ written: train.py downloads Fashion-MNIST through torchvision, or fill in its load_data()');
  put('README.md', readmeMd({ className, stage, checkpoint: o.checkpoint, withData, inputShape: mf.inputShape }));
  return { dir, model: className, stage, files, notes };
}
