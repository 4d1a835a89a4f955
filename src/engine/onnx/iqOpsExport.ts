// ONNX export of linger's element-wise iq ops (linger/iqOps.ts) in the fixed stage's two dialects.
// qdq: standard ops computing exactly what the engine's eval computes — every intermediate is an
// integer (or an integer times a power of two) small enough for float32, products and sums of
// codes go through int32 or a double requantization, and sigmoid/tanh are a Gather over the very
// tables the engine reads (intActivation.ts). thinker: linger's op names and attributes
// (LINGER-OPS §6): iqMul, iqSum, Requant + iqSigmoid/iqTanh, iqClamp, and a standard Clip for ReLU6Int.
import { activationTables } from '../quant/intActivation';
import { floorLog2, qmax } from '../quant/qvalue';
import { IQClamp, IQElementwise, IQMul, IQSigmoid, IQSum, IQTanh, mulScales, ReLU6Int, roundHalfEven, SumOptions } from '../linger/iqOps';
import { normAxis, Tensor } from '../tensor';
import { CapturedCall } from './capture';
import { GraphBuilder } from './graphBuilder';
import { DT, THINKER, PLATFORM } from './proto';


/** A value in the graph: its name and, in the thinker dialect, the scale of its int8 codes. */
export interface IqValue { name: string; int8Scale?: number }

/** What the exporter lends the iq lowering (export.ts's Lowering). */
export interface IqLowering {
  g: GraphBuilder;
  mode: 'qdq' | 'thinker';
  value(t: Tensor | number): IqValue;
  /** a float view of a value (thinker int8 values get a Dequant) */
  floatName(v: IqValue, where: string): string;
  /** thinker: an int8 input at scale sx (the value's codes, or a Quant) */
  int8Input(x: Tensor, sx: number, bits: number, scope: string): string;
  /** qdq: a quantized layer's input codes as float32 integers */
  inputCodes(x: Tensor, sx: number, bits: number, scope: string): string;
  /** qdq: clamp(⌊acc·2^k + 1/2⌋)/s_o in double */
  requantize(acc: string, k: number, bits: number, so: number, scope: string): string;
  /** sets the call's i-th output (default 0) */
  out(c: CapturedCall, v: IqValue, i?: number): void;
  /** initializer names made once per graph (the activation tables) */
  shared: Map<string, string>;
}

export function lowerIqOp(L: IqLowering, c: CapturedCall, m: IQElementwise | ReLU6Int, scope: string): void {
  if (m instanceof ReLU6Int) return relu6(L, c, m, scope);
  const sz = c.scales?.o;
  if (!sz) throw new Error('no output scale was recorded');
  const x = c.inputs[0] as Tensor;
  const sx = x.quantScale;
  if (sx === undefined) throw new Error('its input carries no scale');
  if (m instanceof IQMul) return mul(L, c, m, x, sx, sz, scope);
  if (m instanceof IQSum) return sum(L, c, m, x, sx, sz, scope);
  if (m instanceof IQSigmoid || m instanceof IQTanh) return activation(L, c, m, x, sx, scope);
  return clamp(L, c, m, x, sx, scope);
}

function mul(L: IqLowering, c: CapturedCall, m: IQMul, x: Tensor, sx: number, sz: number, scope: string): void {
  const g = L.g;
  const y = c.inputs.length > 1 ? c.inputs[1] as Tensor : Number(c.args?.[0]);
  if (typeof y === 'number' && !Number.isFinite(y)) throw new Error('iqMul: its number operand was not recorded');
  const s = mulScales(sx, y, sz, m.dataBits);
  if (L.mode === 'thinker') {
    const xi = L.int8Input(x, sx, m.dataBits, scope);
    // linger's graph: y as it is (int8 at its own scale) or the constant quantized at the adjusted
    // scale; scale_y is the adjusted scale either way
    const yi = typeof y === 'number'
      ? g.initializer(`${c.target}.y`, [], DT.INT8, [s.constant!.adjustedCode])
      : L.int8Input(y, s.sy, m.dataBits, scope);
    const z = g.op('iqMul', [xi, yi], `${scope}/iqMul`, {
      scale_x: { float: sx }, scale_y: { float: s.syAdjusted }, scale_o: { float: sz }, ...PLATFORM,
    }, THINKER);
    return L.out(c, { name: z, int8Scale: sz });
  }
  const bd = qmax(m.dataBits);
  const xi = g.op('Mul', [L.floatName(L.value(x), scope), g.scalar(sx)], `${scope}/CodesX`);
  let yi: string;
  if (typeof y === 'number') yi = g.scalar(s.constant!.code);
  else {
    const scaled = g.op('Mul', [L.floatName(L.value(y), scope), g.scalar(s.syAdjusted)], `${scope}/CodesY`);
    yi = s.syAdjusted === s.sy ? scaled
      : g.op('Clip', [g.op('Floor', [g.op('Add', [scaled, g.scalar(0.5)], `${scope}/RequantY/Add`)], `${scope}/RequantY/Floor`), g.scalar(-bd - 1), g.scalar(bd)], `${scope}/RequantY/Clip`);
  }
  // |x_i·y_i| ≤ 2^(2·bits − 2): exact in float32
  const prod = g.op('Mul', [xi, yi], `${scope}/Mul`);
  L.out(c, { name: L.requantize(prod, floorLog2(sz) - floorLog2(sx) - floorLog2(s.syAdjusted), m.outBits, sz, scope) });
}

function sum(L: IqLowering, c: CapturedCall, m: IQSum, x: Tensor, sx: number, sz: number, scope: string): void {
  const g = L.g;
  const o = (c.args?.[0] ?? {}) as SumOptions;
  const dims = o.dim === undefined ? null : (Array.isArray(o.dim) ? o.dim : [o.dim]).map((d) => normAxis(d, x.rank));
  const keep = dims !== null && (o.keepdim ?? false);
  if (L.mode === 'thinker') {
    // linger exports dims only when sum had a positional dim argument
    const z = g.op('iqSum', [L.int8Input(x, sx, m.dataBits, scope)], `${scope}/iqSum`, {
      scale_x: { float: sx }, scale_o: { float: sz }, ...PLATFORM, ...(dims ? { dims } : {}),
    }, THINKER);
    return L.out(c, { name: z, int8Scale: sz });
  }
  // the codes summed in int32 (exact for any size), then requantized in double
  const codes = g.op('Cast', [g.op('Mul', [L.floatName(L.value(x), scope), g.scalar(sx)], `${scope}/Codes`)], `${scope}/CastInt32`, { to: DT.INT32 });
  const ins = [codes];
  if (dims) ins.push(g.initializer(`${c.target}.axes`, [dims.length], DT.INT64, dims));
  const acc = g.op('ReduceSum', ins, `${scope}/ReduceSum`, { keepdims: keep ? 1 : 0 });
  L.out(c, { name: L.requantize(acc, floorLog2(sz) - floorLog2(sx), m.outBits, sz, scope) });
}

function activation(L: IqLowering, c: CapturedCall, m: IQSigmoid | IQTanh, x: Tensor, sx: number, scope: string): void {
  const g = L.g;
  const kind = m instanceof IQSigmoid ? 'sigmoid' : 'tanh';
  const s16 = 256 * sx;
  if (L.mode === 'thinker') {
    const op = kind === 'sigmoid' ? 'iqSigmoid' : 'iqTanh';
    const x16 = g.op('Requant', [L.int8Input(x, sx, m.dataBits, scope)], `${scope}/Requant`, {
      data_bits: 8, scale_x: { float: sx }, scale_o: { float: s16 }, o_bits: 16,
    }, THINKER);
    const y = g.op(op, [x16], `${scope}/${op}`, { scale_x: { float: s16 }, scale_o: { float: 128 }, ...PLATFORM, castor_mode: 'luna' }, THINKER);
    return L.out(c, { name: y, int8Scale: 128 });
  }
  // the engine's steps: q16 = clamp(⌊x·s16 + 1/2⌋, int16), x11 = q16·2^l or ⌊q16·2^l + 1/2⌋
  const l = 11 - floorLog2(s16);
  const xf = L.floatName(L.value(x), scope);
  const q16 = g.op('Clip', [g.op('Floor', [g.op('Add', [g.op('Mul', [xf, g.scalar(s16)], `${scope}/Q16/Mul`), g.scalar(0.5)], `${scope}/Q16/Add`)], `${scope}/Q16/Floor`),
    g.scalar(-32768), g.scalar(32767)], `${scope}/Q16/Clip`);
  const shifted = g.op('Mul', [q16, g.scalar(2 ** l)], `${scope}/Q11/Mul`);
  const x11 = l > 0 ? shifted : g.op('Floor', [g.op('Add', [shifted, g.scalar(0.5)], `${scope}/Q11/Add`)], `${scope}/Q11/Floor`);
  const q7 = intActivation(L, kind, x11, scope);
  const y = g.op('Div', [g.op('Cast', [q7], `${scope}/CastFloat`, { to: DT.FLOAT }), g.scalar(128)], `${scope}/Dequantize/Div`);
  L.out(c, { name: y });
}

/**
 * The integer sigmoid/tanh of Q11 values (float32 integers) as int32 Q7 codes: a Gather over the
 * engine's own 65536-entry table (entry x11 + 32768, the index clamped to int16), made once per graph.
 */
export function intActivation(L: Pick<IqLowering, 'g' | 'shared'>, kind: 'sigmoid' | 'tanh', x11: string, scope: string): string {
  const g = L.g;
  const idx = g.op('Cast', [g.op('Add', [g.op('Clip', [x11, g.scalar(-32768), g.scalar(32767)], `${scope}/Index/Clip`), g.scalar(32768)], `${scope}/Index/Add`)],
    `${scope}/Index/Cast`, { to: DT.INT64 });
  let table = L.shared.get(kind);
  if (!table) {
    table = g.initializer(`linger_${kind}_q11_to_q7`, [65536], DT.INT32, activationTables()[kind]);
    L.shared.set(kind, table);
  }
  return g.op('Gather', [table, idx], `${scope}/Gather`, { axis: 0 });
}

function clamp(L: IqLowering, c: CapturedCall, m: IQClamp, x: Tensor, sx: number, scope: string): void {
  const g = L.g;
  const so = m.scaleOut;
  if (L.mode === 'thinker') {
    const z = g.op('iqClamp', [L.int8Input(x, sx, m.dataBits, scope)], `${scope}/iqClamp`, {
      min: { float: m.min }, max: { float: m.max }, scale_x: { float: sx }, scale_o: { float: so }, ...PLATFORM,
    }, THINKER);
    return L.out(c, { name: z, int8Scale: so });
  }
  const b = qmax(m.outBits);
  const y = g.op('Floor', [g.op('Add', [g.op('Mul', [L.floatName(L.value(x), scope), g.scalar(so)], `${scope}/Mul`), g.scalar(0.5)], `${scope}/Add`)], `${scope}/Floor`);
  const q = g.op('Clip', [y, g.scalar(m.min === 0 ? 0 : -b - 1), g.scalar(b)], `${scope}/Clip`);
  L.out(c, { name: g.op('Div', [q, g.scalar(so)], `${scope}/Dequantize/Div`) });
}

function relu6(L: IqLowering, c: CapturedCall, m: ReLU6Int, scope: string): void {
  const g = L.g;
  const x = c.inputs[0] as Tensor;
  const s = c.scales?.x;
  if (!s) throw new Error('no input scale was recorded');
  const M = Math.min(roundHalfEven(6 * s), qmax(m.dataBits));
  if (L.mode === 'thinker') {
    // linger: standard Clip(Quant(x) | x, min_thresh, max_thresh) on int8
    const y = g.op('Clip', [L.int8Input(x, s, m.dataBits, scope), g.initializer(`${c.target}.min_thresh`, [], DT.INT8, [0]),
      g.initializer(`${c.target}.max_thresh`, [], DT.INT8, [M])], `${scope}/Clip`);
    return L.out(c, { name: y, int8Scale: s });
  }
  const codes = L.inputCodes(x, s, m.dataBits, scope);
  const q = g.op('Clip', [codes, g.scalar(0), g.scalar(M)], `${scope}/Clip`);
  L.out(c, { name: g.op('Div', [q, g.scalar(s)], `${scope}/Dequantize/Div`) });
}
