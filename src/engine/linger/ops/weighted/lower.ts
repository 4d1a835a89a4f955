// The conv and linear Int layers' export (docs/onnx.md). qdq: standard ops computing exactly the
// engine's integer eval — input codes, an accumulator that is exact (float while every partial sum
// stays under 2^24, which 128·Σ|q_w| + |q_b| bounds per output channel; beyond it ConvInteger /
// MatMulInteger, or for ConvTranspose input-channel chunks summed in int32), the clamp, then the
// shift requantization in double. thinker: linger's Conv2dInt/Conv1dInt/ConvTranspose2dInt/LinearInt
// with int8 weights and int32 biases.
import { tf } from '../../../backend/tf';
import { ConvNd } from '../../../nn/conv';
import { Module, Parameter } from '../../../nn/module';
import { floorLog2, maxAbs, quantizeCodes, trainScale } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { convAttrs, convNode, linearNode, logicalValues, tidyValue } from '../../../onnx/export/nodes';
import { GraphBuilder } from '../../../onnx/graphBuilder';
import { DT, PLATFORM, THINKER } from '../../../onnx/proto';
import { ThinkerUnsupportedError } from '../../../onnx/export/thinkerRules';
import { clampSym } from '../../normalize';
import type { IntLayer } from '../base';
import type { IntLowering } from '../registry';

/** The layer family's three shapes of weight: [out, in] (linear), [out, in/g, k…] (conv), [in, out/g, k…] (transposed). */
export type WeightedKind = 'linear' | 'conv' | 'transposed';
type WeightedIntLayer = Module & IntLayer & { weight: Parameter; bias: Parameter | null; groups?: number };

/** The qdq and thinker lowerings of one weighted Int op. */
export function weightedLowerings(type: string, kind: WeightedKind): { qdq: IntLowering; thinker: IntLowering } {
  return {
    qdq: (ctx, c, m, scope) => qdqWeighted(ctx, c, m as WeightedIntLayer, scope, kind),
    thinker: (ctx, c, m, scope) => thinkerWeighted(ctx, c, m as WeightedIntLayer, scope, type, kind),
  };
}

function qdqWeighted(ctx: ExportContext, c: CapturedCall, m: WeightedIntLayer, scope: string, kind: WeightedKind): void {
  const g = ctx.g;
  const x = c.inputs[0] as Tensor;
  const { sx, sw, so } = ctx.scales(c, true);
  const q = weightCodes(m, sx, sw, kind);
  const codes = ctx.inputCodes(x, sx, m.dataBits, scope);
  const exact = q.bound < 2 ** 24;
  let acc: string;
  const path = c.target;
  if (kind === 'linear') {
    const [out, inF] = q.w.dims;
    if (exact) {
      acc = linearNode(g, codes, x.rank, q.w, q.b, scope, path, 'weight_q', 'bias_q');
    } else {
      const wt = new Array<number>(out * inF);
      for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) wt[i * out + o] = q.w.values[o * inF + i];
      const xi = g.op('Cast', [codes], `${scope}/CastInt8`, { to: DT.INT8 });
      acc = g.op('MatMulInteger', [xi, g.initializer(`${path}.weight_q_t`, [inF, out], DT.INT8, wt)], `${scope}/MatMulInteger`);
      if (q.b) acc = g.op('Add', [acc, g.initializer(`${path}.bias_q`, [out], DT.INT32, q.b)], `${scope}/AddBias`);
    }
  } else if (exact) {
    acc = convNode(g, codes, m as unknown as ConvNd, q.w, q.b, scope, path, DT.FLOAT, 'weight_q', 'bias_q');
  } else if (kind !== 'transposed') {
    const xi = g.op('Cast', [codes], `${scope}/CastInt8`, { to: DT.INT8 });
    acc = g.op(
      'ConvInteger',
      [xi, g.initializer(`${path}.weight_q`, q.w.dims, DT.INT8, q.w.values)],
      `${scope}/ConvInteger`,
      convAttrs(m as unknown as ConvNd),
    );
    if (q.b)
      acc = g.op(
        'Add',
        [acc, g.initializer(`${path}.bias_q`, [q.b.length, ...Array(x.rank - 2).fill(1)], DT.INT32, q.b)],
        `${scope}/AddBias`,
      );
  } else {
    acc = splitConvTranspose(g, codes, m, q, scope, path, x.rank);
  }
  // no ClampData: linger applies clamp_data in training only, as the layer's eval does (docs/fixed-point.md#conformance-with-linger-111)
  const k = floorLog2(so) - floorLog2(sx) - floorLog2(sw);
  ctx.out(c, { name: ctx.requantize(acc, k, m.outBits, so, scope) });
}

/** A ConvTranspose whose accumulator can pass 2^24: input-channel chunks, each exact, summed in int32. */
function splitConvTranspose(
  g: GraphBuilder,
  codes: string,
  m: WeightedIntLayer,
  q: WeightCodes,
  scope: string,
  path: string,
  rank: number,
): string {
  if (m.groups !== 1) throw new Error('a grouped ConvTranspose2dInt whose accumulator can pass 2^24 is not supported (the engine neither)');
  const [inC, outC, kh, kw] = q.w.dims;
  const per = kh * kw;
  const perIn = Array.from({ length: inC }, (_, i) => {
    let best = 0;
    for (let o = 0; o < outC; o++) {
      let s = 0;
      for (let j = 0; j < per; j++) s += Math.abs(q.w.values[(i * outC + o) * per + j]);
      best = Math.max(best, s);
    }
    return 128 * best;
  });
  const chunks: [number, number][] = [];
  let start = 0,
    sum = 0;
  for (let i = 0; i < inC; i++) {
    if (i > start && sum + perIn[i] >= 2 ** 24) {
      chunks.push([start, i]);
      start = i;
      sum = 0;
    }
    sum += perIn[i];
  }
  chunks.push([start, inC]);
  let acc: string | null = null;
  for (const [c0, c1] of chunks) {
    const xs = g.op(
      'Slice',
      [
        codes,
        g.initializer('starts', [1], DT.INT64, [c0]),
        g.initializer('ends', [1], DT.INT64, [c1]),
        g.initializer('axes', [1], DT.INT64, [1]),
      ],
      `${scope}/Slice`,
    );
    const wPart = {
      dims: [c1 - c0, outC, kh, kw],
      values: Array.prototype.slice.call(q.w.values, c0 * outC * per, c1 * outC * per) as number[],
    };
    const part = g.op(
      'Cast',
      [convNode(g, xs, m as unknown as ConvNd, wPart, null, scope, `${path}.chunk${c0}`, DT.FLOAT, 'weight_q')],
      `${scope}/CastInt32`,
      { to: DT.INT32 },
    );
    acc = acc ? g.op('Add', [acc, part], `${scope}/AddChunk`) : part;
  }
  if (q.b)
    acc = g.op('Add', [acc!, g.initializer(`${path}.bias_q`, [q.b.length, ...Array(rank - 2).fill(1)], DT.INT32, q.b)], `${scope}/AddBias`);
  return acc!;
}

function thinkerWeighted(ctx: ExportContext, c: CapturedCall, m: WeightedIntLayer, scope: string, type: string, kind: WeightedKind): void {
  const g = ctx.g;
  const x = c.inputs[0] as Tensor;
  const { sx, sw, so } = ctx.scales(c, true);
  const q = weightCodes(m, sx, sw, kind);
  const ins = [ctx.int8Input(x, sx, m.dataBits, scope), g.initializer(`${c.target}.weight`, q.w.dims, DT.INT8, q.w.values)];
  if (q.b) ins.push(g.initializer(`${c.target}.bias`, [q.b.length], DT.INT32, q.b));
  const common = {
    scale_x: { float: sx },
    scale_w: { float: sw },
    scale_o: { float: so },
    data_bits: m.dataBits,
    parameter_bits: m.parameterBits,
    o_bits: m.outBits,
    ...PLATFORM,
  };
  const geom = kind === 'linear' ? {} : convAttrs(m as unknown as ConvNd);
  const dil = (geom as { dilations?: number[] }).dilations ?? [];
  if ((type === 'Conv2dInt' || type === 'Conv1dInt') && dil.some((d) => d > 1)) {
    // measured: Conv2dInt 98 of 100 values differ, Conv1dInt 71 of 72
    throw new ThinkerUnsupportedError(
      `dilation (${dil.join(', ')}): the executor's dilated ${type} computes other values ` +
        '(its Conv2dInt keeps only kernel-size rows of the input, a form for one output row)',
    );
  }
  // linger writes castor_mode only on Conv2dInt (not Conv1dInt, ConvTranspose2dInt, LinearInt)
  const y = g.op(type, ins, `${scope}/${type}`, { ...geom, ...common, ...(type === 'Conv2dInt' ? { castor_mode: 'luna' } : {}) }, THINKER);
  ctx.out(c, { name: y, int8Scale: so });
}

interface WeightCodes {
  w: { dims: number[]; values: number[] };
  b: number[] | null;
  /** max over output channels of 128·Σ|q_w| + |q_b|: every partial sum of the accumulator is below it */
  bound: number;
}

/** The integer weight and bias codes the engine's eval uses (same tf ops, so the same values). */
function weightCodes(m: WeightedIntLayer, sx: number, sw: number, kind: WeightedKind): WeightCodes {
  return tidyValue(() => {
    const w = clampSym(m.weight.raw, m.normalizeWeight);
    const check = trainScale(maxAbs(w), m.parameterBits);
    if (check !== sw) throw new Error(`internal: weight scale ${check} differs from the recorded ${sw}`);
    const qw = logicalValues(quantizeCodes(w, sw, m.parameterBits), m.weight.perm);
    const b = m.bias ? clampSym(m.bias.raw, m.normalizeBias) : null;
    const qb = b ? Array.from(tf.cast(tf.floor(tf.add(tf.mul(b, sx * sw), 0.5)), 'int32').dataSync()) : null;
    const values = Array.from(qw.values);
    const outC = kind === 'transposed' ? qw.dims[1] * (m.groups ?? 1) : qw.dims[0];
    const sums = new Float64Array(outC);
    if (kind === 'transposed') {
      const [inC, outG] = qw.dims;
      const per = qw.dims.slice(2).reduce((a, v) => a * v, 1);
      const inG = inC / (m.groups ?? 1);
      for (let i = 0; i < inC; i++) {
        const grp = Math.floor(i / inG);
        for (let j = 0; j < outG; j++) for (let t = 0; t < per; t++) sums[grp * outG + j] += Math.abs(values[(i * outG + j) * per + t]);
      }
    } else {
      const per = values.length / outC;
      for (let o = 0; o < outC; o++) for (let t = 0; t < per; t++) sums[o] += Math.abs(values[o * per + t]);
    }
    let bound = 0;
    for (let o = 0; o < outC; o++) bound = Math.max(bound, 128 * sums[o] + (qb ? Math.abs(qb[o]) : 0));
    return { w: { dims: qw.dims, values }, b: qb, bound };
  });
}
