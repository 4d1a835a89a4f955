// Stage checkpoints (SPEC §6): a state dict in safetensors with linger's metadata, so viewers can
// show the model without code and training can resume where it stopped.
import { createHash } from 'node:crypto';
import { tf } from '../backend/tf';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { graphOf } from '../linger/transforms';
import { Optimizer, OptimizerState } from '../train/optim';
import { CheckpointFormatError, RawTensor, readSafetensors, serializeSafetensors, writeFileAtomic } from './safetensors';
import { makeStateDict, Stage, STAGES, StateDict, stageOfDict } from './stateDict';
import { version as ENGINE_VERSION } from '../../../package.json';

export const FORMAT = 'linger-studio/1';
const OPT_PREFIX = '__optimizer__/';

export interface SaveOptions {
  metrics?: Record<string, number>;
  /** the checkpoint this one came from */
  parent?: string;
  /** NCHW input shape, batch first */
  inputShape?: number[];
  /** saved with the weights so training can resume exactly */
  optimizer?: Optimizer;
}

export interface ModuleTreeEntry { path: string; type: string; repr: string; parameters: number; aheadRelu?: boolean }

export interface CheckpointMetadata {
  format: string; stage: Stage; version: string; model: string; structureHash: string; created: string;
  metrics: Record<string, number>; parent?: string; moduleTree?: ModuleTreeEntry[]; graph?: unknown; inputShape?: number[];
  /** every raw metadata entry as stored */
  raw: Record<string, string>;
}

export interface Checkpoint {
  stateDict: StateDict;
  metadata: CheckpointMetadata;
  optimizer?: OptimizerState;
}

/** The model's tree as plain data: names, types, settings (the printed repr), sizes, marks. */
export function moduleTree(model: Module): ModuleTreeEntry[] {
  return [...model.namedModules()].map(([path, m]) => ({
    path, type: m.typeName(), repr: m.extraRepr(),
    parameters: m.ownParameters().reduce((a, [, p]) => a + p.size, 0),
    ...((m as { aheadRelu?: boolean }).aheadRelu ? { aheadRelu: true } : {}),
  }));
}

/** A hash of the state's structure (keys, shapes, dtypes): equal for checkpoints of one model layout. */
export function structureHash(sd: Record<string, Tensor>): string {
  const h = createHash('sha256');
  for (const [k, t] of Object.entries(sd)) h.update(`${k}:${t.dtype}:${t.shape.join('x')};`);
  return h.digest('hex').slice(0, 16);
}

function toRaw(t: Tensor): RawTensor {
  const d = t.dataSync();
  const bytes = new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
  return { dtype: t.dtype === 'int32' ? 'I32' : 'F32', shape: t.shape, data: bytes };
}

function fromRaw(name: string, r: RawTensor, file: string): Tensor {
  const n = r.shape.reduce((a, b) => a * b, 1);
  const copy = new Uint8Array(r.data); // an aligned copy (r.data may be a view into a Buffer pool)
  switch (r.dtype) {
    case 'F32': return new Tensor(tf.tensor(new Float32Array(copy.buffer, 0, n), r.shape, 'float32'));
    case 'F64': return new Tensor(tf.tensor(Float32Array.from(new Float64Array(copy.buffer, 0, n)), r.shape, 'float32'));
    case 'I32': return new Tensor(tf.tensor(new Int32Array(copy.buffer, 0, n), r.shape, 'int32'));
    case 'I64': {
      // PyTorch's int64 (num_batches_tracked) is kept as int32
      const v = new BigInt64Array(copy.buffer, 0, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        if (v[i] > 2147483647n || v[i] < -2147483648n) throw new CheckpointFormatError(file, `tensor '${name}': int64 value ${v[i]} does not fit int32`);
        out[i] = Number(v[i]);
      }
      return new Tensor(tf.tensor(out, r.shape, 'int32'));
    }
    case 'U8': return new Tensor(tf.tensor(Int32Array.from(copy.subarray(0, n)), r.shape, 'int32'));
    case 'I8': return new Tensor(tf.tensor(Int32Array.from(new Int8Array(copy.buffer, 0, n)), r.shape, 'int32'));
  }
}

/**
 * linger.save: writes a model's (or a state dict's) state to a safetensors checkpoint with linger
 * metadata, atomically. Returns the path.
 */
export async function save(target: Module | Record<string, Tensor>, file: string, opts: SaveOptions = {}): Promise<string> {
  const isModel = target instanceof Module;
  const sd = isModel ? target.stateDict() : target;
  const stage = isModel ? target.stage() : stageOfDict(sd);
  const tensors: [string, RawTensor][] = Object.entries(sd).map(([k, t]) => [k, toRaw(t)]);
  const metadata: Record<string, string> = {
    'linger.format': FORMAT,
    'linger.stage': stage,
    'linger.version': ENGINE_VERSION,
    'linger.model': isModel ? target.typeName() : 'StateDict',
    'linger.structure_hash': structureHash(sd),
    'linger.created': new Date().toISOString(),
    'linger.metrics': JSON.stringify(opts.metrics ?? {}),
  };
  if (opts.parent) metadata['linger.parent'] = opts.parent;
  if (isModel) {
    metadata['linger.module_tree'] = JSON.stringify(moduleTree(target));
    const g = graphOf(target);
    if (g) metadata['linger.graph'] = JSON.stringify(g);
  }
  if (opts.inputShape) metadata['linger.input_shape'] = JSON.stringify(opts.inputShape);
  if (opts.optimizer) {
    const os = opts.optimizer.stateDict();
    const json: { param_groups: unknown; state: Record<string, Record<string, number>> } = { param_groups: os.param_groups, state: {} };
    for (const [i, entry] of Object.entries(os.state)) {
      json.state[i] = {};
      for (const [slot, v] of Object.entries(entry)) {
        if (v instanceof Tensor) tensors.push([`${OPT_PREFIX}${i}/${slot}`, toRaw(v)]);
        else json.state[i][slot] = v;
      }
    }
    metadata['linger.optimizer'] = JSON.stringify({ type: opts.optimizer.constructor.name, ...json });
  }
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
  return file;
}

function parseJson<T>(raw: Record<string, string>, key: string, file: string): T | undefined {
  if (raw[key] === undefined) return undefined;
  try {
    return JSON.parse(raw[key]) as T;
  } catch {
    throw new CheckpointFormatError(file, `metadata ${key} is not valid JSON`);
  }
}

/** Reads a checkpoint: state dict (with its stage), metadata, and optimizer state if saved. */
export async function loadCheckpoint(file: string): Promise<Checkpoint> {
  const f = readSafetensors(file);
  const raw = f.metadata;
  const entries: [string, Tensor][] = [];
  const optTensors = new Map<string, Tensor>();
  try {
    for (const [name, r] of f.tensors) {
      const t = fromRaw(name, r, file);
      if (name.startsWith(OPT_PREFIX)) optTensors.set(name.slice(OPT_PREFIX.length), t);
      else entries.push([name, t]);
    }
  } catch (e) {
    for (const [, t] of entries) t.dispose();
    for (const t of optTensors.values()) t.dispose();
    throw e;
  }
  const declared = raw['linger.stage'];
  if (declared !== undefined && !STAGES.includes(declared as Stage)) {
    throw new CheckpointFormatError(file, `unknown stage '${declared}' (float, traced or fixed)`);
  }
  const loose: Record<string, Tensor> = Object.fromEntries(entries);
  const stage = (declared as Stage | undefined) ?? stageOfDict(loose);
  const stateDict = makeStateDict(entries, stage);
  const metadata: CheckpointMetadata = {
    format: raw['linger.format'] ?? '', stage, version: raw['linger.version'] ?? '', model: raw['linger.model'] ?? '',
    structureHash: raw['linger.structure_hash'] ?? structureHash(stateDict), created: raw['linger.created'] ?? '',
    metrics: parseJson<Record<string, number>>(raw, 'linger.metrics', file) ?? {}, parent: raw['linger.parent'],
    moduleTree: parseJson<ModuleTreeEntry[]>(raw, 'linger.module_tree', file), graph: parseJson(raw, 'linger.graph', file),
    inputShape: parseJson<number[]>(raw, 'linger.input_shape', file), raw,
  };
  let optimizer: OptimizerState | undefined;
  const oj = parseJson<{ param_groups: OptimizerState['param_groups']; state: Record<string, Record<string, number>> }>(raw, 'linger.optimizer', file);
  if (oj) {
    const state: OptimizerState['state'] = {};
    for (const [i, e] of Object.entries(oj.state ?? {})) state[Number(i)] = { ...e };
    for (const [k, t] of optTensors) {
      const [i, slot] = k.split('/');
      (state[Number(i)] ??= {})[slot] = t;
    }
    optimizer = { param_groups: oj.param_groups, state };
  }
  return { stateDict, metadata, optimizer };
}

/** linger.load: the state dict of a checkpoint (its stage set from the metadata). */
export async function load(file: string): Promise<StateDict> {
  return (await loadCheckpoint(file)).stateDict;
}
