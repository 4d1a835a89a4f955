// ONNX export of LayerNormInt, EmbeddingInt and BmmInt (linger/sequenceInt.ts) in the fixed
// stage's two dialects.
// - thinker: linger's ops and attribute names (LINGER-OPS §3–§5): LayerNormInt(x int8, w int16,
//   b int32), Gather(W int, idx), BmmInt(x int8, y int8).
// - qdq: standard ops computing exactly what the engine's eval computes. LayerNormInt's core runs
//   in int64 (sums pass 2^31): ReduceSum, the integer square root as a double Sqrt corrected by
//   exact int64 comparisons, the rounding division as Mod/Div on int64, then the engine's double
//   requantization. EmbeddingInt is a Gather of the dequantized codes. BmmInt is a float MatMul of
//   codes while every partial sum stays below 2^24, else MatMulInteger (int32).
import { BmmInt, EmbeddingInt, LayerNormInt, layerNormEpsTerm } from '../linger/sequenceInt';
import { floorLog2, qmax } from '../quant/qvalue';
import { Tensor } from '../tensor';
import { CapturedCall } from './capture';
import { GraphBuilder } from './graphBuilder';
import { DT, THINKER, PLATFORM } from './proto';


export interface SeqValue { name: string; int8Scale?: number }

/** What the exporter lends this lowering (export.ts's Lowering). */
export interface SeqLowering {
  g: GraphBuilder;
  mode: 'qdq' | 'thinker';
  value(t: Tensor | number): SeqValue;
  /** thinker: an int8 input at scale sx (the value's codes, or a Quant) */
  int8Input(x: Tensor, sx: number, bits: number, scope: string): string;
  /** qdq: a quantized layer's input codes as float32 integers */
  inputCodes(x: Tensor, sx: number, bits: number, scope: string): string;
  /** qdq: clamp(⌊acc·2^k + 1/2⌋)/s_o in double */
  requantize(acc: string, k: number, bits: number, so: number, scope: string): string;
  out(c: CapturedCall, v: SeqValue): void;
}

export const isSequenceInt = (m: unknown): m is LayerNormInt | EmbeddingInt | BmmInt =>
  m instanceof LayerNormInt || m instanceof EmbeddingInt || m instanceof BmmInt;

export function lowerSequenceInt(L: SeqLowering, c: CapturedCall, m: LayerNormInt | EmbeddingInt | BmmInt, scope: string): void {
  const s = c.scales ?? {};
  if (!s.o) throw new Error('its scales were not recorded (was the layer run in eval after calibration?)');
  if (m instanceof LayerNormInt) return layerNorm(L, c, m, s.x!, s.w!, s.o, scope);
  if (m instanceof EmbeddingInt) return embedding(L, c, m, s.w!, scope);
  return bmm(L, c, m, s.x!, s.y!, s.o, scope);
}

const intType = (bits: number) => (bits <= 8 ? DT.INT8 : bits <= 16 ? DT.INT16 : DT.INT32);

function layerNorm(L: SeqLowering, c: CapturedCall, m: LayerNormInt, sx: number, sw: number, so: number, scope: string): void {
  const g = L.g;
  const x = c.inputs[0] as Tensor;
  const { sw: check, qw, qb } = m.affineCodes();
  if (check !== sw) throw new Error(`internal: weight scale ${check} differs from the recorded ${sw}`);
  const shape = m.normalizedShape;
  const n = shape.reduce((a, v) => a * v, 1);
  if (L.mode === 'thinker') {
    const y = g.op('LayerNormInt', [L.int8Input(x, sx, m.dataBits, scope),
      g.initializer(`${c.target}.weight`, shape, DT.INT16, qw), g.initializer(`${c.target}.bias`, shape, DT.INT32, qb)], `${scope}/LayerNormInt`, {
      data_bits: m.dataBits, parameter_bits: m.parameterBits, o_bits: m.outBits,
      scale_x: { float: sx }, scale_w: { float: sw }, scale_o: { float: so }, ...PLATFORM,
    }, THINKER);
    return L.out(c, { name: y, int8Scale: so });
  }
  const i64 = (v: number) => g.scalar(v, DT.INT64);
  const op = (type: string, ins: string[], name: string, attrs = {}) => g.op(type, ins, `${scope}/${name}`, attrs);
  const q = op('Cast', [L.inputCodes(x, sx, m.dataBits, scope)], 'CastInt64', { to: DT.INT64 });
  const axes = g.initializer('axes', [shape.length], DT.INT64, shape.map((_, i) => x.rank - shape.length + i));
  const s1 = op('ReduceSum', [q, axes], 'SumX', { keepdims: 1 });
  const s2 = op('ReduceSum', [op('Mul', [q, q], 'Square'), axes], 'SumX2', { keepdims: 1 });
  // D = N·S2 − S1² + R(eps·s_x²·N²); num = N·q − S1
  const D = op('Add', [op('Sub', [op('Mul', [s2, i64(n)], 'NS2'), op('Mul', [s1, s1], 'S1S1')], 'Var'), i64(layerNormEpsTerm(m.eps, sx, n))], 'D');
  const num = op('Sub', [op('Mul', [q, i64(n)], 'NX'), s1], 'Num');
  // r = ⌊√D⌋: the double square root is within 1 of it; exact int64 comparisons correct it
  const r0 = op('Cast', [op('Floor', [op('Sqrt', [op('Cast', [D], 'CastD', { to: DT.DOUBLE })], 'Sqrt')], 'FloorSqrt')], 'CastR', { to: DT.INT64 });
  const r1 = op('Sub', [r0, op('Cast', [op('Greater', [op('Mul', [r0, r0], 'R0Sq'), D], 'R0Above')], 'R0Down', { to: DT.INT64 })], 'R1');
  const r1p = op('Add', [r1, i64(1)], 'R1Next');
  const r = op('Add', [r1, op('Cast', [op('Not', [op('Greater', [op('Mul', [r1p, r1p], 'R1Sq'), D], 'R1Above')], 'R1Within')], 'R1Up', { to: DT.INT64 })], 'Isqrt');
  // nrm = clamp16(⌊(2048·num + r) / (2·max(r, 1))⌋); a − Mod(a, den) is a multiple of den (Mod takes den's sign)
  const den = op('Mul', [op('Max', [r, i64(1)], 'RPos'), i64(2)], 'Den');
  const a = op('Add', [op('Mul', [num, i64(2048)], 'Num2048'), r], 'Numer');
  const quot = op('Div', [op('Sub', [a, op('Mod', [a, den], 'Mod', { fmod: 0 })], 'Multiple'), den], 'FloorDiv');
  const nrm = op('Min', [op('Max', [quot, i64(-32768)], 'Nrm16Lo'), i64(32767)], 'Nrm16');
  // acc = clamp32(nrm·q_w + q_b)
  const sum = op('Add', [op('Mul', [nrm, g.initializer(`${c.target}.weight_q`, shape, DT.INT64, qw)], 'MulWeight'),
    g.initializer(`${c.target}.bias_q`, shape, DT.INT64, qb)], 'AddBias');
  let acc = op('Min', [op('Max', [sum, i64(-(2 ** 31))], 'Acc32Lo'), i64(2 ** 31 - 1)], 'Acc32');
  if (m.normalizeData !== null) {
    const lim = Math.floor(m.normalizeData * 1024 * sw);
    acc = op('Min', [op('Max', [acc, i64(-lim)], 'ClampDataLo'), i64(lim)], 'ClampData');
  }
  L.out(c, { name: L.requantize(acc, floorLog2(so) - 10 - floorLog2(sw), m.outBits, so, scope) });
}

function embedding(L: SeqLowering, c: CapturedCall, m: EmbeddingInt, sw: number, scope: string): void {
  const g = L.g;
  const idx = L.value(c.inputs[0] as Tensor).name;
  const { sw: check, codes } = m.weightCodes();
  if (check !== sw) throw new Error(`internal: weight scale ${check} differs from the recorded ${sw}`);
  const q = codes.dataSync();
  codes.dispose();
  const dims = [m.numEmbeddings, m.embeddingDim];
  if (L.mode === 'thinker') {
    const y = g.op('Gather', [g.initializer(`${c.target}.weight`, dims, intType(m.parameterBits), q), idx], `${scope}/Gather`, {
      scale_w: { float: sw }, scale_o: { float: sw }, parameter_bits: m.parameterBits, o_bits: m.outBits, ...PLATFORM,
    }, THINKER);
    return L.out(c, { name: y, int8Scale: sw });
  }
  // the rows the engine returns: codes / s_w (exact in float32)
  const w = g.initializer(`${c.target}.weight_dq`, dims, DT.FLOAT, Float32Array.from(q, (v) => v / sw));
  L.out(c, { name: g.op('Gather', [w, idx], `${scope}/Gather`, { axis: 0 }) });
}

function bmm(L: SeqLowering, c: CapturedCall, m: BmmInt, sx: number, sy: number, so: number, scope: string): void {
  const g = L.g;
  const [x, y] = c.inputs as Tensor[];
  if (L.mode === 'thinker') {
    const z = g.op('BmmInt', [L.int8Input(x, sx, m.dataBits, scope), L.int8Input(y, sy, m.dataBits, scope)], `${scope}/BmmInt`, {
      scale_x: { float: sx }, scale_y: { float: sy }, data_bits: m.dataBits, scale_o: { float: so }, o_bits: m.outBits, ...PLATFORM,
    }, THINKER);
    return L.out(c, { name: z, int8Scale: so });
  }
  const cx = L.inputCodes(x, sx, m.dataBits, `${scope}/X`), cy = L.inputCodes(y, sy, m.dataBits, `${scope}/Y`);
  const inner = x.shape[2];
  const b = qmax(m.dataBits) + 1;
  let acc: string;
  if (inner * b * b < 2 ** 24) acc = g.op('MatMul', [cx, cy], `${scope}/MatMul`); // every partial sum an exact float32 integer
  else if (m.dataBits <= 8) {
    acc = g.op('MatMulInteger', [g.op('Cast', [cx], `${scope}/CastInt8X`, { to: DT.INT8 }), g.op('Cast', [cy], `${scope}/CastInt8Y`, { to: DT.INT8 })], `${scope}/MatMulInteger`);
  } else {
    throw new Error(`a BmmInt with ${m.dataBits}-bit data and an inner dimension of ${inner} can pass 2^24 in float32 and has no int8 MatMulInteger form; the qdq dialect cannot express it exactly (use the thinker dialect)`);
  }
  L.out(c, { name: L.requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sy), m.outBits, so, scope) });
}
