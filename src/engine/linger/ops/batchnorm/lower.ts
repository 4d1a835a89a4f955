// BatchNormInt's export: qdq multiplies the input codes by the integer multiplier and adds the
// offset in double (exact), then requantizes; thinker writes linger's BatchNorm2dInt.
import { tf } from '../../../backend/tf';
import { maxAbs, quantizeCodes, trainScale, floorLog2 } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { tidyValue } from '../../../onnx/export/nodes';
import { DT, PLATFORM, THINKER } from '../../../onnx/proto';
import { clampSym } from '../../normalize';
import type { BatchNormInt } from './layer';

export function qdqBatchNorm(ctx: ExportContext, c: CapturedCall, m: BatchNormInt, scope: string): void {
  const g = ctx.g;
  const x = c.inputs[0] as Tensor;
  const { sx, sw: sa, so } = ctx.scales(c, true);
  const { qa, qc } = batchNormCodes(m, sx, sa);
  const n = m.numFeatures;
  const codes = ctx.inputCodes(x, sx, m.dataBits, scope);
  const d = g.op('Cast', [codes], `${scope}/CastDouble`, { to: DT.DOUBLE });
  const prod = g.op('Mul', [d, g.initializer(`${c.target}.weight_q`, [n, 1, 1], DT.DOUBLE, qa)], `${scope}/MulWeight`);
  // no ClampData: linger applies clamp_data in training only, as the layer's eval does (docs/fixed-point.md#conformance-with-linger-111)
  const acc = g.op('Add', [prod, g.initializer(`${c.target}.bias_q`, [n, 1, 1], DT.DOUBLE, qc)], `${scope}/AddBias`);
  ctx.out(c, { name: ctx.requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sa), m.outBits, so, scope) });
}

export function thinkerBatchNorm(ctx: ExportContext, c: CapturedCall, m: BatchNormInt, scope: string): void {
  const g = ctx.g;
  const { sx, sw: sa, so } = ctx.scales(c, true);
  const { qa, qc } = batchNormCodes(m, sx, sa);
  const n = m.numFeatures;
  const y = g.op(
    'BatchNorm2dInt',
    [
      ctx.int8Input(c.inputs[0] as Tensor, sx, m.dataBits, scope),
      g.initializer(`${c.target}.weight`, [n], DT.INT8, qa),
      g.initializer(`${c.target}.bias`, [n], DT.INT32, qc),
    ],
    `${scope}/BatchNorm2dInt`,
    {
      scale_x: { float: sx },
      scale_w: { float: sa },
      scale_o: { float: so },
      data_bits: m.dataBits,
      parameter_bits: m.parameterBits,
      o_bits: m.outBits,
      ...PLATFORM,
    },
    THINKER,
  );
  ctx.out(c, { name: y, int8Scale: so });
}

/** BatchNormInt's multiplier and offset codes, as the engine's eval computes them. */
function batchNormCodes(m: BatchNormInt, sx: number, sa: number): { qa: number[]; qc: number[] } {
  return tidyValue(() => {
    const n = m.numFeatures;
    const gamma = m.weight ? clampSym(m.weight.raw, m.normalizeWeight) : tf.ones([n]);
    const beta = m.bias ? clampSym(m.bias.raw, m.normalizeBias) : tf.zeros([n]);
    const a = tf.mul(gamma, tf.rsqrt(tf.add(m.running_var!.raw, m.eps)));
    const c = tf.sub(beta, tf.mul(m.running_mean!.raw, a));
    if (trainScale(maxAbs(a), m.parameterBits) !== sa) throw new Error(`internal: BN multiplier scale differs from the recorded ${sa}`);
    const qa = Array.from(tf.cast(quantizeCodes(a, sa, m.parameterBits), 'int32').dataSync());
    const qc = Array.from(tf.cast(tf.floor(tf.add(tf.mul(c, sx * sa), 0.5)), 'int32').dataSync());
    return { qa, qc };
  });
}
