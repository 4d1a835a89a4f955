// linger's iqClamp: a clamp of a quantized tensor with bounds linger's iqClamp takes (others stay
// float), one layer per such clamp of the traced graph (a child of the calling module, linger's name), with its
// export (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { ThinkerUnsupportedError } from '../../../onnx/export/thinkerRules';
import { batchMax } from '../../../backend/shard';
import { maxAbs, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { operandScale, QuantBits, readBuf, writeBuf } from '../base';
import { IQOp, iqOperands } from '../iqOp';
import { defineIntOp, defineTensorOp } from '../registry';

/**
 * linger's iqClamp: only bounds with a power-of-two s_o = B/max and min ∈ {0, −8} (linger asserts
 * them; `IQClamp.supports`). y = ⌊x·s_o + 1/2⌋, clamped to [0, B] if min = 0, then to [−B−1, B];
 * ÷ s_o (so the lower bound is really −128/s_o). running_o follows the OSR (eval requires it).
 */
export class IQClamp extends IQOp {
  /** linger's class name, as its print shows it */
  typeName(): string {
    return 'iqClampLayer';
  }
  constructor(
    bits: QuantBits,
    readonly min: number,
    readonly max: number,
  ) {
    super(bits);
    if (!IQClamp.supports(min, max, bits.outBits)) {
      throw new Error(
        `iqClamp: clamp(${min}, ${max}) is not supported: max must be ${qmax(bits.outBits)}/2^n and min 0 or −8 (linger's luna_quant rule)`,
      );
    }
  }
  static supports(min: number | null | undefined, max: number | null | undefined, bits = 8): boolean {
    if (typeof min !== 'number' || typeof max !== 'number' || !(max > 0)) return false;
    return Number.isInteger(Math.log2(qmax(bits) / max)) && (min === 0 || min === -8);
  }
  get scaleOut(): number {
    return qmax(this.outBits) / this.max;
  }
  forward(x: Tensor): Tensor {
    operandScale(this, x);
    if (this.training) {
      const m = batchMax(tf.tidy(() => maxAbs(tf.clipByValue(x.raw, this.min, this.max))));
      writeBuf(this, 'running_o', 0.9 * readBuf(this, 'running_o') + 0.1 * m);
    } else this.calibratedRunning();
    const so = this.scaleOut;
    writeBuf(this, 'scale_o', so);
    const b = qmax(this.outBits);
    const value = () => {
      const y = tf.floor(tf.add(tf.mul(x.raw, so), 0.5));
      return tf.div(tf.clipByValue(y, this.min === 0 ? 0 : -b - 1, b), so);
    };
    return new Tensor(this.training ? K.straightThrough(tf.clipByValue(x.raw, this.min, this.max), value) : value(), x.perm, so);
  }
  /** linger's iqClampLayer prints no settings */
  extraRepr(): string {
    return '';
  }
}

function lowerClamp(L: ExportContext, c: CapturedCall, m: IQClamp, scope: string): void {
  const { x } = iqOperands(c);
  const g = L.g;
  const so = m.scaleOut;
  if (L.mode === 'thinker') {
    // tpacker v1.1.0: 'not support Operator: "iqClamp" yet' (measured; docs/onnx.md)
    throw new ThinkerUnsupportedError(
      'tpacker v1.1.0 has no iqClamp operator (it rejects the file); clamp outside the model or drop the clamp',
    );
  }
  const b = qmax(m.outBits);
  const y = g.op(
    'Floor',
    [g.op('Add', [g.op('Mul', [L.floatName(L.value(x), scope), g.scalar(so)], `${scope}/Mul`), g.scalar(0.5)], `${scope}/Add`)],
    `${scope}/Floor`,
  );
  const q = g.op('Clip', [y, g.scalar(m.min === 0 ? 0 : -b - 1), g.scalar(b)], `${scope}/Clip`);
  L.out(c, { name: g.op('Div', [q, g.scalar(so)], `${scope}/Dequantize/Div`) });
}

defineIntOp({ name: 'IQClamp', intClass: IQClamp, lower: { qdq: lowerClamp, thinker: lowerClamp } });

defineTensorOp({
  op: 'clamp',
  list: 'linger_iq',
  child: 'iqclamp_',
  make: (bits, n) => {
    const a = (n.attrs ?? {}) as { min?: number | null; max?: number | null };
    return IQClamp.supports(a.min, a.max, bits.outBits) ? new IQClamp(bits, a.min!, a.max!) : null;
  },
  call: (layer, args, _dim, attrs) =>
    layer instanceof IQClamp && args.every((a) => a.quantScale !== undefined) && attrs?.min === layer.min && attrs?.max === layer.max
      ? (layer(args[0]) as Tensor)
      : undefined,
});
