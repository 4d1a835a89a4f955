// Reading torch.save checkpoints (docs/pt-checkpoints.md): the zip layout of PyTorch ≥ 1.6
// (<archive>/data.pkl, <archive>/data/<key>, <archive>/version), through the restricted unpickler;
// the legacy and tar formats are recognised and named. Every storage's size is checked against its
// entry, every tensor's size, stride and offset against its storage, before anything is copied.
import * as fs from 'node:fs';
import { NotARegularFileError, openRegularFile, ioProblem } from '../files';
import { CheckpointFormatError, DTYPE_SIZES, RawTensor, SafetensorsDType } from '../safetensors';
import { describe, PickleError, PyDict, PyStorage, PyTensor, PyTuple, PyValue, STORAGE_TYPES, unpickle } from './pickle';
import { readZipDirectory, readZipEntry, ZipEntry, ZipError } from './zip';

/** The entry our writer adds beside data.pkl for linger's metadata (torch.load ignores it). */
export const METADATA_ENTRY = 'linger_metadata.json';
/** A data.pkl larger than this is not a state dict's. */
export const MAX_PICKLE = 256 * 1024 * 1024;
/** A view may repeat its storage's elements (a zero stride): at most this many bytes, then. */
export const MAX_EXPANDED = 256 * 1024 * 1024;
/** Keys tried, in order, for a state dict nested in a training checkpoint. */
export const STATE_DICT_KEYS = ['state_dict', 'model_state_dict', 'model', 'net', 'weights', 'module'];

const LEGACY_MAGIC = Buffer.from('80028a0a6cfc9c46f9206aa85019', 'hex');

export type TorchFormat = 'zip' | 'legacy' | 'tar' | undefined;

/** The torch.save format of a file's first bytes (at least 4, up to 512), if it is one. */
export function torchFormatOf(head: Uint8Array): TorchFormat {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 4 && (b.readUInt32LE(0) === 0x04034b50 || b.readUInt32LE(0) === 0x06054b50)) return 'zip';
  if (b.length >= LEGACY_MAGIC.length && b.subarray(0, LEGACY_MAGIC.length).equals(LEGACY_MAGIC)) return 'legacy';
  if (b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  return undefined;
}

/** The first bytes of a file (for sniffing its format); never blocks on a FIFO. */
export function fileHead(file: string, n = 512): Buffer {
  const { fd } = openRegularFile(file, 'checkpoint');
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, fs.readSync(fd, b, 0, n, 0));
  } finally {
    fs.closeSync(fd);
  }
}

export interface PtTensor extends RawTensor {
  /** the storage type torch wrote ('FloatStorage') */
  storageType: string;
}
export interface PtFile {
  tensors: Map<string, PtTensor>;
  /** linger's metadata when this engine wrote the file, plus torch.* notes (what was unwrapped, converted, left out) */
  metadata: Record<string, string>;
}

const CONVERTED: Partial<Record<SafetensorsDType, string>> = { F64: 'float64', F16: 'float16', BF16: 'bfloat16' };

/** The state dict inside what data.pkl holds: the dict itself, or one nested under a known key. */
function stateDictOf(top: PyValue, notes: Record<string, string>): PyDict {
  const isStateDict = (v: PyValue): v is PyDict =>
    v instanceof PyDict && v.values.every((x) => x instanceof PyTensor) && v.keys.every((k) => typeof k === 'string');
  if (isStateDict(top)) return top;
  if (top instanceof PyTensor)
    throw new PickleError('it holds a single tensor, not a state dict (torch.save(model.state_dict(), ...) writes one)');
  if (!(top instanceof PyDict)) throw new PickleError(`it holds ${describe(top)}, not a state dict`);
  const named = STATE_DICT_KEYS.map((k) => [k, top.keys.findIndex((x) => x === k)] as const).find(
    ([, i]) => i >= 0 && isStateDict(top.values[i]),
  );
  const candidates = top.values.map((v, i) => i).filter((i) => isStateDict(top.values[i]) && typeof top.keys[i] === 'string');
  const at = named ? named[1] : candidates.length === 1 ? candidates[0] : -1;
  if (at < 0) {
    const bad = top.keys.findIndex((k, i) => typeof k === 'string' && top.values[i] instanceof PyDict);
    throw new PickleError(
      `it holds ${describe(top)}: no state dict (a dict of tensors) in it${bad >= 0 && !candidates.length ? ` ('${String(top.keys[bad])}' is ${describe(top.values[bad])} with values that are not all tensors)` : candidates.length > 1 ? `, and ${candidates.length} candidates (${candidates.map((i) => top.keys[i]).join(', ')}) with none named ${STATE_DICT_KEYS.join('/')}` : ''}`,
    );
  }
  notes['state dict in'] = String(top.keys[at]);
  top.keys.forEach((k, i) => {
    if (i !== at)
      notes[(typeof k === 'string' ? k : describe(k)).replace(/^linger\./, 'linger_')] = `not loaded: ${describe(top.values[i])}`;
  });
  return top.values[at] as PyDict;
}

/** A tensor's bytes in row-major order, copied from its storage (a view, transposed or not). */
function materialize(name: string, t: PyTensor, storage: Uint8Array | null, es: number): { bytes: number; data: Uint8Array } {
  const n = t.size.includes(0) ? 0 : t.size.reduce((a, b) => a * b, 1);
  const bytes = n * es;
  if (!Number.isSafeInteger(bytes)) throw new PickleError(`tensor '${name}': size [${t.size.join(', ')}] is too large`);
  if (n > 0) {
    let last = t.offset;
    for (let i = 0; i < t.size.length; i++) last += (t.size[i] - 1) * t.stride[i];
    if (!Number.isSafeInteger(last) || last >= t.storage.numel)
      throw new PickleError(
        `tensor '${name}': size [${t.size.join(', ')}], stride [${t.stride.join(', ')}] at offset ${t.offset} reach element ${last}, past its storage of ${t.storage.numel}`,
      );
    if (n > t.storage.numel && bytes > MAX_EXPANDED)
      throw new PickleError(
        `tensor '${name}': ${n} elements repeat a storage of ${t.storage.numel} (more than ${MAX_EXPANDED} bytes once expanded)`,
      );
  }
  if (!storage) return { bytes, data: new Uint8Array(0) };
  let contiguous = true;
  for (let i = t.size.length - 1, want = 1; i >= 0; i--) {
    if (t.size[i] !== 1 && t.stride[i] !== want) contiguous = false;
    want *= t.size[i];
  }
  if (contiguous || n === 0) return { bytes, data: storage.subarray(t.offset * es, t.offset * es + bytes) };
  const out = new Uint8Array(bytes);
  const idx = new Array<number>(t.size.length).fill(0);
  let src = t.offset;
  for (let k = 0; k < n; k++) {
    out.set(storage.subarray(src * es, src * es + es), k * es);
    for (let d = t.size.length - 1; d >= 0; d--) {
      if (++idx[d] < t.size[d]) {
        src += t.stride[d];
        break;
      }
      src -= (t.size[d] - 1) * t.stride[d];
      idx[d] = 0;
    }
  }
  return { bytes, data: out };
}

/**
 * Reads a torch.save zip checkpoint. With `withData` false only the structure is read and checked
 * (the pickle, the storages' sizes): the tensors' data are empty.
 */
export function readPt(file: string, withData = true): PtFile {
  const fail = (p: string): never => {
    throw new CheckpointFormatError(file, p);
  };
  let fd: number;
  let size: number;
  try {
    ({ fd, size } = openRegularFile(file, 'checkpoint'));
  } catch (e) {
    throw new CheckpointFormatError(file, e instanceof NotARegularFileError ? e.problem : `cannot read: ${ioProblem(e)}`);
  }
  try {
    const head = Buffer.alloc(Math.min(size, 512));
    fs.readSync(fd, head, 0, head.length, 0);
    const format = torchFormatOf(head);
    if (format === 'legacy')
      fail(
        'a legacy torch.save file (PyTorch < 1.6, or _use_new_zipfile_serialization=False): re-save it with torch.save in PyTorch ≥ 1.6',
      );
    if (format === 'tar') fail('a tar-format torch.save file (PyTorch < 0.4): re-save it with torch.save in PyTorch ≥ 1.6');
    if (format !== 'zip') fail('not a PyTorch zip checkpoint (torch.save writes a zip archive)');
    const entries = readZipDirectory(fd, size);
    const names = [...entries.keys()];
    const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n)) ?? fail('the archive has no <name>/data.pkl (not a torch.save file)');
    const root = pkl.slice(0, pkl.length - 'data.pkl'.length);
    const stray = names.find((n) => !n.startsWith(root));
    if (stray !== undefined) fail(`the entry '${stray.slice(0, 80)}' is outside the archive folder '${root}'`);
    const entry = (n: string) => entries.get(root + n);
    const small = (n: string) => {
      const e = entry(n);
      if (!e) return undefined;
      if (e.size > 1024 * 1024) fail(`${root}${n} is ${e.size} bytes (more than a megabyte)`);
      return readZipEntry(fd, e).toString('utf8');
    };
    const version = small('version');
    if (version !== undefined && !/^\s*[1-9]\d?\s*$/.test(version))
      fail(`${root}version is '${version.slice(0, 20)}', not a format version`);
    const order = small('byteorder');
    if (order !== undefined && order.trim() !== 'little')
      fail(`byte order '${order.slice(0, 20)}': only little-endian checkpoints are read`);
    const pe = entry('data.pkl')!;
    if (pe.size > MAX_PICKLE) fail(`${pkl} is ${pe.size} bytes (more than ${MAX_PICKLE})`);
    const storages = new Map<string, PyStorage>();
    const persistent = (pid: PyValue): PyValue => {
      if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage')
        throw new PickleError(`a persistent id ${describe(pid)} that is not ('storage', type, key, location, size)`);
      const [, type, key, location, numel] = pid.items;
      const st = type instanceof Object && 'name' in type ? (type as { name: string; module: string }) : undefined;
      if (!st || !STORAGE_TYPES[st.name]) throw new PickleError(`a persistent id of ${describe(type)}, not a storage type`);
      if (typeof key !== 'string' || typeof location !== 'string') throw new PickleError('a storage whose key or location is not a string');
      if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
        throw new PickleError(`storage '${key}': size ${describe(numel)} is not a whole number`);
      const e = entry(`data/${key}`);
      if (!e) throw new PickleError(`storage '${key}' has no entry ${root}data/${key}`);
      const bytes = numel * STORAGE_TYPES[st.name].size;
      if (e.size !== bytes) throw new PickleError(`storage '${key}': ${numel} × ${st.name} is ${bytes} bytes, its entry holds ${e.size}`);
      const s = new PyStorage(st.name, key, location, numel);
      const prev = storages.get(key);
      if (prev && prev.storageType !== s.storageType)
        throw new PickleError(`storage '${key}' is read as both ${prev.storageType} and ${s.storageType}`);
      storages.set(key, prev ?? s);
      return prev ?? s;
    };
    const top = unpickle(readZipEntry(fd, pe), persistent);
    const metadata: Record<string, string> = {};
    const meta = small(METADATA_ENTRY);
    if (meta !== undefined) {
      let m: unknown;
      try {
        m = JSON.parse(meta);
      } catch (e) {
        fail(`${root}${METADATA_ENTRY} is not valid JSON (${(e as Error).message})`);
      }
      if (!m || typeof m !== 'object' || Array.isArray(m) || !Object.values(m).every((v) => typeof v === 'string'))
        fail(`${root}${METADATA_ENTRY} is not an object of strings`);
      for (const [k, v] of Object.entries(m as Record<string, string>)) if (k.startsWith('linger.')) metadata[k] = v;
    }
    const sd = stateDictOf(top, metadata);
    const data = new Map<string, Uint8Array>();
    const tensors = new Map<string, PtTensor>();
    const converted = new Map<string, string[]>();
    sd.keys.forEach((k, i) => {
      const name = k as string;
      const t = sd.values[i] as PyTensor;
      const info = STORAGE_TYPES[t.storage.storageType];
      let bytes: Uint8Array | null = null;
      if (withData) {
        bytes = data.get(t.storage.key) ?? readZipEntry(fd, entry(`data/${t.storage.key}`)!);
        data.set(t.storage.key, bytes);
      }
      const m = materialize(name, t, bytes, info.size);
      const dtype = info.dtype as SafetensorsDType;
      if (withData && m.data.byteLength !== m.bytes) throw new PickleError(`tensor '${name}': ${m.data.byteLength} bytes for ${m.bytes}`);
      if (DTYPE_SIZES[dtype] !== info.size) throw new PickleError(`storage type ${t.storage.storageType}`);
      tensors.set(name, { dtype, shape: t.size, data: m.data, storageType: t.storage.storageType });
      if (CONVERTED[dtype]) converted.set(CONVERTED[dtype]!, [...(converted.get(CONVERTED[dtype]!) ?? []), name]);
    });
    for (const [from, ns] of converted)
      metadata[`from ${from}`] =
        `${ns.length} tensor${ns.length > 1 ? 's' : ''} read as float32 (${ns.slice(0, 3).join(', ')}${ns.length > 3 ? ', …' : ''})`;
    return { tensors, metadata };
  } catch (e) {
    if (e instanceof CheckpointFormatError) throw e;
    if (e instanceof PickleError || e instanceof ZipError) throw new CheckpointFormatError(file, e.message);
    throw new CheckpointFormatError(file, `cannot read: ${ioProblem(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}

export type { ZipEntry };
