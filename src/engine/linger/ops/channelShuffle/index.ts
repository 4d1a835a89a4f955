// linger's channel_shuffle (ShuffleNet's channel shuffle): [N, C, H, W] viewed as
// [N, g, C/g, H, W], the two group axes swapped, viewed back. A pure data move: a quantized input
// keeps its codes and scale. With init's `functions: ['channel_shuffle']` (linger's
// SetFunctionChannelShuffleQuant(True)) a quantized shuffle is exported to thinker as its own op,
// `ShuffleChannel` (attribute `groups`); otherwise, and in float and qdq, as Reshape → Transpose →
// Reshape. It has no layer and no state.
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, THINKER } from '../../../onnx/proto';
import { quantizedOp, record, Tensor } from '../../../tensor';
import { defineTensorOp } from '../registry';

function shuffled(x: Tensor, groups: number): Tensor {
  const [n, c, ...rest] = x.shape;
  return x
    .reshape([n, groups, c / groups, ...rest])
    .transpose(1, 2)
    .reshape([n, c, ...rest]);
}

/** linger.channel_shuffle(x, groups): x is [N, C, …] with C divisible by groups. */
export function channelShuffle(x: Tensor, groups: number): Tensor {
  if (!(x instanceof Tensor) || x.rank < 3) throw new Error('linger.channelShuffle: x must be a tensor [N, C, H, W] (rank 3 or more)');
  const c = x.shape[1];
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new Error(`linger.channelShuffle: groups must be a positive integer dividing the ${c} channels, got ${groups}`);
  }
  const attrs: Record<string, unknown> = { groups };
  return record('channel_shuffle', [x], () => quantizedOp('channel_shuffle', [x], undefined, attrs) ?? shuffled(x, groups), attrs);
}

/** Reshape → Transpose → Reshape of a value (float, or int8 codes at their scale in thinker). */
function lowerAsLayoutOps(ctx: ExportContext, c: CapturedCall, x: Tensor, groups: number): void {
  const g = ctx.g;
  const v = ctx.value(x);
  const src = ctx.mode === 'thinker' ? v : { name: ctx.floatName(v, '/channel_shuffle') };
  const [n, ch, ...rest] = x.shape;
  const shape = (dims: number[]) => g.initializer('shape', [dims.length], DT.INT64, dims);
  const split = g.op('Reshape', [src.name, shape([n, groups, ch / groups, ...rest])], '/ChannelShuffle/Reshape');
  const perm = [0, 2, 1, ...rest.map((_, i) => i + 3)];
  const swapped = g.op('Transpose', [split], '/ChannelShuffle/Transpose', { perm });
  const y = g.op('Reshape', [swapped, shape([n, ch, ...rest])], '/ChannelShuffle/Reshape');
  ctx.out(c, { name: y, ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}) });
}

defineTensorOp({
  op: 'channel_shuffle',
  flag: 'channel_shuffle',
  call: (_layer, [x], _dim, attrs) => {
    if (x.quantScale === undefined) return undefined;
    if (attrs) attrs.quantized = true; // recorded: the export writes thinker's ShuffleChannel
    return shuffled(x, attrs?.groups as number);
  },
  lowerCall: (ctx, c) => {
    const x = c.inputs[0] as Tensor;
    const groups = Number(c.attrs?.groups);
    const v = ctx.value(x);
    if (ctx.mode === 'thinker' && c.attrs?.quantized === true && v.int8Scale !== undefined) {
      const y = ctx.g.op('ShuffleChannel', [v.name], '/ShuffleChannel', { groups }, THINKER);
      return ctx.out(c, { name: y, int8Scale: v.int8Scale });
    }
    lowerAsLayoutOps(ctx, c, x, groups);
  },
});
