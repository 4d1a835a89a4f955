// linger's LayerNormInt: nn.LayerNorm in the fixed stage when init's quantModules names it, with
// its export — thinker: LayerNormInt(x int8, w int16, b int32); qdq: the integer core in int64
// (sums pass 2^31), the square root as a double Sqrt corrected by exact int64 comparisons, the
// rounding division as Mod/Div, then the engine's double requantization.
import { floorLog2 } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, THINKER, PLATFORM } from '../../../onnx/proto';
import { LayerNorm } from '../../../nn/sequence';
import { recordedScales } from '../base';
import { defineIntOp } from '../registry';
import { LayerNormInt, layerNormEpsTerm } from './layer';

export { LayerNormInt } from './layer';

function layerNorm(L: ExportContext, c: CapturedCall, m: LayerNormInt, sx: number, sw: number, so: number, scope: string): void {
  const g = L.g;
  const x = c.inputs[0] as Tensor;
  const { sw: check, qw, qb } = m.affineCodes();
  if (check !== sw) throw new Error(`internal: weight scale ${check} differs from the recorded ${sw}`);
  const shape = m.normalizedShape;
  const n = shape.reduce((a, v) => a * v, 1);
  if (L.mode === 'thinker') {
    // measured on thinker v1.1.0 (docs/onnx.md, thinker conformance): packs, but its LayerNormInt
    // (a Q15 1/sqrt table) is not the engine's integer LayerNorm
    L.warn(
      `LayerNormInt at '${c.target}': thinker v1.1.0 computes it with its own 1/sqrt table, which differs from the engine's integer LayerNorm ` +
        "by one code on some inputs (measured: 2 of 24 values on 2 of 4 inputs); the chip's outputs will not be bit-exact to the engine's eval",
    );
    const y = g.op(
      'LayerNormInt',
      [
        L.int8Input(x, sx, m.dataBits, scope),
        g.initializer(`${c.target}.weight`, shape, DT.INT16, qw),
        g.initializer(`${c.target}.bias`, shape, DT.INT32, qb),
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
  const i64 = (v: number) => g.scalar(v, DT.INT64);
  const op = (type: string, ins: string[], name: string, attrs = {}) => g.op(type, ins, `${scope}/${name}`, attrs);
  const q = op('Cast', [L.inputCodes(x, sx, m.dataBits, scope)], 'CastInt64', { to: DT.INT64 });
  const axes = g.initializer(
    'axes',
    [shape.length],
    DT.INT64,
    shape.map((_, i) => x.rank - shape.length + i),
  );
  const s1 = op('ReduceSum', [q, axes], 'SumX', { keepdims: 1 });
  const s2 = op('ReduceSum', [op('Mul', [q, q], 'Square'), axes], 'SumX2', { keepdims: 1 });
  // D = N·S2 − S1² + R(eps·s_x²·N²); num = N·q − S1
  const D = op(
    'Add',
    [op('Sub', [op('Mul', [s2, i64(n)], 'NS2'), op('Mul', [s1, s1], 'S1S1')], 'Var'), i64(layerNormEpsTerm(m.eps, sx, n))],
    'D',
  );
  const num = op('Sub', [op('Mul', [q, i64(n)], 'NX'), s1], 'Num');
  // r = ⌊√D⌋: the double square root is within 1 of it; exact int64 comparisons correct it
  const r0 = op('Cast', [op('Floor', [op('Sqrt', [op('Cast', [D], 'CastD', { to: DT.DOUBLE })], 'Sqrt')], 'FloorSqrt')], 'CastR', {
    to: DT.INT64,
  });
  const r1 = op('Sub', [r0, op('Cast', [op('Greater', [op('Mul', [r0, r0], 'R0Sq'), D], 'R0Above')], 'R0Down', { to: DT.INT64 })], 'R1');
  const r1p = op('Add', [r1, i64(1)], 'R1Next');
  const r = op(
    'Add',
    [r1, op('Cast', [op('Not', [op('Greater', [op('Mul', [r1p, r1p], 'R1Sq'), D], 'R1Above')], 'R1Within')], 'R1Up', { to: DT.INT64 })],
    'Isqrt',
  );
  // nrm = clamp16(⌊(2048·num + r) / (2·max(r, 1))⌋); a − Mod(a, den) is a multiple of den (Mod takes den's sign)
  const den = op('Mul', [op('Max', [r, i64(1)], 'RPos'), i64(2)], 'Den');
  const a = op('Add', [op('Mul', [num, i64(2048)], 'Num2048'), r], 'Numer');
  const quot = op('Div', [op('Sub', [a, op('Mod', [a, den], 'Mod', { fmod: 0 })], 'Multiple'), den], 'FloorDiv');
  const nrm = op('Min', [op('Max', [quot, i64(-32768)], 'Nrm16Lo'), i64(32767)], 'Nrm16');
  // acc = clamp32(nrm·q_w + q_b)
  const sum = op(
    'Add',
    [
      op('Mul', [nrm, g.initializer(`${c.target}.weight_q`, shape, DT.INT64, qw)], 'MulWeight'),
      g.initializer(`${c.target}.bias_q`, shape, DT.INT64, qb),
    ],
    'AddBias',
  );
  let acc = op('Min', [op('Max', [sum, i64(-(2 ** 31))], 'Acc32Lo'), i64(2 ** 31 - 1)], 'Acc32');
  if (m.normalizeData !== null) {
    const lim = Math.floor(m.normalizeData * 1024 * sw);
    acc = op('Min', [op('Max', [acc, i64(-lim)], 'ClampDataLo'), i64(lim)], 'ClampData');
  }
  L.out(c, { name: L.requantize(acc, floorLog2(so) - 10 - floorLog2(sw), m.outBits, so, scope) });
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
