// linger's GRUInt and LSTMInt: nn.GRU / nn.LSTM in the fixed stage (replaced by default), their
// export (./lower.ts) and their row of the quantization report.
import { tf } from '../../../backend/tf';
import { GRU, LSTM } from '../../../nn/recurrent';
import { Tensor } from '../../../tensor';
import { readBuf } from '../base';
import { defineIntOp, QuantReportRow } from '../registry';
import { GRUInt, LSTMInt } from './layer';
import { lowerRecurrentInt } from './lower';

export { GRUInt, LSTMInt } from './layer';

const range = (t: tf.Tensor): [number, number] => tf.tidy(() => [tf.min(t).dataSync()[0], tf.max(t).dataSync()[0]]);

/** A GRUInt/LSTMInt row: input, input-weight and output scales, all weights' range, SQNR of the output sequence. */
function recurrentRow(m: GRUInt | LSTMInt, path: string, args: unknown[], out: unknown): QuantReportRow {
  const params = m.namedParameters();
  const span = (which: string): [number, number] | null => {
    const r = params.filter(([k]) => k.startsWith(which)).map(([, p]) => range(p.raw));
    return r.length ? [Math.min(...r.map((v) => v[0])), Math.max(...r.map((v) => v[1]))] : null;
  };
  // the float layer's forward on the same input, with the same weights
  const x = args[0] as Tensor;
  const ref = m.kind === 'GRU' ? GRU.prototype.forward.call(m, x) : LSTM.prototype.forward.call(m, x);
  const yf = ref[0].logical(),
    yq = (out as [Tensor, unknown])[0].logical();
  const noise = tf.sum(tf.square(tf.sub(yf, yq))).dataSync()[0];
  const signal = tf.sum(tf.square(yf)).dataSync()[0];
  return {
    path,
    type: m.typeName(),
    bits: { dataBits: m.dataBits, parameterBits: m.parameterBits, outBits: m.outBits },
    aheadRelu: false,
    scaleX: readBuf(m, 'scale_i'),
    scaleW: readBuf(m, 'scale_iw'),
    scaleO: readBuf(m, 'scale_o'),
    weightRange: span('weight'),
    biasRange: span('bias'),
    sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
  };
}

defineIntOp({
  name: 'GRUInt',
  intClass: GRUInt,
  replaces: [{ float: GRU, from: (m, o) => GRUInt.from(m as GRU, o) }],
  lower: { qdq: lowerRecurrentInt, thinker: lowerRecurrentInt },
  report: recurrentRow,
});
defineIntOp({
  name: 'LSTMInt',
  intClass: LSTMInt,
  replaces: [{ float: LSTM, from: (m, o) => LSTMInt.from(m as LSTM, o) }],
  lower: { qdq: lowerRecurrentInt, thinker: lowerRecurrentInt },
  report: recurrentRow,
});
