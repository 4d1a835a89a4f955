// ONNX protobuf plumbing (onnx-proto, i.e. protobufjs static code): building graphs for export,
// reading values out of decoded models for import, and the atomic file write.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';

export { onnx };

/** TensorProto.DataType values the engine reads or writes. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT16: 5, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;
export const DT_NAMES: Record<number, string> = {
  0: 'UNDEFINED',
  1: 'FLOAT',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'STRING',
  9: 'BOOL',
  10: 'FLOAT16',
  11: 'DOUBLE',
  12: 'UINT32',
  13: 'UINT64',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  16: 'BFLOAT16',
};
/** AttributeProto.AttributeType values. */
export const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

// ---- building (export) ----------------------------------------------------------------------

export type AttrValue = number | string | number[] | { floats: number[] } | { float: number } | onnx.ITensorProto;

/**
 * One attribute. Plain numbers are INT when integral, else FLOAT; wrap as `{ float: 1 }` to force
 * a float (linger's scale attributes are floats even when they are whole numbers).
 */
export function attr(name: string, v: AttrValue): onnx.IAttributeProto {
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  if ('floats' in v && Array.isArray(v.floats)) return { name, type: AT.FLOATS, floats: v.floats };
  if ('float' in v && typeof v.float === 'number') return { name, type: AT.FLOAT, f: v.float };
  return { name, type: AT.TENSOR, t: v as onnx.ITensorProto };
}

export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: Record<string, AttrValue | undefined> = {},
  domain?: string,
): onnx.INodeProto {
  const attribute = Object.entries(attrs)
    .filter((e): e is [string, AttrValue] => e[1] !== undefined)
    .map(([k, v]) => attr(k, v));
  return { opType, input: inputs, output: outputs, name, attribute, ...(domain ? { domain } : {}) };
}

/** A tensor initializer, values as little-endian raw_data. */
export function tensorProto(name: string, dims: number[], dataType: number, values: ArrayLike<number>): onnx.ITensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new Error(`internal: tensor ${name} has ${values.length} values for dims [${dims.join(', ')}]`);
  let raw: Uint8Array;
  switch (dataType) {
    case DT.FLOAT:
      raw = new Uint8Array(Float32Array.from(values).buffer);
      break;
    case DT.DOUBLE:
      raw = new Uint8Array(Float64Array.from(values).buffer);
      break;
    case DT.INT8:
      raw = new Uint8Array(Int8Array.from(values).buffer);
      break;
    case DT.UINT8:
      raw = Uint8Array.from(values);
      break;
    case DT.INT16:
      raw = new Uint8Array(Int16Array.from(values).buffer);
      break;
    case DT.INT32:
      raw = new Uint8Array(Int32Array.from(values).buffer);
      break;
    case DT.INT64:
      raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
      break;
    default:
      throw new Error(`internal: cannot write ONNX data type ${DT_NAMES[dataType] ?? dataType}`);
  }
  return { name, dims, dataType, rawData: raw };
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

export function encodeModel(m: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(m)).finish();
}

/**
 * Writes a file atomically: a temp file beside the target, fsync, rename over the target. A crash
 * leaves the old file or the new one under the final name, never half a file.
 */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

// ---- reading (import) -----------------------------------------------------------------------

type LongLike = number | { toNumber(): number; high: number; low: number; unsigned?: boolean };

/** An int64 field as a JS number; an error beyond ±2^53 (no ONNX dimension or attribute needs it). */
export function toInt(v: LongLike | null | undefined, what: string): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  const n = v.toNumber();
  if (!Number.isSafeInteger(n)) throw new Error(`${what}: integer ${n} is out of range`);
  return n;
}

/** Decoded tensor values: float32 for float data, plain numbers (exact) for integer data. */
export interface TensorValue {
  dims: number[];
  dtype: 'float' | 'int';
  data: Float32Array | number[];
}

const MAX_ELEMENTS = 1 << 28;

/** The values of a TensorProto (raw_data or the typed fields), validated against its dims. */
export function readTensor(t: onnx.ITensorProto, what: string): TensorValue {
  if (t.dataLocation === 1)
    throw new Error(`${what}: external tensor data is not supported (save the model with all tensors inside the file)`);
  const dims = (t.dims ?? []).map((d, i) => {
    const v = toInt(d as LongLike, `${what} dim ${i}`);
    if (v < 0) throw new Error(`${what}: negative dimension ${v}`);
    return v;
  });
  const n = dims.reduce((a, b) => a * b, 1);
  if (n > MAX_ELEMENTS) throw new Error(`${what}: ${n} elements is too large a tensor`);
  const dt = t.dataType ?? 0;
  const raw = t.rawData && t.rawData.length ? t.rawData : null;
  const need = (bytes: number) => {
    if (raw && raw.length !== n * bytes) {
      throw new Error(`${what}: raw data has ${raw.length} bytes, dims [${dims.join(', ')}] of ${DT_NAMES[dt]} need ${n * bytes}`);
    }
  };
  const fromTyped = (arr: ArrayLike<LongLike> | null | undefined, field: string): ArrayLike<LongLike> => {
    const a = arr ?? [];
    if (a.length !== n) throw new Error(`${what}: ${field} has ${a.length} values, dims [${dims.join(', ')}] need ${n}`);
    return a;
  };
  const view = (bytes: number) => new DataView(raw!.buffer, raw!.byteOffset, n * bytes);
  switch (dt) {
    case DT.FLOAT: {
      need(4);
      if (raw) {
        const dv = view(4);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
        return { dims, dtype: 'float', data: out };
      }
      return { dims, dtype: 'float', data: Float32Array.from(fromTyped(t.floatData, 'float_data') as number[]) };
    }
    case DT.DOUBLE: {
      need(8);
      if (raw) {
        const dv = view(8);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
        return { dims, dtype: 'float', data: out };
      }
      return { dims, dtype: 'float', data: Float32Array.from(fromTyped(t.doubleData, 'double_data') as number[]) };
    }
    case DT.INT64: {
      need(8);
      if (raw) {
        const dv = view(8);
        const out: number[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const v = dv.getBigInt64(i * 8, true);
          // shape arithmetic uses INT64_MAX/MIN as "to the end" in Slice; clamp those to ±2^53
          out[i] =
            v > BigInt(Number.MAX_SAFE_INTEGER)
              ? Number.MAX_SAFE_INTEGER
              : v < BigInt(Number.MIN_SAFE_INTEGER)
                ? Number.MIN_SAFE_INTEGER
                : Number(v);
        }
        return { dims, dtype: 'int', data: out };
      }
      return { dims, dtype: 'int', data: Array.from(fromTyped(t.int64Data as LongLike[], 'int64_data'), (v) => clampLong(v)) };
    }
    case DT.INT32:
    case DT.INT16:
    case DT.INT8:
    case DT.UINT8:
    case DT.BOOL: {
      const bytes = dt === DT.INT32 ? 4 : dt === DT.INT16 ? 2 : 1;
      need(bytes);
      if (raw) {
        const dv = view(bytes);
        const out: number[] = new Array(n);
        for (let i = 0; i < n; i++) {
          out[i] =
            bytes === 4
              ? dv.getInt32(i * 4, true)
              : bytes === 2
                ? dv.getInt16(i * 2, true)
                : dt === DT.INT8
                  ? dv.getInt8(i)
                  : dv.getUint8(i);
        }
        return { dims, dtype: 'int', data: out };
      }
      return { dims, dtype: 'int', data: Array.from(fromTyped(t.int32Data, 'int32_data') as number[]) };
    }
    default:
      throw new Error(`${what}: tensor data type ${DT_NAMES[dt] ?? dt} is not supported (float32, float64 and integer tensors are)`);
  }
}

function clampLong(v: LongLike): number {
  if (typeof v === 'number') return v;
  const n = v.toNumber();
  return Math.max(Number.MIN_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, n));
}

/** Attributes of a node by name, with typed getters that name the node on a wrong type. */
export class Attrs {
  private readonly map = new Map<string, onnx.IAttributeProto>();
  constructor(
    n: onnx.INodeProto,
    private readonly where: string,
  ) {
    for (const a of n.attribute ?? []) if (a.name) this.map.set(a.name, a);
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  names(): string[] {
    return [...this.map.keys()];
  }
  private get(name: string, type: number, typeName: string): onnx.IAttributeProto | undefined {
    const a = this.map.get(name);
    if (!a) return undefined;
    // type 0 (undefined) happens in hand-written files; accept it when the field is there
    if (a.type && a.type !== type) throw new Error(`${this.where}: attribute '${name}' should be ${typeName}, it is type ${a.type}`);
    return a;
  }
  int(name: string, dflt: number): number {
    const a = this.get(name, AT.INT, 'an int');
    return a ? toInt(a.i as LongLike, `${this.where} attribute ${name}`) : dflt;
  }
  float(name: string, dflt: number): number {
    const a = this.get(name, AT.FLOAT, 'a float');
    return a ? (a.f ?? 0) : dflt;
  }
  ints(name: string): number[] | undefined {
    const a = this.get(name, AT.INTS, 'a list of ints');
    return a ? (a.ints ?? []).map((v, i) => toInt(v as LongLike, `${this.where} attribute ${name}[${i}]`)) : undefined;
  }
  string(name: string, dflt: string): string {
    const a = this.get(name, AT.STRING, 'a string');
    return a ? new TextDecoder().decode(a.s ?? new Uint8Array()) : dflt;
  }
  tensor(name: string): onnx.ITensorProto | undefined {
    return this.get(name, AT.TENSOR, 'a tensor')?.t ?? undefined;
  }
  raw(name: string): onnx.IAttributeProto | undefined {
    return this.map.get(name);
  }
}

/** linger's custom ONNX domain for the chip toolchain, and the attribute every thinker op carries. */
export const THINKER = 'thinker';
export const PLATFORM = { platform_quant: 'luna_quant' } as const;
