// linger's LayerNormInt: nn.LayerNorm in the fixed stage when init's quantModules names it, with
// its export — thinker: LayerNormInt(x int8, w int16, b int32), which the chip computes as the
// engine's eval does; qdq: that eval's integer kernel (chip.ts) in int64 ONNX arithmetic: the
// table lookup as comparisons and Gathers, every rounding shift as an exact floor division
// (docs/fixed-point.md#layernormint).
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, THINKER, PLATFORM } from '../../../onnx/proto';
import { LayerNorm } from '../../../nn/sequence';
import { recordedScales } from '../base';
import { defineIntOp } from '../registry';
import { chipEpsTerm, RSQRT_Q15 } from './chip';
import { LayerNormInt } from './layer';

export { LayerNormInt } from './layer';

function layerNorm(L: ExportContext, c: CapturedCall, m: LayerNormInt, sx: number, sw: number, so: number, scope: string): void {
  const g = L.g;
  const x = c.inputs[0] as Tensor;
  const { sw: check, qw, qb } = m.affineCodes();
  if (check !== sw) throw new Error(`internal: weight scale ${check} differs from the recorded ${sw}`);
  const shape = m.normalizedShape;
  const n = shape.reduce((a, v) => a * v, 1);
  if (L.mode === 'thinker') {
    // thinker v1.1.0's kernel forms T·Σx² and (Σx)² in int32: they can wrap past T = 362 values
    // (the eval wraps them too; where the wrapped D is negative the chip reads outside its table)
    if (n > 362)
      L.warn(
        `LayerNormInt at '${c.target}' normalizes ${n} values: thinker v1.1.0 computes T·Σx² and (Σx)² in int32, which overflow ` +
          'for rows of more than 362 values with large inputs; the chip then computes a wrong LayerNorm (docs/fixed-point.md#layernormint)',
      );
    // weight and bias flat (T values): tpacker takes W.shape[0] as T, so a [4, 8] weight is refused
    const y = g.op(
      'LayerNormInt',
      [
        L.int8Input(x, sx, m.dataBits, scope),
        g.initializer(`${c.target}.weight`, [n], DT.INT16, qw),
        g.initializer(`${c.target}.bias`, [n], DT.INT32, qb),
      ],
      `${scope}/LayerNormInt`,
      {
        data_bits: m.dataBits,
        parameter_bits: m.parameterBits,
        o_bits: m.outBits,
        scale_x: { float: sx },
        scale_w: { float: sw },
        scale_o: { float: so },
        ...PLATFORM,
      },
      THINKER,
    );
    return L.out(c, { name: y, int8Scale: so });
  }
  const o = m.chipOptions(sx, sw, so);
  const i64 = (v: number) => g.scalar(v, DT.INT64);
  const op = (type: string, ins: string[], name: string, attrs = {}) => g.op(type, ins, `${scope}/${name}`, attrs);
  const clamp = (v: string, lo: number, hi: number, name: string) => op('Min', [op('Max', [v, i64(lo)], `${name}Lo`), i64(hi)], name);
  const sat32 = (v: string, name: string) => (o.chip ? clamp(v, -(2 ** 31), 2 ** 31 - 1, name) : v);
  const wrap32 = (v: string, name: string) =>
    op('Sub', [op('Mod', [op('Add', [v, i64(2 ** 31)], `${name}Bias`), i64(2 ** 32)], `${name}Mod`, { fmod: 0 }), i64(2 ** 31)], name);
  const pow = (base: number, from: number, count: number, name: string) =>
    g.initializer(
      `${c.target}.${name}`,
      [count],
      DT.INT64,
      Array.from({ length: count }, (_, i) => base ** (from + i)),
    );
  const gather = (table: string, idx: string, name: string) => op('Gather', [table, idx], name, { axis: 0 });
  // ⌊a/d⌋ for d > 0: a − Mod(a, d) is a multiple of d (Mod takes d's sign)
  const floorDiv = (a: string, d: string, name: string) =>
    op('Div', [op('Sub', [a, op('Mod', [a, d], `${name}Mod`, { fmod: 0 })], `${name}Multiple`), d], name);

  const q = op('Cast', [L.inputCodes(x, sx, m.dataBits, scope)], 'CastInt64', { to: DT.INT64 });
  const axes = g.initializer(
    'axes',
    [shape.length],
    DT.INT64,
    shape.map((_, i) => x.rank - shape.length + i),
  );
  const s1 = sat32(op('ReduceSum', [q, axes], 'SumX', { keepdims: 1 }), 'SumX32');
  const s2 = sat32(op('ReduceSum', [op('Mul', [q, q], 'Square'), axes], 'SumX2', { keepdims: 1 }), 'SumX2_32');
  // D = T·S2 − S1² + E; the chip's products wrap to int32 (a negative result: the exact D)
  const eps = i64(chipEpsTerm(o.qx, n, !o.chip));
  const ts2 = op('Mul', [s2, i64(n)], 'TS2'),
    s1s1 = op('Mul', [s1, s1], 'S1S1');
  let D = op('Add', [op('Sub', [ts2, s1s1], 'Var'), eps], 'D');
  if (o.chip) {
    const Dc = op('Add', [op('Sub', [wrap32(ts2, 'TS2Wrap'), wrap32(s1s1, 'S1S1Wrap')], 'VarWrap'), eps], 'DWrap');
    D = op('Where', [op('Less', [Dc, i64(0)], 'DWrapNegative'), D, Dc], 'DChip');
  }
  // the table lookup: D's pair of top bits (4^pair ≤ D < 4^(pair+1)), D scaled into [256, 1024)
  const p4 = pow(4, 0, 32, 'pow4');
  const above = op('GreaterOrEqual', [D, pow(4, 1, 31, 'pow4_from1')], 'DAbove');
  const pair = op(
    'ReduceSum',
    [op('Cast', [above], 'DAboveInt', { to: DT.INT64 }), g.initializer('axes_last', [1], DT.INT64, [-1])],
    'Pair',
    { keepdims: 1 },
  );
  const down = floorDiv(D, gather(p4, op('Max', [op('Sub', [pair, i64(4)], 'PairDown'), i64(0)], 'PairDownPos'), 'Pow4Down'), 'DDown');
  const up = op('Mul', [D, gather(p4, op('Max', [op('Sub', [i64(4), pair], 'PairUp'), i64(0)], 'PairUpPos'), 'Pow4Up')], 'DUp');
  const top = op('Where', [op('GreaterOrEqual', [pair, i64(4)], 'PairHigh'), down, up], 'Top');
  const table = g.initializer(`${c.target}.rsqrt_q15`, [RSQRT_Q15.length], DT.INT64, RSQRT_Q15);
  const tab = gather(table, op('Max', [op('Sub', [top, i64(256)], 'Index'), i64(0)], 'IndexPos'), 'Rsqrt');
  // q = pair + 5 (4 for D = 0); y1 = sat16(⌊(num·tab + 2^(q−1)) / 2^q⌋), num = sat32(sat32(T·x) − S1)
  const qs = op(
    'Sub',
    [op('Add', [pair, i64(5)], 'Q'), op('Cast', [op('Equal', [D, i64(0)], 'DZero')], 'DZeroInt', { to: DT.INT64 })],
    'QShift',
  );
  const p2 = pow(2, 0, 63, 'pow2');
  const num = sat32(op('Sub', [sat32(op('Mul', [q, i64(n)], 'TX'), 'TX32'), s1], 'Num'), 'Num32');
  const half = gather(p2, op('Sub', [qs, i64(1)], 'QHalf'), 'Half');
  const y1 = clamp(
    floorDiv(op('Add', [op('Mul', [num, tab], 'NumTab'), half], 'NumTabHalf'), gather(p2, qs, 'Den'), 'Nrm'),
    -32768,
    32767,
    'Nrm16',
  );
  // acc = y1·γ + β (int64); y = clamp(⌊(acc + 2^(s−1)) / 2^s⌋) at the final shift s
  let acc = op(
    'Add',
    [
      op('Mul', [y1, g.initializer(`${c.target}.weight_q`, shape, DT.INT64, qw)], 'MulWeight'),
      g.initializer(`${c.target}.bias_q`, shape, DT.INT64, qb),
    ],
    'AddBias',
  );
  if (o.accLimit !== null) acc = clamp(acc, -o.accLimit, o.accLimit, 'ClampData');
  let codes = acc;
  if (o.shift > 62) codes = op('Mul', [acc, i64(0)], 'ShiftOut');
  else if (o.shift > 0) codes = floorDiv(op('Add', [acc, i64(2 ** (o.shift - 1))], 'AccHalf'), i64(2 ** o.shift), 'Shift');
  const yq = op('Cast', [clamp(codes, o.lo, o.hi, 'Saturate')], 'CastFloat', { to: DT.FLOAT });
  L.out(c, { name: op('Div', [yq, g.scalar(so)], 'Dequantize') });
}

const lower = (ctx: ExportContext, c: CapturedCall, m: LayerNormInt, scope: string) => {
  const s = recordedScales(c);
  layerNorm(ctx, c, m, s.x!, s.w!, s.o, scope);
};

defineIntOp({
  name: 'LayerNormInt',
  intClass: LayerNormInt,
  replaces: [{ float: LayerNorm, from: (m, o) => LayerNormInt.from(m as LayerNorm, o) }],
  optIn: 'LayerNorm',
  ownBits: true,
  lower: { qdq: lower, thinker: lower },
});
