// iqAdd's export: qdq rescales each operand's codes to the output scale in float32, as the engine
// does, adds and clamps; thinker writes linger's iqAdd.
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { PLATFORM, THINKER } from '../../../onnx/proto';
import { qmax } from '../../../quant/qvalue';
import { normAxis, Tensor } from '../../../tensor';
import type { QuantBits } from '../base';

/** ⌊q·s_z/s_in + 0.5⌋ = ⌊x·s_z + 0.5⌋ for x = q/s_in of every input, combined by `combine`, clamped, ÷ s_z. */
export function qdqRescaled(
  ctx: ExportContext,
  c: CapturedCall,
  m: QuantBits,
  scope: string,
  combine: (rescaled: string[]) => string,
): void {
  const g = ctx.g;
  const sz = c.scales?.o;
  if (!sz) throw new Error('no output scale was recorded');
  const b = qmax(m.outBits);
  const rescaled = (c.inputs as Tensor[]).map((t, i) =>
    g.op(
      'Floor',
      [
        g.op(
          'Add',
          [g.op('Mul', [ctx.floatName(ctx.value(t), scope), g.scalar(sz)], `${scope}/Rescale${i}/Mul`), g.scalar(0.5)],
          `${scope}/Rescale${i}/Add`,
        ),
      ],
      `${scope}/Rescale${i}/Floor`,
    ),
  );
  const q = g.op('Clip', [combine(rescaled), g.scalar(-b - 1), g.scalar(b)], `${scope}/Clip`);
  ctx.out(c, { name: g.op('Div', [q, g.scalar(sz)], `${scope}/Dequantize/Div`) });
}

/** The output scale and the int8 inputs of a thinker iqAdd/iqCat. */
export function thinkerOperands(
  ctx: ExportContext,
  c: CapturedCall,
  m: QuantBits,
  scope: string,
): { sz: number; xs: Tensor[]; ins: string[] } {
  const sz = c.scales?.o;
  if (!sz) throw new Error('no output scale was recorded');
  const xs = c.inputs as Tensor[];
  return { sz, xs, ins: xs.map((t) => ctx.int8Input(t, t.quantScale!, m.dataBits, scope)) };
}

export function qdqIqAdd(ctx: ExportContext, c: CapturedCall, m: QuantBits, scope: string): void {
  qdqRescaled(ctx, c, m, scope, (r) => ctx.g.op('Add', r, `${scope}/Add`));
}

export function thinkerIqAdd(ctx: ExportContext, c: CapturedCall, m: QuantBits, scope: string): void {
  const { sz, xs, ins } = thinkerOperands(ctx, c, m, scope);
  const y = ctx.g.op(
    'iqAdd',
    ins,
    `${scope}/iqAdd`,
    {
      scale_x: { float: xs[0].quantScale! },
      scale_y: { float: xs[1].quantScale! },
      scale_o: { float: sz },
      ...PLATFORM,
      mode: 'Non_t710_mode', // linger's luna_quant iqAdd carries it (docs/onnx.md, thinker conformance)
    },
    THINKER,
  );
  ctx.out(c, { name: y, int8Scale: sz });
}

/** iqCat's axis: the recorded dim of the call (normalized against the first input's rank). */
export const catAxis = (c: CapturedCall) => normAxis(Number(c.args?.[0] ?? 0), (c.inputs[0] as Tensor).rank);
