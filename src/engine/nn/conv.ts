import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { initUniform } from './init';
import { Tensor } from '../tensor';
import { Module, Parameter, parameterFrom, ShapeError } from './module';
import { HWIO, KIO, NHWC, NLC, pair, Pair, expectInput, single } from './layout';
import { pyTuple } from './repr';

export type Padding2d = number | [number, number] | 'same' | 'valid';

export interface ConvOptions {
  stride?: number | number[];
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
  paddingMode?: 'zeros';
}

/** PyTorch's kaiming_uniform_(a=√5) bound for weights and the matching bias bound: 1/√fan_in. */
export function defaultInitBound(fanIn: number): number {
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}

/** Explicit [[top, bottom], [left, right]] padding for a conv (PyTorch's 'same' puts the odd pixel last). */
export function explicitPads(padding: Padding2d | Pair, k: Pair, d: Pair): [[number, number], [number, number]] {
  if (padding === 'valid')
    return [
      [0, 0],
      [0, 0],
    ];
  if (padding === 'same') {
    const th = d[0] * (k[0] - 1),
      tw = d[1] * (k[1] - 1);
    return [
      [Math.floor(th / 2), th - Math.floor(th / 2)],
      [Math.floor(tw / 2), tw - Math.floor(tw / 2)],
    ];
  }
  const [ph, pw] = pair(padding, 'padding');
  return [
    [ph, ph],
    [pw, pw],
  ];
}

/**
 * Grouped conv2d on a logical-NCHW tensor with an HWIO physical weight; returns an NHWC tensor.
 * TF.js has no `groups`, so each group is one conv over its channel slice.
 */
export function conv2dHWIO(x: Tensor, w: tf.Tensor4D, b: tf.Tensor | null, geom: K.ConvGeometry, groups: number): Tensor {
  const xr = x.physical(NHWC) as tf.Tensor4D;
  let y: tf.Tensor4D;
  if (groups === 1) {
    y = K.conv2d(xr, w, geom);
  } else {
    const xs = tf.split(xr, groups, 3) as tf.Tensor4D[];
    const ws = tf.split(w, groups, 3) as tf.Tensor4D[];
    y = tf.concat(
      xs.map((xi, i) => K.conv2d(xi, ws[i], geom)),
      3,
    ) as tf.Tensor4D;
  }
  if (b) y = tf.add(y, b) as tf.Tensor4D;
  return new Tensor(y, NHWC);
}

/** Output size of a conv along one axis (PyTorch's formula). */
export function convOutSize(inp: number, k: number, s: number, d: number, padTotal: number): number {
  return Math.floor((inp + padTotal - d * (k - 1) - 1) / s) + 1;
}

export abstract class ConvNd extends Module {
  declare inChannels: number;
  declare outChannels: number;
  declare groups: number;
  abstract weight: Parameter;
  abstract bias: Parameter | null;

  abstract checkInput(x: Tensor): void;
  abstract convWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor;
  /** The weight and bias the forward uses (normalize layers clamp them). */
  effectiveWeight(): tf.Tensor {
    return this.weight.raw;
  }
  effectiveBias(): tf.Tensor | null {
    return this.bias?.raw ?? null;
  }
  /** A last step on the output (normalize layers clamp it). */
  finishOutput(y: Tensor): Tensor {
    return y;
  }

  protected checkChannels(inChannels: number, outChannels: number, groups: number): void {
    if (!Number.isInteger(groups) || groups < 1) throw new Error(`${this.typeName()}: groups must be a positive integer`);
    if (inChannels % groups !== 0)
      throw new Error(`${this.typeName()}: in_channels (${inChannels}) must be divisible by groups (${groups})`);
    if (outChannels % groups !== 0)
      throw new Error(`${this.typeName()}: out_channels (${outChannels}) must be divisible by groups (${groups})`);
  }
}

export class Conv2d extends ConvNd {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair | 'same' | 'valid';
  readonly dilation: Pair;
  readonly paddingMode = 'zeros';

  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    this.checkChannels(inChannels, outChannels, groups);
    hidden(this, { inChannels, outChannels, groups });
    this.kernelSize = pair(kernelSize, 'kernel_size');
    this.stride = pair(opts.stride ?? 1, 'stride');
    const p = opts.padding ?? 0;
    this.padding = typeof p === 'string' ? p : pair(p, 'padding');
    this.dilation = pair(opts.dilation ?? 1, 'dilation');
    if (this.padding === 'same' && (this.stride[0] !== 1 || this.stride[1] !== 1)) {
      throw new Error("Conv2d: padding='same' is not supported for strided convolutions");
    }
    const [kh, kw] = this.kernelSize;
    const fanIn = (inChannels / groups) * kh * kw;
    const bound = defaultInitBound(fanIn);
    const n = outChannels * (inChannels / groups) * kh * kw;
    this.weight = parameterFrom(initUniform(n, bound), [outChannels, inChannels / groups, kh, kw], HWIO);
    this.bias = opts.bias === false ? null : parameterFrom(initUniform(outChannels, bound), [outChannels]);
  }

  geometry(): K.ConvGeometry {
    return { stride: this.stride, dilation: this.dilation, pads: explicitPads(this.padding, this.kernelSize, this.dilation) };
  }

  checkInput(x: Tensor): void {
    expectInput(this, x, 4, { dim: 1, size: this.inChannels, what: 'in_channels' });
    const g = this.geometry();
    const [, , h, w] = x.shape;
    const oh = convOutSize(h, this.kernelSize[0], this.stride[0], this.dilation[0], g.pads[0][0] + g.pads[0][1]);
    const ow = convOutSize(w, this.kernelSize[1], this.stride[1], this.dilation[1], g.pads[1][0] + g.pads[1][1]);
    if (oh < 1 || ow < 1) {
      throw new ShapeError(
        this,
        `input of spatial size ${h}×${w} is smaller than the (dilated) kernel ${this.kernelSize.join('×')} after padding`,
      );
    }
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return this.finishOutput(this.convWith(x, this.effectiveWeight(), this.effectiveBias()));
  }

  /** This layer's convolution with a given physical (HWIO) weight and bias. */
  convWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor {
    return conv2dHWIO(x, w as tf.Tensor4D, b, this.geometry(), this.groups);
  }

  extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple(this.kernelSize)}, stride=${pyTuple(this.stride)}`;
    if (typeof this.padding === 'string') s += `, padding=${this.padding}`;
    else if (this.padding.some((v) => v !== 0)) s += `, padding=${pyTuple(this.padding)}`;
    if (this.dilation.some((v) => v !== 1)) s += `, dilation=${pyTuple(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}

export class Conv1d extends ConvNd {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number | 'same' | 'valid';
  readonly dilation: number;

  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    this.checkChannels(inChannels, outChannels, groups);
    hidden(this, { inChannels, outChannels, groups });
    this.kernelSize = single(kernelSize, 'kernel_size');
    this.stride = single(opts.stride ?? 1, 'stride');
    const p = opts.padding ?? 0;
    this.padding = typeof p === 'string' ? p : single(p, 'padding');
    this.dilation = single(opts.dilation ?? 1, 'dilation');
    const fanIn = (inChannels / groups) * this.kernelSize;
    const bound = defaultInitBound(fanIn);
    const n = outChannels * (inChannels / groups) * this.kernelSize;
    this.weight = parameterFrom(initUniform(n, bound), [outChannels, inChannels / groups, this.kernelSize], KIO);
    this.bias = opts.bias === false ? null : parameterFrom(initUniform(outChannels, bound), [outChannels]);
  }

  geometry(): K.ConvGeometry {
    const pads = explicitPads(
      typeof this.padding === 'string' ? this.padding : [0, this.padding],
      [1, this.kernelSize],
      [1, this.dilation],
    );
    return { stride: [1, this.stride], dilation: [1, this.dilation], pads: [[0, 0], pads[1]] };
  }

  checkInput(x: Tensor): void {
    expectInput(this, x, 3, { dim: 1, size: this.inChannels, what: 'in_channels' });
    const l = x.shape[2];
    const g = this.geometry();
    if (convOutSize(l, this.kernelSize, this.stride, this.dilation, g.pads[1][0] + g.pads[1][1]) < 1) {
      throw new ShapeError(this, `input of length ${l} is smaller than the (dilated) kernel ${this.kernelSize} after padding`);
    }
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return this.finishOutput(this.convWith(x, this.effectiveWeight(), this.effectiveBias()));
  }

  /** This layer's convolution with a given physical ([k, in/g, out]) weight and bias. */
  convWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor {
    // [N, L, C] → [N, 1, L, C]; the weight [k, in, out] → [1, k, in, out]
    const [n, c, l] = x.shape;
    const x4 = new Tensor(tf.reshape(x.physical(NLC), [n, 1, l, c]), NHWC);
    const [k, ci, co] = w.shape;
    const y = conv2dHWIO(x4, tf.reshape(w, [1, k, ci, co]) as tf.Tensor4D, b, this.geometry(), this.groups);
    const [, , lo, oc] = y.raw.shape;
    return new Tensor(tf.reshape(y.raw, [n, lo, oc]), NLC);
  }

  extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple([this.kernelSize])}, stride=${pyTuple([this.stride])}`;
    if (typeof this.padding === 'string') s += `, padding=${this.padding}`;
    else if (this.padding !== 0) s += `, padding=${pyTuple([this.padding])}`;
    if (this.dilation !== 1) s += `, dilation=${pyTuple([this.dilation])}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: number | number[];
}

/**
 * ConvTranspose2d as a stride-1 conv over the zero-inserted input with the flipped kernel; weight
 * kept in PyTorch's [in, out/groups, kH, kW] layout (it is small and not on the demo's hot path).
 */
export class ConvTranspose2d extends ConvNd {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly outputPadding: Pair;

  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvTransposeOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    this.checkChannels(inChannels, outChannels, groups);
    hidden(this, { inChannels, outChannels, groups });
    this.kernelSize = pair(kernelSize, 'kernel_size');
    this.stride = pair(opts.stride ?? 1, 'stride');
    if (typeof opts.padding === 'string') throw new Error(`ConvTranspose2d: padding='${opts.padding}' is not supported (PyTorch neither)`);
    this.padding = pair(opts.padding ?? 0, 'padding');
    this.dilation = pair(opts.dilation ?? 1, 'dilation');
    this.outputPadding = pair(opts.outputPadding ?? 0, 'output_padding');
    for (let i = 0; i < 2; i++) {
      if (this.outputPadding[i] >= Math.max(this.stride[i], this.dilation[i])) {
        throw new Error(`ConvTranspose2d: output_padding (${this.outputPadding[i]}) must be smaller than either stride or dilation`);
      }
    }
    const [kh, kw] = this.kernelSize;
    // PyTorch computes fan_in from weight dim 1: out/groups · kH · kW
    const bound = defaultInitBound((outChannels / groups) * kh * kw);
    const n = inChannels * (outChannels / groups) * kh * kw;
    this.weight = parameterFrom(initUniform(n, bound), [inChannels, outChannels / groups, kh, kw]);
    this.bias = opts.bias === false ? null : parameterFrom(initUniform(outChannels, bound), [outChannels]);
  }

  /** Output spatial size (PyTorch's formula). */
  outSize(h: number, w: number): Pair {
    const f = (i: number, v: number) =>
      (v - 1) * this.stride[i] - 2 * this.padding[i] + this.dilation[i] * (this.kernelSize[i] - 1) + this.outputPadding[i] + 1;
    return [f(0, h), f(1, w)];
  }

  checkInput(x: Tensor): void {
    expectInput(this, x, 4, { dim: 1, size: this.inChannels, what: 'in_channels' });
    const [, , h, w] = x.shape;
    const [oh, ow] = this.outSize(h, w);
    if (oh < 1 || ow < 1) throw new ShapeError(this, `output size ${oh}×${ow} for input ${h}×${w} is not positive`);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return this.finishOutput(this.convWith(x, this.effectiveWeight(), this.effectiveBias()));
  }

  /** This layer's transposed convolution with a given [in, out/g, kH, kW] weight and bias. */
  convWith(x: Tensor, w: tf.Tensor, b: tf.Tensor | null): Tensor {
    return convTranspose2dRaw(x, w, b, this, this.groups);
  }

  extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple(this.kernelSize)}, stride=${pyTuple(this.stride)}`;
    if (this.padding.some((v) => v !== 0)) s += `, padding=${pyTuple(this.padding)}`;
    if (this.dilation.some((v) => v !== 1)) s += `, dilation=${pyTuple(this.dilation)}`;
    if (this.outputPadding.some((v) => v !== 0)) s += `, output_padding=${pyTuple(this.outputPadding)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}

export interface TransposeGeometry {
  kernelSize: Pair;
  stride: Pair;
  padding: Pair;
  dilation: Pair;
  outputPadding: Pair;
}

/** conv_transpose2d with a PyTorch-layout weight [in, out/g, kH, kW]; returns NHWC. */
export function convTranspose2dRaw(x: Tensor, w: tf.Tensor, b: tf.Tensor | null, g: TransposeGeometry, groups: number): Tensor {
  const xr = x.physical(NHWC) as tf.Tensor4D;
  const z = K.zeroInsert(xr, g.stride[0], g.stride[1]);
  const edge = (i: number) => g.dilation[i] * (g.kernelSize[i] - 1) - g.padding[i];
  const pads: [[number, number], [number, number]] = [
    [edge(0), edge(0) + g.outputPadding[0]],
    [edge(1), edge(1) + g.outputPadding[1]],
  ];
  const geom: K.ConvGeometry = { stride: [1, 1], dilation: g.dilation, pads };
  const wk = tf.reverse(tf.transpose(w, [2, 3, 0, 1]), [0, 1]) as tf.Tensor4D; // [kh, kw, in, out/g]
  const zt = new Tensor(z, NHWC);
  if (groups === 1) return conv2dHWIO(zt, wk, b, geom, 1);
  // group j: input channels j·in/g…, its weight rows are those inputs, outputs out/g each
  const ws = tf.split(wk, groups, 2) as tf.Tensor4D[];
  const wcat = tf.concat(ws, 3) as tf.Tensor4D; // [kh, kw, in/g, out]
  return conv2dHWIO(zt, wcat, b, geom, groups);
}

/** Sets fields that are configuration, not state, so they do not register as children. */
export function hidden(m: object, fields: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(fields)) {
    Object.defineProperty(m, k, { value: v, writable: true, enumerable: false, configurable: true });
  }
}
