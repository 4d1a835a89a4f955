// The integer sigmoid and tanh of linger's recurrent cells and iqSigmoid/iqTanh: Q11 integer in,
// Q7 integer out. linger calls compiled kernels (luna_iqsigmoid / luna_iqtanh) whose source is
// not public; the default here is the 16-segment piecewise-linear Q11→Q15 proxy restated in
// docs/linger-ops.md#sigmoid-and-tanh-tables, then Q15→Q7 as ⌊y/256 + 1/2⌋. Both are pluggable (setIntActivations), and
// every user of them (the Int layers' eval, their training forward and the qdq export's lookup
// tables) reads the same 65536-entry tables, so a replacement stays bit-exact end to end.
import { tf } from '../backend/tf';

/** A pair of integer activations: Q11 int in (any int), Q7 int out, already clamped to int8. */
export interface IntActivations {
  name: string;
  /** σ: Q11 → Q7 in [0, 127] */
  sigmoid(x11: number): number;
  /** tanh: Q11 → Q7 in [−128, 127] */
  tanh(x11: number): number;
}

const SIG_BANDS = [0, 971, 1699, 2347, 2974, 3614, 4291, 5026, 5861, 6831, 7864, 8987, 10375, 11594, 13168, 14730, 32768];
const SIG_SLOPES = [32316, 29471, 25891, 22068, 18225, 29057, 22206, 16113, 10881, 27353, 16611, 9242, 4618, 20670, 8610, 693];
const SIG_B0 = [16384, 16721, 17464, 18559, 19954, 21585, 23380, 25249, 27121, 28807, 30096, 31107, 31839, 32199, 32502, 32724];
const TANH_BANDS = [0, 512, 888, 1226, 1558, 1899, 2264, 2670, 3146, 3734, 4297, 4761, 5466, 6151, 7193, 8093, 32768];
const TANH_SLOPES = [32266, 29154, 25374, 21309, 17272, 26886, 19904, 13765, 8599, 19497, 12047, 7324, 3373, 26820, 5531, 337];
const TANH_BIAS = [0, 778, 2417, 4851, 7922, 11474, 15334, 19335, 23303, 26699, 28653, 30026, 31344, 31981, 32565, 32725];

/** The segment of |x|: j with band[j] < |x| ≤ band[j+1] (0 at 0; the last one beyond). */
function segment(bands: number[], a: number): number {
  let j = 0;
  while (j < 15 && a > bands[j + 1]) j++;
  return j;
}
/** segments 0–4, 5–8, 9–12, 13–15 use one shift each (fitted to σ/tanh at the band edges) */
const shiftGroup = (j: number) => (j <= 4 ? 0 : j <= 8 ? 1 : j <= 12 ? 2 : 3);
const clampI16 = (x: number) => Math.max(-32768, Math.min(32767, x));
/** Q15 → Q7: ⌊y/256 + 1/2⌋ */
const q15to7 = (y: number) => Math.floor((y + 128) / 256);

/** The piecewise-linear Q11 → Q15 sigmoid of docs/linger-ops.md#sigmoid-and-tanh-tables (input clamped to int16). */
function sigmoidQ15(x11: number): number {
  const x = clampI16(x11);
  const j = segment(SIG_BANDS, Math.abs(x));
  const sh = [13, 14, 16, 19][shiftGroup(j)];
  const lin = Math.floor((SIG_SLOPES[j] * x) / 2 ** sh);
  return lin + (x < 0 ? 32768 - SIG_B0[j] : SIG_B0[j]);
}
/** The piecewise-linear Q11 → Q15 tanh of docs/linger-ops.md#sigmoid-and-tanh-tables (input clamped to int16). */
function tanhQ15(x11: number): number {
  const x = clampI16(x11);
  const a = x === -32768 ? 32767 : Math.abs(x);
  const j = segment(TANH_BANDS, a);
  const sh = [11, 12, 14, 18][shiftGroup(j)];
  return x >= 0 ? Math.floor((TANH_SLOPES[j] * a) / 2 ** sh) + TANH_BIAS[j] : Math.floor((-TANH_SLOPES[j] * a) / 2 ** sh) - TANH_BIAS[j];
}

/** Default: the piecewise-linear tables above, Q15 → Q7 by rounding, clamped to int8. */
export const PIECEWISE_ACTIVATIONS: IntActivations = {
  name: 'piecewise',
  sigmoid: (x) => Math.max(0, Math.min(127, q15to7(sigmoidQ15(x)))),
  tanh: (x) => Math.max(-128, Math.min(127, q15to7(tanhQ15(x)))),
};
/** The float fallback docs/linger-ops.md#sigmoid-and-tanh-tables names: R(128·σ(x/2048)), R(128·tanh(x/2048)). */
export const FLOAT_ACTIVATIONS: IntActivations = {
  name: 'float',
  sigmoid: (x) => Math.max(0, Math.min(127, Math.floor(128 / (1 + Math.exp(-clampI16(x) / 2048)) + 0.5))),
  tanh: (x) => Math.max(-128, Math.min(127, Math.floor(128 * Math.tanh(clampI16(x) / 2048) + 0.5))),
};

let current: IntActivations = PIECEWISE_ACTIVATIONS;
let tables: { sigmoid: Int32Array; tanh: Int32Array } | null = null;
let tensors: { sigmoid: tf.Tensor1D; tanh: tf.Tensor1D } | null = null;

/** Chooses the integer sigmoid/tanh for every Int layer from now on (default PIECEWISE_ACTIVATIONS). */
export function setIntActivations(a: IntActivations): void {
  if (a === current) return;
  current = a;
  tables = null;
  if (tensors) {
    tensors.sigmoid.dispose();
    tensors.tanh.dispose();
    tensors = null;
  }
}
export function intActivations(): IntActivations {
  return current;
}

/**
 * The 65536-entry tables over int16 inputs: entry x + 32768. Inputs beyond int16 saturate to the
 * ends, which for both activations (monotone, already at the int8 limits there) is the same value.
 */
export function activationTables(): { sigmoid: Int32Array; tanh: Int32Array } {
  if (!tables) {
    const s = new Int32Array(65536),
      t = new Int32Array(65536);
    for (let i = 0; i < 65536; i++) {
      s[i] = current.sigmoid(i - 32768);
      t[i] = current.tanh(i - 32768);
    }
    tables = { sigmoid: s, tanh: t };
  }
  return tables;
}

function tableTensors(): { sigmoid: tf.Tensor1D; tanh: tf.Tensor1D } {
  if (!tensors || tensors.sigmoid.isDisposed) {
    const t = activationTables();
    tensors = { sigmoid: tf.keep(tf.tensor1d(t.sigmoid, 'int32')), tanh: tf.keep(tf.tensor1d(t.tanh, 'int32')) };
  }
  return tensors;
}

function lookup(table: tf.Tensor1D, x11: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const i = tf.add(
      tf.minimum(tf.maximum(tf.cast(x11, 'int32'), tf.scalar(-32768, 'int32')), tf.scalar(32767, 'int32')),
      tf.scalar(32768, 'int32'),
    );
    return tf.gather(table, i);
  });
}
/** Q11 int tensor (int32 or integer-valued float) → Q7 int32 codes in [0, 127]. */
export function sigmoidQ7(x11: tf.Tensor): tf.Tensor {
  return lookup(tableTensors().sigmoid, x11);
}
/** Q11 int tensor → Q7 int32 codes in [−128, 127]. */
export function tanhQ7(x11: tf.Tensor): tf.Tensor {
  return lookup(tableTensors().tanh, x11);
}
