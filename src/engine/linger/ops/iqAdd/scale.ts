// The output scale iqAdd and iqCat share, and the requantization of an operand to it
// (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import { Module } from '../../../nn/module';
import { evalScale, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { IntLayer, iqRunning, NotCalibratedError, readBuf, writeBuf } from '../base';

/**
 * A common output scale for an element-wise op, linger's output scale rule (docs/linger-ops.md#output-scale-rule):
 * training 2^round(log2(B / max)) (max = 0 → 1) with running_o ← 0.9·running_o + 0.1·max (in
 * float32 as linger: iqRunning); eval 2^round(log2(B / running_o)), capped at `cap` (iqAdd: the smallest input scale).
 */
export function opScale(m: Module & IntLayer, max: number, cap: number | null): number {
  if (m.training) {
    writeBuf(m, 'running_o', iqRunning(readBuf(m, 'running_o'), max, m.outBits));
    return max > 0 ? 2 ** Math.round(Math.log2(qmax(m.outBits) / max)) : 1;
  }
  const r = readBuf(m, 'running_o');
  if (!(r > 0)) throw new NotCalibratedError(m, 'running_o');
  const s = evalScale(r, m.outBits);
  return cap === null ? s : Math.min(s, cap);
}

/** Codes of x requantized from scale sx to sz: ⌊q_x·s_z/s_x + 0.5⌋ (exact: the ratio is a power of two). */
export function rescale(x: Tensor, sx: number, sz: number, layout: readonly number[] | null): tf.Tensor {
  return tf.floor(tf.add(tf.mul(x.physical(layout), sz), 0.5)); // x = q_x/s_x, so q_x·s_z/s_x = x·s_z
}

/** Buffers our iqAdd/iqCat layers had before they took linger's two (an older checkpoint's): dropped on load. */
export function dropOlderKeys(sd: Map<string, Tensor>, prefix: string): void {
  for (const k of ['running_x', 'running_w', 'scale_x', 'scale_w']) sd.delete(prefix + k);
}
