// Stage checkpoints (docs/contract.md#checkpoints): a state dict in safetensors with linger's metadata, so viewers can
// show the model without code and training can resume where it stopped.
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import { tf } from '../backend/tf';
import { Module, TransformName, transformsOf } from '../nn/module';
import { Tensor } from '../tensor';
import { graphOf } from '../linger/transforms';
import { Optimizer, OptimizerState } from '../train/optim';
import {
  CheckpointFormatError,
  DTYPE_SIZES,
  duplicateJsonKey,
  RawTensor,
  ReadOptions,
  readSafetensors,
  readSafetensorsHeader,
  TensorEntry,
  writeFileAtomic,
  writeSafetensors,
} from './safetensors';
import { inferredStage, isPtPath, notTorchError, ptChunks, ptHeader, readTorchCheckpoint } from './pt';
import { LayerScales, layerScales } from './scales';
import { Recipe, recipeProblem } from './recipe';
import { fileHash } from './lineage';
import { treeEntryProblem } from './treeEntry';
import { makeStateDict, Stage, STAGES, StateDict, stageOfDict, stageOfKeys } from './stateDict';
import { version as ENGINE_VERSION } from '../../../package.json';

export type { Recipe } from './recipe';
export { fileHash, parentProblem } from './lineage';
export const FORMAT = 'linger-studio/1';
/** Optimizer slot tensors are stored as `__optimizer__/<parameter index>/<slot>`. */
export const OPTIMIZER_PREFIX = '__optimizer__/';

/** The metadata keys (docs/contract.md#checkpoints; plus `linger.transforms`, the transforms applied, in order). */
export const METADATA_KEYS = {
  format: 'linger.format',
  stage: 'linger.stage',
  version: 'linger.version',
  model: 'linger.model',
  structureHash: 'linger.structure_hash',
  created: 'linger.created',
  metrics: 'linger.metrics',
  parent: 'linger.parent',
  moduleTree: 'linger.module_tree',
  graph: 'linger.graph',
  inputShape: 'linger.input_shape',
  inputDtype: 'linger.input_dtype',
  optimizer: 'linger.optimizer',
  transforms: 'linger.transforms',
  parentHash: 'linger.parent_sha256',
  recipe: 'linger.recipe',
} as const;
const K = METADATA_KEYS;

export interface SaveOptions {
  metrics?: Record<string, number>;
  /** the checkpoint this one came from */
  parent?: string;
  /** NCHW input shape, batch first (default: the traced graph's input shape, when known) */
  inputShape?: number[];
  /** the input's dtype when it is not float32 (int32 token ids; default: the traced graph's) */
  inputDtype?: 'int32';
  /** saved with the weights so training can resume exactly */
  optimizer?: Optimizer;
  /** how this stage was made: its hyperparameters (epochs, lr, batch, data, bits, …) as flat values */
  recipe?: Recipe;
}

/** One module of the tree: path, class, printed settings, own parameter count and linger's flags. */
export interface ModuleTreeEntry {
  path: string;
  type: string;
  repr: string;
  parameters: number;
  aheadRelu?: boolean;
  /** normalize clamps (±value, null = none), on layers that have them */
  normalize?: { data: number | null; weight: number | null; bias: number | null };
  /** fixed-point bits, on quantized layers */
  bits?: { data: number; parameter: number; out: number };
  /** eval scales of a calibrated quantized layer (powers of two) */
  scales?: LayerScales;
}

export interface CheckpointMetadata {
  format: string;
  stage: Stage;
  version: string;
  model: string;
  structureHash: string;
  created: string;
  metrics: Record<string, number>;
  parent?: string;
  moduleTree?: ModuleTreeEntry[];
  graph?: unknown;
  inputShape?: number[];
  /** 'int32' for models that take indices (linger.input_dtype); absent: float32 */
  inputDtype?: 'int32';
  /** the linger transforms applied to the model before it was saved, in order */
  transforms?: TransformName[];
  /** how this stage was trained (linger.recipe), when recorded */
  recipe?: Recipe;
  /** every raw metadata entry as stored */
  raw: Record<string, string>;
}

export interface Checkpoint {
  stateDict: StateDict;
  metadata: CheckpointMetadata;
  optimizer?: OptimizerState;
  /** the class of the optimizer whose state was saved ('SGD', 'Adam') */
  optimizerType?: string;
}

/** The model's tree as plain data: names, types, settings (the printed repr), sizes, flags. */
export function moduleTree(model: Module): ModuleTreeEntry[] {
  return [...model.namedModules()].map(([path, m]) => {
    const f = m as unknown as {
      aheadRelu?: boolean;
      normalizeData?: number | null;
      normalizeWeight?: number | null;
      normalizeBias?: number | null;
      dataBits?: number;
      parameterBits?: number;
      outBits?: number;
    };
    const e: ModuleTreeEntry = {
      path,
      type: m.typeName(),
      repr: m.extraRepr(),
      parameters: m.ownParameters().reduce((a, [, p]) => a + p.size, 0),
    };
    if (f.aheadRelu) e.aheadRelu = true;
    if ('normalizeData' in f)
      e.normalize = { data: f.normalizeData ?? null, weight: f.normalizeWeight ?? null, bias: f.normalizeBias ?? null };
    if (typeof f.dataBits === 'number') {
      e.bits = { data: f.dataBits, parameter: f.parameterBits ?? 8, out: f.outBits ?? 8 };
      const s = layerScales(m, e.bits);
      if (s && Object.keys(s).length) e.scales = s;
    }
    return e;
  });
}

/** A hash of the state's structure (keys, shapes, dtypes): equal for checkpoints of one model layout. */
export function structureHash(sd: Record<string, Tensor>): string {
  const h = createHash('sha256');
  for (const [k, t] of Object.entries(sd)) h.update(`${k}:${t.dtype}:${t.shape.join('x')};`);
  return h.digest('hex').slice(0, 16);
}

function checkHost(): void {
  // the format is little-endian and tensors are read through typed arrays in host order
  if (os.endianness() !== 'LE') throw new Error('linger checkpoints: big-endian hosts are not supported');
}

/** A tensor's bytes in logical order (a view of a fresh dataSync copy, written before anything else runs). */
function toRaw(t: Tensor): RawTensor {
  const d = t.dataSync();
  return { dtype: t.dtype === 'int32' ? 'I32' : 'F32', shape: t.shape, data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.length >= 1 && v.length <= 8 && v.every((d) => Number.isSafeInteger(d) && d > 0);
}

/**
 * linger.save: writes a model's (or a state dict's) state to a safetensors checkpoint with linger
 * metadata, atomically (temp file + fsync + rename). Returns the path.
 */
export async function save(target: Module | Record<string, Tensor>, file: string, opts: SaveOptions = {}): Promise<string> {
  checkHost();
  const isModel = target instanceof Module;
  const sd = isModel ? target.stateDict() : target;
  const stage = isModel ? target.stage() : stageOfDict(sd);
  for (const k of Object.keys(sd)) {
    if (k.startsWith(OPTIMIZER_PREFIX)) throw new Error(`linger.save: the state key '${k}' uses the prefix reserved for optimizer state`);
  }
  if (opts.inputShape !== undefined && !isShape(opts.inputShape)) {
    throw new Error(
      `linger.save: inputShape must be a list of positive whole numbers (NCHW, batch first), got ${JSON.stringify(opts.inputShape)}`,
    );
  }
  // a .pt holds a state dict only: torch.load has no place for optimizer slots
  if (isPtPath(file) && opts.optimizer)
    throw new Error(`linger.save: ${file}: optimizer state is not written to a .pt (save a .safetensors checkpoint to resume training)`);
  const tensors: [string, RawTensor][] = Object.entries(sd).map(([k, t]) => [k, toRaw(t)]);
  const metadata: Record<string, string> = {
    [K.format]: FORMAT,
    [K.stage]: stage,
    [K.version]: ENGINE_VERSION,
    [K.model]: isModel ? target.typeName() : 'StateDict',
    [K.structureHash]: structureHash(sd),
    [K.created]: new Date().toISOString(),
    [K.metrics]: JSON.stringify(opts.metrics ?? {}),
  };
  for (const [k, v] of Object.entries(opts.metrics ?? {})) {
    // JSON would store NaN or Infinity as null: refuse it here rather than write a metric nobody can read back
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`linger.save: metric '${k}' is ${String(v)}, not a finite number`);
  }
  if (opts.recipe !== undefined) {
    const bad = recipeProblem(opts.recipe);
    if (bad) throw new Error(`linger.save: recipe ${bad}`);
    metadata[K.recipe] = JSON.stringify(opts.recipe);
  }
  if (opts.parent) {
    metadata[K.parent] = opts.parent;
    // the parent's content hash, so a chain whose parent was replaced (another run into the same folder) is detected
    const h = fileHash(opts.parent);
    if (h) metadata[K.parentHash] = h;
  }
  let inputShape = opts.inputShape;
  let inputDtype = opts.inputDtype;
  if (isModel) {
    metadata[K.moduleTree] = JSON.stringify(moduleTree(target));
    metadata[K.transforms] = JSON.stringify(transformsOf(target));
    const g = graphOf(target);
    if (g) {
      metadata[K.graph] = JSON.stringify(g);
      if (!inputShape && g.inputs.length === 1 && isShape(g.inputs[0].shape)) inputShape = g.inputs[0].shape;
      if (!inputDtype && g.inputs.length === 1 && g.inputs[0].dtype === 'int32') inputDtype = 'int32';
    }
  }
  if (inputShape) metadata[K.inputShape] = JSON.stringify(inputShape);
  if (inputDtype) metadata[K.inputDtype] = inputDtype;
  if (opts.optimizer) {
    const saved = opts.optimizer.stateDict();
    const state: Record<string, Record<string, number>> = {};
    for (const [i, entry] of Object.entries(saved.state)) {
      state[i] = {};
      for (const [slot, v] of Object.entries(entry)) {
        if (v instanceof Tensor) tensors.push([`${OPTIMIZER_PREFIX}${i}/${slot}`, toRaw(v)]);
        else state[i][slot] = v;
      }
    }
    metadata[K.optimizer] = JSON.stringify({ type: opts.optimizer.constructor.name, param_groups: saved.param_groups, state });
  }
  if (isPtPath(file)) writeFileAtomic(file, ptChunks(tensors, metadata));
  else writeSafetensors(file, tensors, metadata);
  return file;
}

// ---- reading -----------------------------------------------------------------------------------------

function parseJsonEntry(raw: Record<string, string>, key: string, file: string): unknown {
  if (raw[key] === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw[key]);
  } catch (e) {
    throw new CheckpointFormatError(file, `metadata ${key} is not valid JSON (${(e as Error).message})`);
  }
  const dup = duplicateJsonKey(raw[key]);
  if (dup)
    throw new CheckpointFormatError(
      file,
      `metadata ${key} has the key '${dup.key.slice(0, 60)}' twice${dup.in ? ` in '${dup.in.slice(0, 60)}'` : ''} (a reader would silently keep the last)`,
    );
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

const TRANSFORMS: readonly TransformName[] = ['trace', 'normalize', 'init'];

/**
 * The linger metadata of a checkpoint, each key checked for its type. A plain safetensors file
 * (e.g. written from PyTorch) has none: its stage is inferred from the tensor names.
 */
export function parseCheckpointMetadata(raw: Record<string, string>, tensorNames: Iterable<string>, file: string): CheckpointMetadata {
  const fail = (p: string): never => {
    throw new CheckpointFormatError(file, p);
  };
  const format = raw[K.format];
  if (format !== undefined && format !== FORMAT) {
    const m = /^linger-studio\/(\d+)$/.exec(format);
    if (m && Number(m[1]) > 1) fail(`written in format ${format} by a newer linger-studio; this version reads ${FORMAT}`);
    fail(`unknown checkpoint format '${format.slice(0, 60)}' (expected ${FORMAT})`);
  }
  const declared = raw[K.stage];
  if (declared !== undefined && !STAGES.includes(declared as Stage))
    fail(`unknown stage '${declared.slice(0, 60)}' in ${K.stage} (float, traced or fixed)`);
  const metrics = parseJsonEntry(raw, K.metrics, file) ?? {};
  if (!isObject(metrics) || !Object.values(metrics).every((v) => typeof v === 'number' || v === null))
    fail(`metadata ${K.metrics} is not an object of numbers`);
  // 1e999 parses as Infinity
  for (const [k, v] of Object.entries(metrics as Record<string, unknown>))
    if (typeof v === 'number' && !Number.isFinite(v)) fail(`metadata ${K.metrics}: '${k.slice(0, 40)}' is not a finite number`);
  const tree = parseJsonEntry(raw, K.moduleTree, file);
  if (tree !== undefined) {
    if (!Array.isArray(tree)) fail(`metadata ${K.moduleTree} is not a list of modules ({ path, type, repr, parameters, ... })`);
    (tree as unknown[]).forEach((e, i) => {
      const p = treeEntryProblem(e);
      if (p)
        fail(
          `metadata ${K.moduleTree}[${i}]${isObject(e) && typeof e.path === 'string' ? ` (module '${e.path.slice(0, 60) || '<root>'}')` : ''}: ${p}`,
        );
    });
  }
  const inputShape = parseJsonEntry(raw, K.inputShape, file);
  if (inputShape !== undefined && !isShape(inputShape))
    fail(`metadata ${K.inputShape} is not a list of positive whole numbers: ${raw[K.inputShape].slice(0, 60)}`);
  const inputDtype = raw[K.inputDtype];
  if (inputDtype !== undefined && inputDtype !== 'int32')
    fail(`metadata ${K.inputDtype} must be int32 when present, got ${inputDtype.slice(0, 20)}`);
  const transforms = parseJsonEntry(raw, K.transforms, file);
  if (transforms !== undefined && (!Array.isArray(transforms) || !transforms.every((t) => TRANSFORMS.includes(t)))) {
    fail(`metadata ${K.transforms} is not a list of transforms (trace, normalize, init)`);
  }
  const graph = parseJsonEntry(raw, K.graph, file);
  if (graph !== undefined && !isObject(graph)) fail(`metadata ${K.graph} is not an object`);
  const recipe = parseJsonEntry(raw, K.recipe, file);
  if (recipe !== undefined) {
    const bad = recipeProblem(recipe);
    if (bad) fail(`metadata ${K.recipe} ${bad}`);
  }
  const parentHash = raw[K.parentHash];
  if (parentHash !== undefined && !/^[0-9a-f]{64}$/.test(parentHash)) fail(`metadata ${K.parentHash} is not a sha256 (64 hex digits)`);
  const contradiction = stageContradiction(
    declared as Stage | undefined,
    [...tensorNames],
    tree as ModuleTreeEntry[] | undefined,
    transforms as TransformName[] | undefined,
  );
  if (contradiction) fail(`the metadata contradicts the tensors: ${contradiction}`);
  return {
    format: format ?? '',
    stage: (declared as Stage | undefined) ?? stageOfKeys(tensorNames),
    version: raw[K.version] ?? '',
    model: raw[K.model] ?? '',
    structureHash: raw[K.structureHash] ?? '',
    created: raw[K.created] ?? '',
    metrics: metrics as Record<string, number>,
    parent: raw[K.parent],
    moduleTree: tree as ModuleTreeEntry[] | undefined,
    graph,
    inputShape: inputShape as number[] | undefined,
    ...(inputDtype ? { inputDtype: 'int32' as const } : {}),
    transforms: transforms as TransformName[] | undefined,
    ...(recipe !== undefined ? { recipe: recipe as Recipe } : {}),
    raw,
  };
}

/** linger's quantizer buffers: only fixed-stage (init) layers have them. */
const QUANTIZER_KEY = /(^|\.)(running_[xwo]|scale_[xwo])$/;

/**
 * Whether the declared stage, the module tree and the transforms agree with the tensor names: a
 * fixed dict has quantizer buffers (running_x, scale_o, …) and a float or traced one has none;
 * a tree entry with fixed-point bits has its buffers among the tensors.
 */
function stageContradiction(
  declared: Stage | undefined,
  names: string[],
  tree: ModuleTreeEntry[] | undefined,
  transforms: TransformName[] | undefined,
): string | undefined {
  const quantKey = names.find((n) => QUANTIZER_KEY.test(n));
  if (declared && declared !== 'fixed' && quantKey)
    return `${K.stage} is ${declared}, but '${quantKey.slice(0, 80)}' is a fixed-point quantizer buffer (a fixed dict)`;
  if (declared === 'fixed' && !quantKey && names.length > 0)
    return `${K.stage} is fixed, but no tensor is a quantizer buffer (running_x, scale_o, …): a float dict`;
  if (transforms) {
    const hasInit = transforms.includes('init');
    if (declared && hasInit !== (declared === 'fixed'))
      return `${K.transforms} ${hasInit ? 'includes' : 'lacks'} init, but ${K.stage} is ${declared}`;
  }
  if (tree) {
    const prefixes = new Set(names.filter((n) => QUANTIZER_KEY.test(n)).map((n) => n.slice(0, Math.max(0, n.lastIndexOf('.')))));
    for (const e of tree) {
      if (e.bits && !prefixes.has(e.path))
        return `module '${e.path.slice(0, 60) || '<root>'}' has fixed-point bits in ${K.moduleTree}, but no quantizer buffers among the tensors`;
    }
    if (declared === 'fixed' && quantKey && !tree.some((e) => e.bits))
      return `${K.stage} is fixed, but no module of ${K.moduleTree} has fixed-point bits`;
  }
  return undefined;
}

export interface OptimizerMetadata {
  type: string;
  param_groups: OptimizerState['param_groups'];
  state: Record<string, Record<string, number>>;
}

/** linger.optimizer checked for shape, and the slot tensors' names (without the prefix) checked against it. */
export function parseOptimizerMetadata(raw: Record<string, string>, slotNames: string[], file: string): OptimizerMetadata | undefined {
  const fail = (p: string): never => {
    throw new CheckpointFormatError(file, p);
  };
  const j = parseJsonEntry(raw, K.optimizer, file);
  if (j === undefined) {
    if (slotNames.length) fail(`optimizer tensors (${slotNames[0]}) without ${K.optimizer} metadata`);
    return undefined;
  }
  const what = `metadata ${K.optimizer}`;
  if (!isObject(j)) fail(`${what} is not an object`);
  const o = j as Record<string, unknown>;
  if (typeof o.type !== 'string') fail(`${what} has no optimizer type`);
  const groups = o.param_groups;
  if (!Array.isArray(groups) || groups.length === 0) fail(`${what}: param_groups is not a non-empty list`);
  const count = new Set<number>();
  for (const g of groups as unknown[]) {
    if (!isObject(g) || typeof g.lr !== 'number' || !Array.isArray(g.params) || !g.params.every((p) => Number.isSafeInteger(p) && p >= 0)) {
      fail(`${what}: a param group without a numeric lr and a list of parameter indices`);
    }
    for (const [k, v] of Object.entries(g as Record<string, unknown>)) {
      const ok = typeof v === 'number' || typeof v === 'boolean' || (Array.isArray(v) && v.every((x) => typeof x === 'number'));
      if (!ok) fail(`${what}: param group setting '${k}' is not a number, boolean or list of numbers`);
    }
    for (const p of (g as { params: number[] }).params) count.add(p);
  }
  if (!isObject(o.state)) fail(`${what}: state is not an object`);
  for (const [i, e] of Object.entries(o.state as Record<string, unknown>)) {
    if (!/^\d+$/.test(i) || !count.has(Number(i))) fail(`${what}: state for parameter '${i}', which no param group lists`);
    if (!isObject(e) || !Object.values(e).every((v) => typeof v === 'number' && Number.isFinite(v)))
      fail(`${what}: state of parameter ${i} is not an object of numbers`);
  }
  for (const n of slotNames) {
    const m = /^(\d+)\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(n);
    if (!m || !count.has(Number(m[1])))
      fail(`optimizer tensor '${OPTIMIZER_PREFIX}${n}' does not name a listed parameter and a slot (${OPTIMIZER_PREFIX}<index>/<slot>)`);
  }
  return j as unknown as OptimizerMetadata;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * A stored tensor's values as the engine keeps them: floats as float32, integers as int32
 * (PyTorch's int64, e.g. num_batches_tracked, must fit). Pure JS, no TF allocation.
 */
export function decodeTensor(name: string, r: RawTensor, file: string): { dtype: 'float32' | 'int32'; values: Float32Array | Int32Array } {
  const n = r.data.byteLength / DTYPE_SIZES[r.dtype];
  const dv = new DataView(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  switch (r.dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(r.data); // an aligned copy: r.data may sit at any offset of the file's buffer
      return { dtype: 'float32', values: out };
    }
    case 'I32': {
      const out = new Int32Array(n);
      new Uint8Array(out.buffer).set(r.data);
      return { dtype: 'int32', values: out };
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return { dtype: 'float32', values: out };
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return { dtype: 'float32', values: out };
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = dv.getUint16(i * 2, true) << 16;
      return { dtype: 'float32', values: out };
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n)
          throw new CheckpointFormatError(file, `tensor '${name}': int64 value ${v} does not fit the engine's int32`);
        out[i] = Number(v);
      }
      return { dtype: 'int32', values: out };
    }
    case 'I16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      return { dtype: 'int32', values: out };
    }
    case 'I8':
      return { dtype: 'int32', values: Int32Array.from(new Int8Array(r.data.buffer, r.data.byteOffset, n)) };
    case 'U8':
      return { dtype: 'int32', values: Int32Array.from(r.data) };
    case 'BOOL':
      return { dtype: 'int32', values: Int32Array.from(r.data, (b) => (b ? 1 : 0)) };
  }
}

/** What a checkpoint holds, without reading its data: metadata and each tensor's entry. */
export interface CheckpointInfo {
  file: string;
  fileSize: number;
  metadata: CheckpointMetadata;
  tensors: TensorEntry[];
  optimizerTensors: TensorEntry[];
  optimizerType?: string;
}

function readSafetensorsHeaderOf(file: string, opts: ReadOptions) {
  try {
    return readSafetensorsHeader(file, opts);
  } catch (e) {
    throw notTorchError(file, e);
  }
}

/** Without a declared stage, linger's EmptyBatchNorm key (_linger_ignore_parameter) marks a traced dict. */
function withInferredStage(m: CheckpointMetadata, names: string[]): CheckpointMetadata {
  if (m.raw[K.stage] === undefined) m.stage = inferredStage(names, m.stage);
  return m;
}

/** Header-only read for viewers (the checkpoint explorer): validated like loadCheckpoint, no data read. */
export function readCheckpointInfo(file: string, opts: ReadOptions = {}): CheckpointInfo {
  const h = ptHeader(file) ?? readSafetensorsHeaderOf(file, opts);
  const tensors = h.entries.filter((e) => !e.name.startsWith(OPTIMIZER_PREFIX));
  const optimizerTensors = h.entries.filter((e) => e.name.startsWith(OPTIMIZER_PREFIX));
  const names = tensors.map((e) => e.name);
  const metadata = withInferredStage(parseCheckpointMetadata(h.metadata, names, file), names);
  const opt = parseOptimizerMetadata(
    h.metadata,
    optimizerTensors.map((e) => e.name.slice(OPTIMIZER_PREFIX.length)),
    file,
  );
  return { file, fileSize: h.fileSize, metadata, tensors, optimizerTensors, optimizerType: opt?.type };
}

/**
 * Reads a checkpoint: state dict (with its stage), metadata, and optimizer state if saved. The
 * file's structure, the metadata and every value's conversion are checked before any tensor is
 * made; every failure is a CheckpointFormatError naming the file and the problem.
 */
export async function loadCheckpoint(file: string, opts: ReadOptions = {}): Promise<Checkpoint> {
  checkHost();
  let f: { tensors: Map<string, RawTensor>; metadata: Record<string, string> } | undefined = readTorchCheckpoint(file);
  try {
    f ??= readSafetensors(file, opts);
  } catch (e) {
    throw notTorchError(file, e);
  }
  const modelNames = [...f.tensors.keys()].filter((n) => !n.startsWith(OPTIMIZER_PREFIX));
  const slotNames = [...f.tensors.keys()].filter((n) => n.startsWith(OPTIMIZER_PREFIX)).map((n) => n.slice(OPTIMIZER_PREFIX.length));
  const metadata = withInferredStage(parseCheckpointMetadata(f.metadata, modelNames, file), modelNames);
  const oj = parseOptimizerMetadata(f.metadata, slotNames, file);
  // convert everything first (pure JS, may fail), then allocate the tensors (cannot)
  const decoded = [...f.tensors].map(([name, r]) => [name, r.shape, decodeTensor(name, r, file)] as const);
  const entries: [string, Tensor][] = [];
  const slots: [string, Tensor][] = [];
  for (const [name, shape, d] of decoded) {
    const t = new Tensor(tf.tensor(d.values, shape, d.dtype));
    if (name.startsWith(OPTIMIZER_PREFIX)) slots.push([name.slice(OPTIMIZER_PREFIX.length), t]);
    else entries.push([name, t]);
  }
  const stateDict = makeStateDict(entries, metadata.stage);
  if (!metadata.structureHash) metadata.structureHash = structureHash(stateDict);
  let optimizer: OptimizerState | undefined;
  if (oj) {
    const state: OptimizerState['state'] = {};
    for (const [i, e] of Object.entries(oj.state)) state[Number(i)] = { ...e };
    for (const [k, t] of slots) {
      const [i, slot] = k.split('/');
      (state[Number(i)] ??= {})[slot] = t;
    }
    optimizer = { param_groups: oj.param_groups, state };
  }
  return { stateDict, metadata, optimizer, optimizerType: oj?.type };
}

/** linger.load: the state dict of a checkpoint (its stage set from the metadata). */
export async function load(file: string): Promise<StateDict> {
  const ck = await loadCheckpoint(file);
  for (const e of Object.values(ck.optimizer?.state ?? {})) {
    for (const v of Object.values(e)) if (v instanceof Tensor) v.dispose();
  }
  return ck.stateDict;
}
