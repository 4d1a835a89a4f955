// The safetensors format: 8-byte little-endian header length, a JSON header, raw little-endian
// tensor data. Reading validates the whole header against the file's size before it allocates
// anything for the data, and never executes anything; writing is atomic (temp file, fsync,
// rename).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ioProblem as fileProblem, NotARegularFileError, openRegularFile } from './files';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
/** Bytes per element of each dtype this reader understands. */
export const DTYPE_SIZES: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};
const DTYPES = Object.keys(DTYPE_SIZES) as SafetensorsDType[];

export interface RawTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: Uint8Array;
}
export interface SafetensorsFile {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

/** One tensor as the header describes it: offsets are relative to the start of the data. */
export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}
export interface SafetensorsHeader {
  entries: TensorEntry[];
  metadata: Record<string, string>;
  /** bytes of JSON after the 8-byte length */
  headerLength: number;
  /** bytes of tensor data after the header */
  dataLength: number;
}

/** A corrupt, truncated or unsupported file, naming the file and the problem. */
export class CheckpointFormatError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'CheckpointFormatError';
  }
}

/** Headers this large are not real checkpoints' (the format's own readers cap at 100 MB). */
export const MAX_HEADER = 100 * 1024 * 1024;
/** More dimensions than any tensor of a real model has (PyTorch's limit is 25). */
export const MAX_RANK = 32;

/**
 * Validates a header's JSON text against the number of data bytes that follow it: every entry's
 * dtype, shape and offsets, and that the tensors tile the data exactly (no overlap, no hole, no
 * trailing bytes: the format's rule). Allocates nothing beyond the parsed JSON.
 */
export function parseHeader(json: Uint8Array, dataLength: number, file = '<buffer>'): SafetensorsHeader {
  const fail = (p: string): never => {
    throw new CheckpointFormatError(file, p);
  };
  let header: unknown;
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  // JSON.parse keeps the last of two equal keys: a second '__metadata__' or tensor entry would be read silently
  const dup = duplicateJsonKey(text);
  if (dup !== undefined)
    fail(`the header has the key ${short(dup.key)} twice${dup.in ? ` in ${short(dup.in)}` : ''} (a reader would silently keep the last)`);
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const metaPairs: [string, string][] = [];
  const entries: TensorEntry[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) fail('__metadata__ is not an object of strings');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ entry '${k}' is not a string (${v === null ? 'null' : typeof v})`);
        metaPairs.push([k, v as string]);
      }
      continue;
    }
    const what = `tensor '${name}'`;
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) fail(`${what}: the entry is not an object`);
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !DTYPES.includes(e.dtype as SafetensorsDType)) {
      fail(`${what}: unsupported dtype ${JSON.stringify(e.dtype) ?? 'undefined'} (this reader knows ${DTYPES.join(', ')})`);
    }
    const dtype = e.dtype as SafetensorsDType;
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${what}: bad shape ${short(shape)} (a list of at most ${MAX_RANK} whole numbers ≥ 0)`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${what}: bad data_offsets ${short(off)} (two whole numbers ≥ 0)`);
    }
    const [begin, end] = off as number[];
    if (begin > end) fail(`${what}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength) fail(`${what}: data_offsets [${begin}, ${end}] run past the ${dataLength} data bytes (truncated file?)`);
    // the element count, without overflow: a zero dimension makes it 0 whatever the others are
    const dims = shape as number[];
    let bytes = dims.includes(0) ? 0 : DTYPE_SIZES[dtype];
    for (const d of dims) {
      bytes *= d;
      if (bytes > dataLength)
        fail(`${what}: shape [${dims.join(', ')}] of ${dtype} needs more bytes than the file's ${dataLength} data bytes`);
    }
    if (end - begin !== bytes)
      fail(`${what}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape [${dims.join(', ')}] of ${dtype} needs ${bytes}`);
    entries.push({ name, dtype, shape: dims.slice(), begin, end });
  }
  // the tensors must tile the data: sorted by offsets, each begins where the previous ended
  const spans = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: TensorEntry | undefined;
  for (const s of spans) {
    if (s.begin < at) fail(`tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${s.name}' [${s.begin}, ${s.end}] overlap`);
    if (s.begin > at) fail(`bytes [${at}, ${s.begin}) of the data belong to no tensor (a hole before '${s.name}')`);
    at = s.end;
    prev = s;
  }
  if (at !== dataLength) fail(`${dataLength - at} bytes after the last tensor belong to no tensor (the header's tensors end at ${at})`);
  return { entries, metadata: Object.fromEntries(metaPairs), headerLength: json.length, dataLength };
}

/**
 * The first key that occurs twice in one object of a JSON text (already known to be valid JSON),
 * with the key of the object holding it; one linear pass, comparing keys after unescaping them.
 */
export function duplicateJsonKey(text: string): { key: string; in?: string } | undefined {
  const frames: Array<{ keys: Set<string> | null; expectKey: boolean; name?: string }> = [];
  let lastKey: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b) {
      frames.push({ keys: new Set(), expectKey: true, name: lastKey });
      lastKey = undefined;
    } else if (c === 0x5b) {
      frames.push({ keys: null, expectKey: false });
      lastKey = undefined;
    } else if (c === 0x7d || c === 0x5d) {
      frames.pop();
      lastKey = undefined;
    } else if (c === 0x2c) {
      const top = frames[frames.length - 1];
      if (top?.keys) top.expectKey = true;
      lastKey = undefined;
    } else if (c === 0x22) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const top = frames[frames.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, ...(top.name !== undefined ? { in: top.name } : {}) };
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      } else {
        lastKey = undefined;
      }
      i = j;
    }
  }
  return undefined;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The header length in the first 8 bytes, checked against the bytes that follow. */
function headerLength(first8: Uint8Array, total: number, file: string): number {
  if (total < 8) throw new CheckpointFormatError(file, `not a safetensors file: ${total} bytes, the 8-byte header length is missing`);
  const big = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (big > BigInt(MAX_HEADER))
    throw new CheckpointFormatError(file, `header length ${big} exceeds the ${MAX_HEADER}-byte limit (not a safetensors file, or corrupt)`);
  const n = Number(big);
  if (n < 2) throw new CheckpointFormatError(file, `header length ${n} is too short for a JSON object`);
  if (8 + n > total) throw new CheckpointFormatError(file, `truncated: the header says ${n} bytes, only ${total - 8} follow`);
  return n;
}

function viewsOf(h: SafetensorsHeader, data: Uint8Array): Map<string, RawTensor> {
  return new Map(h.entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape, data: data.subarray(e.begin, e.end) }]));
}

export interface ReadOptions {
  /**
   * Makes the buffers the reader fills (the header, then the data); by default
   * Buffer.allocUnsafe. Every size asked for has been validated against the file's size.
   */
  allocate?: (bytes: number) => Uint8Array;
}

function ioProblem(e: unknown): string {
  return `cannot read: ${fileProblem(e)}`;
}

function readExactly(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new CheckpointFormatError(file, `the file shrank while it was read (${position + done} bytes)`);
    done += n;
  }
}

/** Opens a file and reads + validates its header; `withData` then reads the data into one buffer. */
function openAndRead<T>(
  file: string,
  opts: ReadOptions,
  withData: ((fd: number, h: SafetensorsHeader) => T) | null,
): { header: SafetensorsHeader; size: number; result?: T } {
  const allocate = opts.allocate ?? ((n: number) => Buffer.allocUnsafe(n));
  let fd: number;
  let size: number;
  try {
    // lstat first and a non-blocking open: a FIFO or a device named *.safetensors never blocks the reader
    ({ fd, size } = openRegularFile(file, 'safetensors'));
  } catch (e) {
    throw new CheckpointFormatError(file, e instanceof NotARegularFileError ? e.problem : ioProblem(e));
  }
  try {
    const first8 = new Uint8Array(8);
    if (size >= 8) readExactly(fd, first8, 0, file);
    const hlen = headerLength(first8, size, file);
    const json = allocate(hlen);
    readExactly(fd, json, 8, file);
    const header = parseHeader(json, size - 8 - hlen, file);
    return { header, size, result: withData ? withData(fd, header) : undefined };
  } catch (e) {
    if (e instanceof CheckpointFormatError) throw e;
    throw new CheckpointFormatError(file, ioProblem(e));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads and parses a file: the 8-byte length first, then the header (its length checked against
 * the file's size), then, only when the header is valid, the data in one buffer of exactly the
 * size the header accounts for.
 */
export function readSafetensors(file: string, opts: ReadOptions = {}): SafetensorsFile {
  const allocate = opts.allocate ?? ((n: number) => Buffer.allocUnsafe(n));
  const { header, result } = openAndRead(file, opts, (fd, h) => {
    const data = allocate(h.dataLength);
    readExactly(fd, data, 8 + h.headerLength, file);
    return data;
  });
  return { tensors: viewsOf(header, result!), metadata: header.metadata };
}

/** The header alone (metadata and tensor entries), for viewers: the data is not read. */
export function readSafetensorsHeader(file: string, opts: ReadOptions = {}): SafetensorsHeader & { fileSize: number } {
  const { header, size } = openAndRead(file, opts, null);
  return { ...header, fileSize: size };
}

// ---- writing ---------------------------------------------------------------------------------------

/** The file as chunks (length, header, each tensor's bytes), so large state is never copied into one buffer. */
export function safetensorsChunks(tensors: readonly (readonly [string, RawTensor])[], metadata: Record<string, string>): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const [name, t] of tensors) {
    if (name === '__metadata__' || seen.has(name))
      throw new Error(`safetensors: tensor name '${name}' is ${seen.has(name) ? 'used twice' : 'reserved'}`);
    seen.add(name);
    const n = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[t.dtype];
    if (n !== t.data.byteLength)
      throw new Error(
        `safetensors: tensor '${name}' has ${t.data.byteLength} bytes, shape [${t.shape.join(', ')}] of ${t.dtype} needs ${n}`,
      );
    // own property even for names like '__proto__'
    Object.defineProperty(header, name, {
      value: { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] },
      enumerable: true,
      configurable: true,
      writable: true,
    });
    offset += n;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, as the format's writers do
  if (pad) json = Buffer.concat([json, Buffer.from(' '.repeat(pad))]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return [len, json, ...tensors.map(([, t]) => t.data)];
}

/** Serializes tensors (in the given order) and string metadata into one buffer. */
export function serializeSafetensors(tensors: [string, RawTensor][], metadata: Record<string, string>): Buffer {
  return Buffer.concat(safetensorsChunks(tensors, metadata));
}

/** Writes tensors and metadata to `file` atomically. */
export function writeSafetensors(file: string, tensors: readonly (readonly [string, RawTensor])[], metadata: Record<string, string>): void {
  writeFileAtomic(file, safetensorsChunks(tensors, metadata));
}

const WRITE_CHUNK = 16 * 1024 * 1024;
const TEMP = /^\.(.+)\.(\d+)\.[0-9a-z]+\.tmp$/;

/** Temp files of `file` left by writers that died (their process is gone), removed. */
function removeStaleTemps(dir: string, base: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = TEMP.exec(n);
    if (!m || m[1] !== base) continue;
    const pid = Number(m[2]);
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(dir, n), { force: true });
    }
  }
}

/**
 * Writes a file atomically: a temp file beside the target, every byte written, fsync, rename over
 * the target, fsync the folder. A crash leaves either the old file or the new one under the final
 * name, never part of one (the temp file of a writer that died is removed by the next write).
 */
export function writeFileAtomic(file: string, data: Uint8Array | readonly Uint8Array[]): void {
  const chunks = data instanceof Uint8Array ? [data] : data;
  const dir = path.dirname(path.resolve(file));
  const base = path.basename(file);
  fs.mkdirSync(dir, { recursive: true });
  removeStaleTemps(dir, base);
  const tmp = path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    for (const c of chunks) {
      // writeSync may write less than asked: loop until every byte is down
      for (let off = 0; off < c.byteLength;) off += fs.writeSync(fd, c, off, Math.min(WRITE_CHUNK, c.byteLength - off));
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* some file systems cannot fsync a directory; the rename is done */
  }
}
