// The wasm backend's Slice reads its input with readSync, which copies the whole input tensor out
// of the wasm heap on every call; SplitV and Unpack call it once per output. A recurrent layer
// slices each time step out of a sequence, so a 28-step GRU copied its [28, 64, 192] input
// projection 28 times per pass (Unpack: 25 ms forward, more in backward, for ~1 MB of results).
// These replacements read the input through a view on the heap instead: the same values, each
// output costs only its own size. String tensors keep TF.js's kernels.
import { tf } from './tf';

type Info = tf.TensorInfo;
type View = Float32Array | Int32Array | Uint8Array;
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(t: Info): View;
}

/** x[begin : begin + size], copied run by run from a heap view of x. */
function sliceInfo(x: Info, begin: number[], size: number[], backend: WasmBackend): Info {
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.TensorInfo & tf.Tensor, begin, size);
  const out = backend.makeOutput(s, x.dtype);
  const n = tf.util.sizeFromShape(s);
  if (n === 0) return out;
  // views only after makeOutput: an allocation that grows the heap detaches earlier views
  const xv = backend.typedArrayFromHeap(x),
    ov = backend.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, b, s)) {
    const off = tf.slice_util.computeFlatOffset(b, strides);
    ov.set(xv.subarray(off, off + n));
    return out;
  }
  const rank = s.length;
  const inner = s[rank - 1];
  const idx = new Array<number>(rank - 1).fill(0);
  for (let o = 0; o < n / inner; o++) {
    let off = b[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (b[d] + idx[d]) * strides[d];
    ov.set(xv.subarray(off, off + inner), o * inner);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

let installed = false;
const ours = new Set<tf.KernelFunc>();

/** Whether the wasm backend's Slice, SplitV and Unpack are this file's. */
export function wasmSliceInstalled(): boolean {
  return ['Slice', 'SplitV', 'Unpack'].every((k) => {
    const f = tf.getKernel(k, 'wasm')?.kernelFunc;
    return !!f && ours.has(f);
  });
}

/** Registers the heap-view Slice, SplitV and Unpack for the wasm backend (once per process). */
export function installWasmSlice(): void {
  if (installed) return;
  installed = true;
  const original = new Map<string, tf.KernelFunc>();
  for (const name of ['Slice', 'SplitV', 'Unpack']) {
    const k = tf.getKernel(name, 'wasm');
    if (!k) return; // an unexpected TF.js: keep its kernels
    original.set(name, k.kernelFunc);
  }
  const replace = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    ours.add(kernelFunc);
  };
  const isString = (x: Info) => x.dtype === 'string';
  replace('Slice', (args) => {
    const x = args.inputs.x as Info;
    if (isString(x)) return original.get('Slice')!(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    return sliceInfo(x, begin as number[], size as number[], args.backend as unknown as WasmBackend);
  });
  replace('SplitV', (args) => {
    const x = args.inputs.x as Info;
    if (isString(x)) return original.get('SplitV')!(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const a = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.TensorInfo & tf.Tensor, numOrSizeSplits, a);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((n) => {
      const size = [...x.shape];
      size[a] = n;
      const y = sliceInfo(x, [...begin], size, args.backend as unknown as WasmBackend);
      begin[a] += n;
      return y;
    });
  });
  replace('Unpack', (args) => {
    const value = args.inputs.value as Info;
    if (isString(value)) return original.get('Unpack')!(args);
    let axis = (args.attrs as unknown as { axis: number }).axis;
    if (axis < 0) axis += value.shape.length;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const begin = new Array<number>(value.shape.length).fill(0);
    const size = [...value.shape];
    size[axis] = 1;
    return Array.from({ length: value.shape[axis] }, (_, i) => {
      begin[axis] = i;
      const { dataId, dtype } = sliceInfo(value, [...begin], size, args.backend as unknown as WasmBackend);
      return { dataId, dtype, shape: outShape };
    });
  });
}
