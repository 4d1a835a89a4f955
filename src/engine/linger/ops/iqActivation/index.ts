// linger's iqSigmoid and iqTanh: the activation of a quantized tensor through the integer
// sigmoid/tanh (quant/intActivation.ts), one layer per sigmoid/tanh (or nn.Sigmoid/nn.Tanh) of the
// traced graph, each a child of the calling module (linger's name); with their export (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, PLATFORM, THINKER } from '../../../onnx/proto';
import { Sigmoid, Tanh } from '../../../nn/activation';
import { activationTables, sigmoidQ7, tanhQ7 } from '../../../quant/intActivation';
import { floorLog2 } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { operandScale, writeBuf } from '../base';
import { IQOp, iqOperands } from '../iqOp';
import { defineIntOp, defineTensorOp } from '../registry';

/**
 * iqSigmoid/iqTanh: x requantized exactly to 16 bits at s16 = 256·s_x, then to Q11:
 * x11 = q16·2^l (l = 11 − log2 s16 > 0) or ⌊q16·2^l + 1/2⌋; the integer activation (intActivation.ts)
 * gives Q7 codes; the output scale is fixed at 128 (scale_o := 128, running_o := 1 as linger).
 */
abstract class IQActivation extends IQOp {
  abstract readonly kind: 'sigmoid' | 'tanh';
  protected abstract q7(x11: tf.Tensor): tf.Tensor;
  protected abstract float(x: tf.Tensor): tf.Tensor;
  forward(x: Tensor): Tensor {
    const sx = operandScale(this, x);
    if (!this.training) this.calibratedRunning(); // linger asserts a trained running_o even here
    writeBuf(this, 'running_o', 1);
    writeBuf(this, 'scale_o', 128);
    const s16 = 256 * sx;
    const l = 11 - floorLog2(s16);
    const value = () => {
      const q16 = tf.clipByValue(tf.floor(tf.add(tf.mul(x.raw, s16), 0.5)), -32768, 32767);
      const x11 = l > 0 ? tf.mul(q16, 2 ** l) : tf.floor(tf.add(tf.mul(q16, 2 ** l), 0.5));
      return tf.div(tf.cast(this.q7(x11), 'float32'), 128);
    };
    return new Tensor(this.training ? K.straightThrough(this.float(x.raw), value) : value(), x.perm, 128);
  }
}
export class IQSigmoid extends IQActivation {
  readonly kind = 'sigmoid';
  typeName(): string {
    return 'iqSigmoidLayer';
  } // linger's class name, as its print shows it
  protected q7(x11: tf.Tensor): tf.Tensor {
    return sigmoidQ7(x11);
  }
  protected float(x: tf.Tensor): tf.Tensor {
    return tf.sigmoid(x);
  }
}
export class IQTanh extends IQActivation {
  readonly kind = 'tanh';
  typeName(): string {
    return 'iqTanhLayer';
  } // linger's class name, as its print shows it
  protected q7(x11: tf.Tensor): tf.Tensor {
    return tanhQ7(x11);
  }
  protected float(x: tf.Tensor): tf.Tensor {
    return tf.tanh(x);
  }
}

function lowerActivation(L: ExportContext, c: CapturedCall, m: IQSigmoid | IQTanh, scope: string): void {
  const { x, sx } = iqOperands(c);
  const g = L.g;
  const kind = m.kind;
  const s16 = 256 * sx;
  if (L.mode === 'thinker') {
    const op = kind === 'sigmoid' ? 'iqSigmoid' : 'iqTanh';
    const x16 = g.op(
      'Requant',
      [L.int8Input(x, sx, m.dataBits, scope)],
      `${scope}/Requant`,
      {
        data_bits: 8,
        scale_x: { float: sx },
        scale_o: { float: s16 },
        o_bits: 16,
      },
      THINKER,
    );
    const y = g.op(
      op,
      [x16],
      `${scope}/${op}`,
      { scale_x: { float: s16 }, scale_o: { float: 128 }, ...PLATFORM, castor_mode: 'luna' },
      THINKER,
    );
    return L.out(c, { name: y, int8Scale: 128 });
  }
  // the engine's steps: q16 = clamp(⌊x·s16 + 1/2⌋, int16), x11 = q16·2^l or ⌊q16·2^l + 1/2⌋
  const l = 11 - floorLog2(s16);
  const xf = L.floatName(L.value(x), scope);
  const q16 = g.op(
    'Clip',
    [
      g.op(
        'Floor',
        [g.op('Add', [g.op('Mul', [xf, g.scalar(s16)], `${scope}/Q16/Mul`), g.scalar(0.5)], `${scope}/Q16/Add`)],
        `${scope}/Q16/Floor`,
      ),
      g.scalar(-32768),
      g.scalar(32767),
    ],
    `${scope}/Q16/Clip`,
  );
  const shifted = g.op('Mul', [q16, g.scalar(2 ** l)], `${scope}/Q11/Mul`);
  const x11 = l > 0 ? shifted : g.op('Floor', [g.op('Add', [shifted, g.scalar(0.5)], `${scope}/Q11/Add`)], `${scope}/Q11/Floor`);
  const q7 = intActivation(L, kind, x11, scope);
  const y = g.op('Div', [g.op('Cast', [q7], `${scope}/CastFloat`, { to: DT.FLOAT }), g.scalar(128)], `${scope}/Dequantize/Div`);
  L.out(c, { name: y });
}

/**
 * The integer sigmoid/tanh of Q11 values (float32 integers) as int32 Q7 codes: a Gather over the
 * engine's own 65536-entry table (entry x11 + 32768, the index clamped to int16), made once per graph.
 */
export function intActivation(L: Pick<ExportContext, 'g' | 'shared'>, kind: 'sigmoid' | 'tanh', x11: string, scope: string): string {
  const g = L.g;
  const idx = g.op(
    'Cast',
    [g.op('Add', [g.op('Clip', [x11, g.scalar(-32768), g.scalar(32767)], `${scope}/Index/Clip`), g.scalar(32768)], `${scope}/Index/Add`)],
    `${scope}/Index/Cast`,
    { to: DT.INT64 },
  );
  let table = L.shared.get(kind);
  if (!table) {
    table = g.initializer(`linger_${kind}_q11_to_q7`, [65536], DT.INT32, activationTables()[kind]);
    L.shared.set(kind, table);
  }
  return g.op('Gather', [table, idx], `${scope}/Gather`, { axis: 0 });
}

for (const [cls, name] of [
  [IQSigmoid, 'IQSigmoid'],
  [IQTanh, 'IQTanh'],
] as const) {
  defineIntOp({ name, intClass: cls, lower: { qdq: lowerActivation, thinker: lowerActivation } });
}
for (const [op, cls, module] of [
  ['sigmoid', IQSigmoid, Sigmoid],
  ['tanh', IQTanh, Tanh],
] as const) {
  defineTensorOp({
    op,
    list: 'linger_iq',
    child: `iq${op}_`,
    // nn.Sigmoid / nn.Tanh are leaf modules: the graph has the module, the hook sees its op
    modules: [module],
    make: (bits) => new cls(bits),
    call: (layer, args) => (layer instanceof cls && args.every((a) => a.quantScale !== undefined) ? (layer(args[0]) as Tensor) : undefined),
  });
}
