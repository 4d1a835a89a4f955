// AvgPool2dInt's export: qdq recovers the exact integer window sums from an AveragePool of the
// codes and divides them as the engine does, in double; thinker writes linger's AvgPool2dInt.
import { pair } from '../../../nn/layout';
import { floorLog2, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, PLATFORM, THINKER } from '../../../onnx/proto';
import type { AvgPool2dInt } from './layer';

export function qdqAvgPool(ctx: ExportContext, c: CapturedCall, m: AvgPool2dInt, scope: string): void {
  const g = ctx.g;
  const x = c.inputs[0] as Tensor;
  const { sx, so } = ctx.scales(c, false);
  const k = pair(m.kernelSize, 'kernel_size'),
    s = pair(m.stride, 'stride'),
    p = pair(m.padding, 'padding');
  const codes = ctx.inputCodes(x, sx, m.dataBits, scope);
  const area = k[0] * k[1];
  // window sums of codes are exact integers: recover them from the average (error ≪ 1/2)
  const avg = g.op('AveragePool', [codes], `${scope}/AveragePool`, {
    kernel_shape: k,
    strides: s,
    pads: [p[0], p[1], p[0], p[1]],
    count_include_pad: 1,
  });
  const sum = g.op('Round', [g.op('Mul', [avg, g.scalar(area)], `${scope}/WindowSum`)], `${scope}/Round`);
  // q = ⌊(2·sum·num + den) / (2·den)⌋, the engine's integer division, in double
  const e = floorLog2(so) - floorLog2(sx);
  const num = e >= 0 ? 2 ** e : 1,
    den = area * (e >= 0 ? 1 : 2 ** -e);
  const d = g.op('Cast', [sum], `${scope}/CastDouble`, { to: DT.DOUBLE });
  const t = g.op('Add', [g.op('Mul', [d, g.scalar(2 * num, DT.DOUBLE)], `${scope}/Mul`), g.scalar(den, DT.DOUBLE)], `${scope}/Add`);
  const qd = g.op('Floor', [g.op('Div', [t, g.scalar(2 * den, DT.DOUBLE)], `${scope}/Div`)], `${scope}/Floor`);
  const b = qmax(m.outBits);
  const qc = g.op('Clip', [qd, g.scalar(-b - 1, DT.DOUBLE), g.scalar(b, DT.DOUBLE)], `${scope}/Clip`);
  const qf = g.op('Cast', [qc], `${scope}/CastFloat`, { to: DT.FLOAT });
  ctx.out(c, { name: g.op('Div', [qf, g.scalar(so)], `${scope}/Dequantize/Div`) });
}

export function thinkerAvgPool(ctx: ExportContext, c: CapturedCall, m: AvgPool2dInt, scope: string): void {
  const g = ctx.g;
  const { sx, so } = ctx.scales(c, false);
  const k = pair(m.kernelSize, 'kernel_size'),
    s = pair(m.stride, 'stride'),
    p = pair(m.padding, 'padding');
  const y = g.op(
    'AvgPool2dInt',
    [ctx.int8Input(c.inputs[0] as Tensor, sx, m.dataBits, scope)],
    `${scope}/AvgPool2dInt`,
    {
      kernel_shape: k,
      strides: s,
      pads: [p[0], p[1], p[0], p[1]],
      ceil_mode: 0,
      data_bits: m.dataBits,
      scale_x: { float: sx },
      scale_o: { float: so },
      o_bits: m.outBits,
      ...PLATFORM,
    },
    THINKER,
  );
  ctx.out(c, { name: y, int8Scale: so });
}
