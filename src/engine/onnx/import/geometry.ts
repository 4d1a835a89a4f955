// The geometry attributes convolutions and pools share (kernel, strides, dilations, pads), read
// and checked once for the ops that use them (ops/Conv.ts, ConvTranspose.ts, MaxPool.ts, AveragePool.ts).
import { ConstValue } from './constEval';
import { NodeInfo, PlanContext } from './registry';

/** Kernel sizes, strides, dilations and pads: integers in a range an engine layer can hold. */
export function checkGeometry(what: string, vals: number[], min: number): void {
  for (const v of vals) {
    if (!Number.isInteger(v) || v < min || v > 4096) throw new Error(`${what}: geometry value ${v} is out of range`);
  }
}

/** A convolution is a layer only with constant weight and bias (PyTorch's parameters). */
export function convolutionAccepts(n: NodeInfo, ctx: PlanContext): boolean {
  if (!ctx.isConst(n.inputs[1]) || (n.inputs[2] && !ctx.isConst(n.inputs[2])))
    throw new Error(`${n.what}: a convolution with a computed weight or bias is not supported`);
  return true;
}

export interface ConvGeometry {
  sp: number;
  group: number;
  k: number[];
  s: number[];
  d: number[];
  padding: number[];
}

/** Conv/ConvTranspose attributes for a weight of rank sp + 2; symmetric padding only. */
export function convGeometry(n: NodeInfo, w: ConstValue): ConvGeometry {
  const { what, attrs } = n;
  const sp = w.dims.length - 2;
  const group = attrs.int('group', 1);
  const k = attrs.ints('kernel_shape') ?? w.dims.slice(2);
  const s = attrs.ints('strides') ?? Array(sp).fill(1);
  const d = attrs.ints('dilations') ?? Array(sp).fill(1);
  const autoPad = attrs.string('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new Error(`${what}: auto_pad ${autoPad} is not supported`);
  const pads = autoPad === 'VALID' ? Array(2 * sp).fill(0) : (attrs.ints('pads') ?? Array(2 * sp).fill(0));
  if (k.length !== sp || s.length !== sp || d.length !== sp || pads.length !== 2 * sp)
    throw new Error(`${what}: kernel, strides, dilations or pads do not match the ${sp}-d weight`);
  if (k.some((v, i) => v !== w.dims[2 + i]))
    throw new Error(`${what}: kernel_shape [${k.join(', ')}] differs from the weight's [${w.dims.slice(2).join(', ')}]`);
  checkGeometry(what, [...k, ...s, ...d, group], 1);
  checkGeometry(what, pads, 0);
  for (let i = 0; i < sp; i++)
    if (pads[i] !== pads[i + sp]) throw new Error(`${what}: asymmetric padding [${pads.join(', ')}] is not supported`);
  return { sp, group, k, s, d, padding: pads.slice(0, sp) };
}

export interface PoolGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  ceil: boolean;
}

/** 2-d pooling attributes, with `extraPad` from an absorbed Pad; symmetric padding only. */
export function poolGeometry(n: NodeInfo, extraPad: number | [number, number]): PoolGeometry {
  const { attrs, what } = n;
  const autoPad = attrs.string('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new Error(`${what}: auto_pad ${autoPad} is not supported`);
  const k = attrs.ints('kernel_shape');
  if (!k || k.length !== 2) throw new Error(`${what}: only 2-d pooling is supported (kernel_shape ${JSON.stringify(k)})`);
  const s = attrs.ints('strides') ?? [1, 1];
  const pads = autoPad === 'VALID' ? [0, 0, 0, 0] : (attrs.ints('pads') ?? [0, 0, 0, 0]);
  const d = attrs.ints('dilations') ?? [1, 1];
  if (d.some((v) => v !== 1)) throw new Error(`${what}: dilated pooling is not supported`);
  if (s.length !== 2 || pads.length !== 4) throw new Error(`${what}: malformed strides or pads`);
  if (pads[0] !== pads[2] || pads[1] !== pads[3]) throw new Error(`${what}: asymmetric padding [${pads.join(', ')}] is not supported`);
  checkGeometry(what, [...k, ...s], 1);
  checkGeometry(what, pads, 0);
  const extra = Array.isArray(extraPad) ? extraPad : [extraPad, extraPad];
  if (n.op === 'AveragePool' && (pads[0] || pads[1]) && n.attrs.int('count_include_pad', 0) !== 1) {
    throw new Error(
      `${what}: average pooling that excludes the padding from the count is not supported (PyTorch's default count_include_pad=True is)`,
    );
  }
  if (n.op === 'AveragePool' && n.attrs.int('ceil_mode', 0)) throw new Error(`${what}: ceil_mode average pooling is not supported`);
  return {
    kernel: [k[0], k[1]],
    stride: [s[0], s[1]],
    padding: [pads[0] + extra[0], pads[1] + extra[1]],
    ceil: n.attrs.int('ceil_mode', 0) === 1,
  };
}

/** A pool module's window arguments as PyTorch prints them: kernel_size=2 where both sides agree. */
export function poolArgs(p: PoolGeometry): {
  kernel: number | [number, number];
  stride: number | [number, number];
  padding: number | [number, number];
} {
  const one = (v: [number, number]): number | [number, number] => (v[0] === v[1] ? v[0] : v);
  return { kernel: one(p.kernel), stride: one(p.stride), padding: one(p.padding) };
}
