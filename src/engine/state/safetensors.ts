// The safetensors format: 8-byte little-endian header length, a JSON header, raw little-endian
// tensor data. Reading validates every size and offset against the file before allocating and
// never executes anything; writing is atomic (temp file, fsync, rename).
import * as fs from 'node:fs';
import * as path from 'node:path';

export type SafetensorsDType = 'F32' | 'I32' | 'I64' | 'F64' | 'U8' | 'I8';
const SIZES: Record<SafetensorsDType, number> = { F32: 4, I32: 4, I64: 8, F64: 8, U8: 1, I8: 1 };

export interface RawTensor { dtype: SafetensorsDType; shape: number[]; data: Uint8Array }
export interface SafetensorsFile { tensors: Map<string, RawTensor>; metadata: Record<string, string> }

/** A corrupt, truncated or unsupported file, naming the file and the problem. */
export class CheckpointFormatError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'CheckpointFormatError';
  }
}

/** Headers this large are not real checkpoints' (the format's own readers cap at 100 MB). */
export const MAX_HEADER = 100 * 1024 * 1024;

/** Parses a safetensors file's bytes; every failure is a CheckpointFormatError. */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): SafetensorsFile {
  const fail = (p: string): never => { throw new CheckpointFormatError(file, p); };
  if (buf.length < 8) fail(`not a safetensors file: ${buf.length} bytes, the 8-byte header length is missing`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = Number(view.getBigUint64(0, true));
  if (hlen > MAX_HEADER) fail(`header length ${hlen} exceeds the ${MAX_HEADER}-byte limit (corrupt file?)`);
  if (8 + hlen > buf.length) fail(`truncated: the header says ${hlen} bytes, only ${buf.length - 8} follow`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + hlen)));
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const dataStart = 8 + hlen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, RawTensor>();
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object') fail(`tensor '${name}': entry is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in SIZES)) fail(`tensor '${name}': unsupported dtype ${JSON.stringify(e.dtype)} (F32, I32, I64, F64, U8, I8)`);
    const dtype = e.dtype as SafetensorsDType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}': bad shape ${JSON.stringify(e.shape)}`);
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}': bad data_offsets ${JSON.stringify(off)}`);
    const [b, end] = off as number[];
    if (b > end || end > dataLen) fail(`tensor '${name}': data_offsets [${b}, ${end}] outside the ${dataLen} data bytes (truncated?)`);
    let n = 1;
    for (const d of shape) {
      n *= d;
      if (n * SIZES[dtype] > dataLen) fail(`tensor '${name}': shape [${shape.join(', ')}] needs more bytes than the file has`);
    }
    if (end - b !== n * SIZES[dtype]) fail(`tensor '${name}': ${end - b} bytes for shape [${shape.join(', ')}] of ${dtype} (expected ${n * SIZES[dtype]})`);
    spans.push([b, end, name]);
    tensors.set(name, { dtype, shape, data: buf.subarray(dataStart + b, dataStart + end) });
  }
  spans.sort((p, q) => p[0] - q[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) fail(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return { tensors, metadata };
}

/** Reads and parses a file; size checked before reading. */
export function readSafetensors(file: string): SafetensorsFile {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new CheckpointFormatError(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!st.isFile()) throw new CheckpointFormatError(file, 'not a regular file');
  return parseSafetensors(fs.readFileSync(file), file);
}

/** Serializes tensors (in the given order) and string metadata. */
export function serializeSafetensors(tensors: [string, RawTensor][], metadata: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * SIZES[t.dtype];
    if (n !== t.data.byteLength) throw new Error(`tensor '${name}': ${t.data.byteLength} bytes for shape [${t.shape.join(', ')}] of ${t.dtype}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned
  if (pad) json = Buffer.concat([json, Buffer.from(' '.repeat(pad))]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...tensors.map(([, t]) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]);
}

/**
 * Writes a file atomically: a temp file beside the target, fsync, rename over the target, fsync
 * the folder. A crash leaves either the old file or the new one, never half of one.
 */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    fs.writeSync(fd, data);
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
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* some file systems cannot fsync a directory; the rename is done */ }
}
