// linger's iqSum: a sum of a quantized tensor in the fixed stage, one IQSum per sum of the traced
// graph (a child of the calling module, linger's name), with its export (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT } from '../../../onnx/proto';
import { floorLog2, maxAbs, requantize } from '../../../quant/qvalue';
import { normAxis, Tensor } from '../../../tensor';
import { operandScale } from '../base';
import { codesOf, IQOp, iqOperands } from '../iqOp';
import { defineIntOp, defineTensorOp } from '../registry';
import { ThinkerUnsupportedError } from '../../../onnx/export/thinkerRules';

export interface SumOptions {
  dim?: number | number[];
  keepdim?: boolean;
}

/** linger's iqSum: z = clamp(⌊Σx·s_z + 1/2⌋, −B−1, B)/s_z, the sum of codes in int32. */
export class IQSum extends IQOp {
  /** linger's class name, as its print shows it */
  typeName(): string {
    return 'iqSumLayer';
  }
  forward(x: Tensor, opts: SumOptions = {}): Tensor {
    const sx = operandScale(this, x);
    const xl = x.logical();
    const axes =
      opts.dim === undefined
        ? Array.from({ length: x.rank }, (_, i) => i)
        : (Array.isArray(opts.dim) ? opts.dim : [opts.dim]).map((d) => normAxis(d, x.rank));
    const keep = opts.dim !== undefined && (opts.keepdim ?? false);
    const sz = this.osr(() => tf.tidy(() => maxAbs(tf.sum(xl, axes, keep))));
    const k = floorLog2(sz) - floorLog2(sx);
    const value = () => tf.div(tf.cast(requantize(tf.sum(codesOf(xl, sx), axes, keep), k, this.outBits), 'float32'), sz);
    return new Tensor(this.training ? K.straightThrough(tf.sum(xl, axes, keep), value) : value(), null, sz);
  }
}

function lowerSum(L: ExportContext, c: CapturedCall, m: IQSum, scope: string): void {
  const { x, sx, sz } = iqOperands(c);
  const g = L.g;
  const o = (c.args?.[0] ?? {}) as SumOptions;
  const dims = o.dim === undefined ? null : (Array.isArray(o.dim) ? o.dim : [o.dim]).map((d) => normAxis(d, x.rank));
  const keep = dims !== null && (o.keepdim ?? false);
  if (L.mode === 'thinker') {
    throw new ThinkerUnsupportedError(
      "tpacker declares iqSum an iqBinaryOperator (two inputs) and asserts so: linger's one-input iqSum does not pack",
    );
  }
  // the codes summed in int32 (exact for any size), then requantized in double
  const codes = g.op('Cast', [g.op('Mul', [L.floatName(L.value(x), scope), g.scalar(sx)], `${scope}/Codes`)], `${scope}/CastInt32`, {
    to: DT.INT32,
  });
  const ins = [codes];
  if (dims) ins.push(g.initializer(`${c.target}.axes`, [dims.length], DT.INT64, dims));
  const acc = g.op('ReduceSum', ins, `${scope}/ReduceSum`, { keepdims: keep ? 1 : 0 });
  L.out(c, { name: L.requantize(acc, floorLog2(sz) - floorLog2(sx), m.outBits, sz, scope) });
}

defineIntOp({ name: 'IQSum', intClass: IQSum, lower: { qdq: lowerSum, thinker: lowerSum } });

defineTensorOp({
  op: 'sum',
  list: 'linger_iq',
  child: 'iqsum__default_index_',
  make: (bits) => new IQSum(bits),
  call: (layer, args, _dim, attrs) =>
    layer instanceof IQSum && args.every((a) => a.quantScale !== undefined)
      ? (layer(args[0], { dim: attrs?.dim as number | number[] | undefined, keepdim: attrs?.keepdim as boolean | undefined }) as Tensor)
      : undefined,
});
