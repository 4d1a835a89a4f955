// Node builders and value helpers the lowerings share (float modules, tensor ops, linger's ops).
import { tf } from '../../backend/tf';
import { ClassTable } from '../../nn/classTable';
import { Conv1d, Conv2d, ConvNd, ConvTranspose2d } from '../../nn/conv';
import { Tensor } from '../../tensor';
import { GraphBuilder } from '../graphBuilder';
import { DT } from '../proto';

/** Logical (PyTorch-order) values of a physical tf tensor stored in layout `perm`. */
export function logicalValues(raw: tf.Tensor, perm: readonly number[] | null): { dims: number[]; values: Float32Array | Int32Array } {
  const t = new Tensor(raw, perm);
  return { dims: t.shape, values: t.dataSync() };
}

/** Conv / ConvTranspose with constant weight (logical values) and bias. */
export function convNode(
  g: GraphBuilder,
  x: string,
  m: ConvNd,
  w: { dims: number[]; values: ArrayLike<number> },
  b: ArrayLike<number> | null,
  scope: string,
  path: string,
  dataType: number = DT.FLOAT,
  wName = 'weight',
  bName = 'bias',
): string {
  const ins = [x, g.initializer(`${path}.${wName}`, w.dims, dataType, w.values)];
  if (b) ins.push(g.initializer(`${path}.${bName}`, [b.length], dataType, b));
  const { op } = convNodeOf(m);
  return g.op(op, ins, `${scope}/${op}`, convAttrs(m));
}

/** Linear: Gemm for 2-d inputs, else MatMul with the transposed weight (+ Add). */
export function linearNode(
  g: GraphBuilder,
  x: string,
  rank: number,
  w: { dims: number[]; values: ArrayLike<number> },
  b: ArrayLike<number> | null,
  scope: string,
  path: string,
  wName = 'weight',
  bName = 'bias',
): string {
  if (rank === 2) {
    const ins = [x, g.initializer(`${path}.${wName}`, w.dims, DT.FLOAT, w.values)];
    if (b) ins.push(g.initializer(`${path}.${bName}`, [b.length], DT.FLOAT, b));
    return g.op('Gemm', ins, `${scope}/Gemm`, { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
  }
  const [out, inF] = w.dims;
  const wt = new Float32Array(out * inF);
  for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) wt[i * out + o] = w.values[o * inF + i];
  let y = g.op('MatMul', [x, g.initializer(`${path}.${wName}_t`, [inF, out], DT.FLOAT, wt)], `${scope}/MatMul`);
  if (b) y = g.op('Add', [y, g.initializer(`${path}.${bName}`, [b.length], DT.FLOAT, b)], `${scope}/Add`);
  return y;
}

/** tf.tidy for a function that returns plain data. */
export function tidyValue<T>(fn: () => T): T {
  let out!: T;
  tf.tidy(() => {
    out = fn();
  });
  return out;
}

/** A conv class's ONNX node: its op type and attributes (2-d, 1-d, transposed), by the nearest registered class. */
const CONV_NODES = new ClassTable<{ op: 'Conv' | 'ConvTranspose'; attrs(m: ConvNd): Record<string, number | number[]> }>();
CONV_NODES.set(ConvTranspose2d, {
  op: 'ConvTranspose',
  attrs: (c) => {
    const m = c as ConvTranspose2d;
    return {
      dilations: [...m.dilation],
      group: m.groups,
      kernel_shape: [...m.kernelSize],
      output_padding: [...m.outputPadding],
      pads: [m.padding[0], m.padding[1], m.padding[0], m.padding[1]],
      strides: [...m.stride],
    };
  },
});
CONV_NODES.set(Conv1d, {
  op: 'Conv',
  attrs: (c) => {
    const m = c as Conv1d;
    const g = m.geometry();
    return {
      dilations: [m.dilation],
      group: m.groups,
      kernel_shape: [m.kernelSize],
      pads: [g.pads[1][0], g.pads[1][1]],
      strides: [m.stride],
    };
  },
});
CONV_NODES.set(Conv2d, {
  op: 'Conv',
  attrs: (c) => {
    const m = c as Conv2d;
    const g = m.geometry();
    return {
      dilations: [...m.dilation],
      group: m.groups,
      kernel_shape: [...m.kernelSize],
      pads: [g.pads[0][0], g.pads[1][0], g.pads[0][1], g.pads[1][1]],
      strides: [...m.stride],
    };
  },
});

function convNodeOf(m: ConvNd): { op: 'Conv' | 'ConvTranspose'; attrs(m: ConvNd): Record<string, number | number[]> } {
  const n = CONV_NODES.lookup(m);
  if (!n) throw new Error(`no ONNX conv node for a ${m.typeName()}`);
  return n;
}

/** ONNX conv attributes of a conv layer (2-d, 1-d, transposed). */
export function convAttrs(m: ConvNd): Record<string, number | number[]> {
  return convNodeOf(m).attrs(m);
}

/** Adaptive average pooling as GlobalAveragePool or an AveragePool with even bins. */
export function adaptiveAvgPool(g: GraphBuilder, x: string, inShape: number[], out: [number, number], scope: string): string {
  const [, , h, w] = inShape;
  if (out[0] === 1 && out[1] === 1) return g.op('GlobalAveragePool', [x], `${scope}/GlobalAveragePool`);
  if (h % out[0] === 0 && w % out[1] === 0) {
    const k = [h / out[0], w / out[1]];
    return g.op('AveragePool', [x], `${scope}/AveragePool`, { kernel_shape: k, strides: k });
  }
  throw new Error(`adaptive average pooling ${h}×${w} → ${out.join('×')} has uneven bins, which ONNX pooling cannot express`);
}
