import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { Tensor } from '../tensor';
import { Module, ShapeError } from './module';
import { expectInput, NHWC, pair, Pair } from './layout';
import { pyBool, pyIntOrTuple } from './repr';

type Size = number | [number, number];

export interface PoolOptions {
  stride?: Size | null;
  padding?: Size;
  dilation?: Size;
  ceilMode?: boolean;
}

/** PyTorch's pooling output size, including its ceil_mode rule (the last window must start inside). */
export function poolOutSize(inp: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const num = inp + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(num / s) : Math.floor(num / s)) + 1;
  if (ceil && (out - 1) * s >= inp + p) out--;
  return out;
}

export function maxPool2dRaw(x: Tensor, m: Module | null, k: Pair, s: Pair, p: Pair, ceil: boolean): Tensor {
  const xr = x.physical(NHWC) as tf.Tensor4D;
  const [, h, w] = xr.shape;
  const oh = poolOutSize(h, k[0], s[0], p[0], 1, ceil);
  const ow = poolOutSize(w, k[1], s[1], p[1], 1, ceil);
  if (oh < 1 || ow < 1) {
    if (m) throw new ShapeError(m, `input of spatial size ${h}×${w} is smaller than the pooling window ${k.join('×')}`);
    throw new Error(`max_pool2d: input ${h}×${w} is smaller than the window ${k.join('×')}`);
  }
  // pad with −∞ so that padding never wins, then a valid pool of exactly PyTorch's output size
  const extraH = Math.max(0, (oh - 1) * s[0] + k[0] - (h + 2 * p[0]));
  const extraW = Math.max(0, (ow - 1) * s[1] + k[1] - (w + 2 * p[1]));
  const padded =
    p[0] || p[1] || extraH || extraW
      ? (tf.pad(
          xr,
          [
            [0, 0],
            [p[0], p[0] + extraH],
            [p[1], p[1] + extraW],
            [0, 0],
          ],
          -Infinity,
        ) as tf.Tensor4D)
      : xr;
  return new Tensor(K.maxPool2d(padded, k, s), NHWC, x.quantScale); // the max of codes is a code
}

export class MaxPool2d extends Module {
  readonly stride: Size;
  constructor(
    readonly kernelSize: Size,
    opts: PoolOptions = {},
  ) {
    super();
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.ceilMode = opts.ceilMode ?? false;
    if (pair(this.dilation, 'dilation').some((v) => v !== 1)) throw new Error('MaxPool2d: dilation > 1 is not supported yet');
    const k = pair(kernelSize, 'kernel_size');
    const pd = pair(this.padding, 'padding');
    if (pd[0] > k[0] / 2 || pd[1] > k[1] / 2) throw new Error('MaxPool2d: pad should be at most half of effective kernel size');
  }
  readonly padding: Size;
  readonly dilation: Size;
  readonly ceilMode: boolean;

  forward(x: Tensor): Tensor {
    expectInput(this, x, 4);
    return maxPool2dRaw(
      x,
      this,
      pair(this.kernelSize, 'kernel_size'),
      pair(this.stride, 'stride'),
      pair(this.padding, 'padding'),
      this.ceilMode,
    );
  }
  extraRepr(): string {
    return `kernel_size=${pyIntOrTuple(this.kernelSize)}, stride=${pyIntOrTuple(this.stride)}, padding=${pyIntOrTuple(this.padding)}, dilation=${pyIntOrTuple(this.dilation)}, ceil_mode=${pyBool(this.ceilMode)}`;
  }
}

/** Average pooling counting the zero padding (PyTorch's default count_include_pad=True). */
export function avgPool2dRaw(x: Tensor, m: Module | null, k: Pair, s: Pair, p: Pair): Tensor {
  const xr = x.physical(NHWC) as tf.Tensor4D;
  const [, h, w] = xr.shape;
  if (poolOutSize(h, k[0], s[0], p[0], 1, false) < 1 || poolOutSize(w, k[1], s[1], p[1], 1, false) < 1) {
    const msg = `input of spatial size ${h}×${w} is smaller than the pooling window ${k.join('×')}`;
    throw m ? new ShapeError(m, msg) : new Error(`avg_pool2d: ${msg}`);
  }
  const padded =
    p[0] || p[1]
      ? (tf.pad(xr, [
          [0, 0],
          [p[0], p[0]],
          [p[1], p[1]],
          [0, 0],
        ]) as tf.Tensor4D)
      : xr;
  return new Tensor(tf.avgPool(padded, k, s, 'valid'), NHWC);
}

export class AvgPool2d extends Module {
  readonly stride: Size;
  readonly padding: Size;
  constructor(
    readonly kernelSize: Size,
    opts: { stride?: Size | null; padding?: Size; ceilMode?: boolean; countIncludePad?: boolean } = {},
  ) {
    super();
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    if (opts.ceilMode) throw new Error('AvgPool2d: ceil_mode=True is not supported yet');
    if (opts.countIncludePad === false) throw new Error('AvgPool2d: count_include_pad=False is not supported yet');
  }
  forward(x: Tensor): Tensor {
    expectInput(this, x, 4);
    return avgPool2dRaw(x, this, pair(this.kernelSize, 'kernel_size'), pair(this.stride, 'stride'), pair(this.padding, 'padding'));
  }
  extraRepr(): string {
    return `kernel_size=${pyIntOrTuple(this.kernelSize)}, stride=${pyIntOrTuple(this.stride)}, padding=${pyIntOrTuple(this.padding)}`;
  }
}

/** Adaptive average pooling with PyTorch's bins: [floor(i·H/o), ceil((i+1)·H/o)). */
export function adaptiveAvgPool2dRaw(x: Tensor, out: Pair): Tensor {
  const xr = x.physical(NHWC) as tf.Tensor4D;
  const [n, h, w, c] = xr.shape;
  const [oh, ow] = out;
  if (h % oh === 0 && w % ow === 0) {
    return new Tensor(tf.avgPool(xr, [h / oh, w / ow], [h / oh, w / ow], 'valid'), NHWC);
  }
  const rows: tf.Tensor[] = [];
  for (let i = 0; i < oh; i++) {
    const h0 = Math.floor((i * h) / oh),
      h1 = Math.ceil(((i + 1) * h) / oh);
    const cols: tf.Tensor[] = [];
    for (let j = 0; j < ow; j++) {
      const w0 = Math.floor((j * w) / ow),
        w1 = Math.ceil(((j + 1) * w) / ow);
      cols.push(tf.mean(tf.slice(xr, [0, h0, w0, 0], [n, h1 - h0, w1 - w0, c]), [1, 2]));
    }
    rows.push(tf.stack(cols, 1));
  }
  return new Tensor(tf.stack(rows, 1), NHWC);
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Size) {
    super();
  }
  forward(x: Tensor): Tensor {
    expectInput(this, x, 4);
    return adaptiveAvgPool2dRaw(x, pair(this.outputSize, 'output_size'));
  }
  extraRepr(): string {
    return `output_size=${pyIntOrTuple(this.outputSize)}`;
  }
}
