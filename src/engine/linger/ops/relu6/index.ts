// linger's ReLU6Int: nn.ReLU6 in the fixed stage, with its export (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { ReLU6 } from '../../../nn/activation';
import { Module } from '../../../nn/module';
import { batchMax } from '../../../backend/shard';
import { evalScale, maxAbs, qmax, trainScale, updatedRunning } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { IntOrigin, NotCalibratedError, QuantBits, quantized, readBuf, writeBuf } from '../base';
import { roundHalfEven } from '../iqOp';
import { defineIntOp } from '../registry';
import { ThinkerUnsupportedError } from '../../../onnx/export/thinkerRules';

const RELU6_KEYS = ['running_x', 'scale_x', 'min_thresh', 'max_thresh'] as const;
const RELU6_INT_KEYS = ['min_thresh', 'max_thresh'] as const;
/**
 * linger's ReLU6Int: x quantized at s (the IQTensor's, else 2^⌊log2(B/max|x|)⌋ in training with
 * running_x ← ema(B/s), 2^round(log2(B/running_x)) in eval); M = min(round(6s), B);
 * y = clamp(q, 0, M)/s, carrying s. Buffers running_x, scale_x, min_thresh (0), max_thresh (M)
 * (the thresholds int32 here, int8 in linger).
 */
export class ReLU6Int extends quantized(Module) {
  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    this.addQuantBuffers();
  }
  quantKeys(): readonly string[] {
    return RELU6_KEYS;
  }
  intQuantKeys(): readonly string[] {
    return RELU6_INT_KEYS;
  }
  /** linger's thresholds are 0-d (int8 there, int32 here: TF.js has no int8) */
  zeroDimQuantKeys(): readonly string[] {
    return RELU6_INT_KEYS;
  }
  static from(_m: ReLU6, o: IntOrigin): ReLU6Int {
    return new ReLU6Int({ dataBits: o.dataBits, parameterBits: o.parameterBits, outBits: o.outBits });
  }
  extraRepr(): string {
    return '';
  }

  forward(x: Tensor): Tensor {
    const b = qmax(this.dataBits);
    let s: number;
    if (x.quantScale !== undefined) {
      s = x.quantScale;
      writeBuf(this, 'running_x', b / s); // the IQTensor's running value
    } else if (this.training) {
      s = trainScale(batchMax(maxAbs(x.raw)), this.dataBits);
      writeBuf(this, 'running_x', updatedRunning(readBuf(this, 'running_x'), s, this.dataBits));
    } else {
      const r = readBuf(this, 'running_x');
      if (!(r > 0)) throw new NotCalibratedError(this, 'running_x');
      s = evalScale(r, this.dataBits);
    }
    writeBuf(this, 'scale_x', s);
    const M = Math.min(roundHalfEven(6 * s), b);
    writeBuf(this, 'max_thresh', M);
    const carried = x.quantScale !== undefined;
    const value = () => {
      const q = carried ? tf.round(tf.mul(x.raw, s)) : tf.clipByValue(tf.floor(tf.add(tf.mul(x.raw, s), 0.5)), -b - 1, b);
      return tf.div(tf.clipByValue(q, 0, M), s);
    };
    if (!this.training) return new Tensor(value(), x.perm, s);
    // gradient: linger's backward, hardtanh(0, 6)'s on the dequantized input (passed where
    // 0 < x̂ < 6, a saturated input included), straight to the input (docs/fixed-point.md#conformance-with-linger-111)
    const mask = (xr: tf.Tensor) =>
      tf.tidy(() => {
        const xq = carried ? xr : tf.div(tf.clipByValue(tf.floor(tf.add(tf.mul(xr, s), 0.5)), -b - 1, b), s);
        return tf.cast(tf.logicalAnd(tf.greater(xq, 0), tf.less(xq, 6)), 'float32');
      });
    return new Tensor(K.maskedStraightThrough(x.raw, mask, value), x.perm, s);
  }
}

function lowerRelu6(L: ExportContext, c: CapturedCall, m: ReLU6Int, scope: string): void {
  const g = L.g;
  const x = c.inputs[0] as Tensor;
  const s = c.scales?.x;
  if (!s) throw new Error('no input scale was recorded');
  const M = Math.min(roundHalfEven(6 * s), qmax(m.dataBits));
  if (L.mode === 'thinker') {
    throw new ThinkerUnsupportedError(
      'linger writes it as a Clip on int8: tpacker fuses a Clip after a Conv2dInt/ConvTranspose2dInt ' +
        'into the conv as act_type 3, which the executor runs as no activation (the clamp at 6 is lost), and cannot pack a Clip elsewhere (ClipAttrs)',
    );
  }
  const codes = L.inputCodes(x, s, m.dataBits, scope);
  const q = g.op('Clip', [codes, g.scalar(0), g.scalar(M)], `${scope}/Clip`);
  L.out(c, { name: g.op('Div', [q, g.scalar(s)], `${scope}/Dequantize/Div`) });
}

defineIntOp({
  name: 'ReLU6Int',
  intClass: ReLU6Int,
  replaces: [{ float: ReLU6, from: (m, o) => ReLU6Int.from(m as ReLU6, o) }],
  lower: { qdq: lowerRelu6, thinker: lowerRelu6 },
});
