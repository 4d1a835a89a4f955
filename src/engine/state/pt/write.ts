// Writing torch.save's zip layout (docs/pt-checkpoints.md): archive/data.pkl, a protocol-2 pickle
// of an OrderedDict of _rebuild_tensor_v2 calls over persistent-id storages (the opcodes
// torch.load(weights_only=True) accepts), archive/data/<i>, archive/version "3", and linger's
// metadata as archive/linger_metadata.json, which torch.load ignores.
import { RawTensor } from '../safetensors';
import { METADATA_ENTRY } from './read';
import { zipChunks } from './zip';

export const ARCHIVE = 'archive';

/** linger's int64 buffers, kept as int32 here: written back as int64 (LongStorage). */
export const INT64_KEY = /(^|\.)num_batches_tracked$/;

class PickleWriter {
  private parts: Buffer[] = [];
  private memo = new Map<string, number>();
  op(...bytes: number[]): void {
    this.parts.push(Buffer.from(bytes));
  }
  int(n: number): void {
    if (n >= 0 && n < 256) this.op(0x4b, n);
    else if (n >= 0 && n < 65536) this.op(0x4d, n & 0xff, n >> 8);
    else if (n >= -(2 ** 31) && n < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(n, 1);
      this.parts.push(b);
    } else {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(BigInt(n));
      this.parts.push(Buffer.from([0x8a, 8]), b);
    }
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    this.parts.push(h, b);
  }
  /** A global, memoized: BINGET after the first time. */
  global(module: string, name: string): void {
    const key = `${module}\n${name}`;
    const at = this.memo.get(key);
    if (at !== undefined) return this.get(at);
    this.parts.push(Buffer.from(`c${module}\n${name}\n`, 'latin1'));
    this.put(key);
  }
  private put(key: string): void {
    const i = this.memo.size;
    this.memo.set(key, i);
    if (i < 256) this.op(0x71, i);
    else {
      const b = Buffer.alloc(5);
      b[0] = 0x72;
      b.writeUInt32LE(i, 1);
      this.parts.push(b);
    }
  }
  private get(i: number): void {
    if (i < 256) this.op(0x68, i);
    else {
      const b = Buffer.alloc(5);
      b[0] = 0x6a;
      b.writeUInt32LE(i, 1);
      this.parts.push(b);
    }
  }
  tuple(items: number[]): void {
    if (items.length === 0) return this.op(0x29);
    if (items.length > 3) this.op(0x28);
    for (const d of items) this.int(d);
    this.op(items.length === 1 ? 0x85 : items.length === 2 ? 0x86 : items.length === 3 ? 0x87 : 0x74);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, acc = 1; i >= 0; i--) {
    s[i] = acc;
    acc *= Math.max(shape[i], 1);
  }
  return s;
}

/** int32 values as int64 little-endian bytes. */
function widen(r: RawTensor): Uint8Array {
  const src = new DataView(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  const out = Buffer.alloc(r.data.byteLength * 2);
  for (let i = 0; i < r.data.byteLength / 4; i++) out.writeBigInt64LE(BigInt(src.getInt32(i * 4, true)), i * 8);
  return out;
}

/** The file's chunks: tensors (F32 or I32) in order, and string metadata for the side entry. */
export function ptChunks(tensors: readonly (readonly [string, RawTensor])[], metadata: Record<string, string>): Uint8Array[] {
  const w = new PickleWriter();
  w.op(0x80, 2);
  w.global('collections', 'OrderedDict');
  w.op(0x29, 0x52); // OrderedDict()
  const storages: { name: string; data: Uint8Array[] }[] = [];
  const seen = new Set<string>();
  if (tensors.length) w.op(0x28);
  tensors.forEach(([name, t], i) => {
    if (seen.has(name)) throw new Error(`.pt writing: tensor name '${name}' is used twice`);
    seen.add(name);
    const long = t.dtype === 'I32' && INT64_KEY.test(name);
    const type = t.dtype === 'F32' ? 'FloatStorage' : t.dtype === 'I32' ? (long ? 'LongStorage' : 'IntStorage') : undefined;
    if (!type) throw new Error(`.pt writing: tensor '${name}' is ${t.dtype} (float32 and int32 are written)`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel * 4 !== t.data.byteLength)
      throw new Error(`.pt writing: tensor '${name}' has ${t.data.byteLength} bytes for shape [${t.shape.join(', ')}]`);
    w.str(name);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.op(0x28, 0x28); // ( ( 'storage', type, key, 'cpu', numel ) BINPERSID
    w.str('storage');
    w.global('torch', type);
    w.str(String(i));
    w.str('cpu');
    w.int(numel);
    w.op(0x74, 0x51);
    w.int(0);
    w.tuple(t.shape);
    w.tuple(contiguousStrides(t.shape));
    w.op(0x89); // requires_grad False
    w.global('collections', 'OrderedDict');
    w.op(0x29, 0x52, 0x74, 0x52); // OrderedDict() ) → _rebuild_tensor_v2(...)
    storages.push({ name: `${ARCHIVE}/data/${i}`, data: [long ? widen(t) : t.data] });
  });
  if (tensors.length) w.op(0x75);
  w.op(0x2e);
  return zipChunks([
    { name: `${ARCHIVE}/data.pkl`, data: [w.bytes()] },
    ...storages,
    { name: `${ARCHIVE}/version`, data: [Buffer.from('3\n')] },
    ...(Object.keys(metadata).length
      ? [{ name: `${ARCHIVE}/${METADATA_ENTRY}`, data: [Buffer.from(JSON.stringify(metadata), 'utf8')] }]
      : []),
  ]);
}
