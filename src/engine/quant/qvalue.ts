// linger's "QValue" quantizer (docs/linger-ops.md#scales): symmetric, per-tensor, zero point 0, power-of-two scales.
import { tf } from '../backend/tf';
import { tapeActive } from '../backend/kernels';

/** float32 represents every integer below 2^24 exactly: sums of codes stay exact under it. */
export const EXACT = 2 ** 24;

/** B = 2^(bits−1) − 1: the largest code; codes lie in [−B−1, B]. */
export function qmax(bits: number): number {
  return 2 ** (bits - 1) - 1;
}

/** ⌊log2 v⌋ exactly (Math.log2 can land a hair off near powers of two). */
export function floorLog2(v: number): number {
  let e = Math.floor(Math.log2(v));
  while (2 ** (e + 1) <= v) e++;
  while (2 ** e > v) e--;
  return e;
}

/** Training scale: 2^⌊log2(B / max|x|)⌋; an all-zero tensor uses 2^bits (linger QValue). */
export function trainScale(maxAbs: number, bits: number): number {
  if (!(maxAbs > 0)) return 2 ** bits;
  return 2 ** floorLog2(qmax(bits) / maxAbs);
}

/** Eval scale from the running statistic: 2^round(log2(B / running)). */
export function evalScale(running: number, bits: number): number {
  return 2 ** Math.round(Math.log2(qmax(bits) / running));
}

/**
 * The running statistic after one training batch: 0.9·running + 0.1·(B / scale), in float32 as
 * linger's ScalerBuffer computes it: ((running ·f32 0.9) +f32 f32(0.1·B/scale)).
 */
export function updatedRunning(running: number, scale: number, bits: number): number {
  return emaF32(running, qmax(bits) / scale);
}
/** linger's momentum update of a running value in float32: r·0.9 then + f32(0.1·v). */
export function emaF32(running: number, v: number): number {
  return Math.fround(Math.fround(Math.fround(running) * Math.fround(0.9)) + Math.fround(0.1 * v));
}

/** max|x| as a number (one small sync; the quantizers need it on the host to pick the scale). */
export function maxAbs(x: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(x)).dataSync()[0]);
}
/** max(x, 0) as a number: the positive range only (ahead-ReLU outputs). */
export function maxPositive(x: tf.Tensor): number {
  return Math.max(
    0,
    tf.tidy(() => tf.max(x).dataSync()[0]),
  );
}

/** The integer codes clamp(⌊x·s + 0.5⌋, −B−1, B), as float32 values (exact: |code| < 2^24). */
export function quantizeCodes(x: tf.Tensor, scale: number, bits: number): tf.Tensor {
  const b = qmax(bits);
  return tf.clipByValue(tf.floor(tf.add(tf.mul(x, scale), 0.5)), -b - 1, b);
}

/**
 * 1 where |d| ≤ v, else 0, in float arithmetic: 1 − step(|d| − v). The wasm backend's
 * comparisons and logical ops (bool tensors) cost 10–30× an arithmetic op on an activation, so
 * the straight-through masks are built from these four instead (NOTES in docs/benchmarks.md).
 */
export function withinMask(d: tf.Tensor, v: number): tf.Tensor {
  return tf.sub(1, tf.step(tf.sub(tf.abs(d), v)));
}

/**
 * Fake quantization with the straight-through estimator: the value is the dequantized code
 * clamp(⌊x·s + 0.5⌋, −B−1, B)/s; the gradient passes where the code was not clamped, else 0.
 * `clip: false` (weights) never saturates the gradient. s is a power of two, so ·(1/s) is /s exactly.
 */
export function fakeQuant(x: tf.Tensor, scale: number, bits: number, clip = true): tf.Tensor {
  const b = qmax(bits);
  if (!tapeActive()) return tf.mul(quantizeCodes(x, scale, bits), 1 / scale);
  const f = tf.customGrad(((xv: tf.Tensor, save: tf.GradSaveFunc) => {
    const raw = tf.floor(tf.add(tf.mul(xv, scale), 0.5));
    const codes = tf.clipByValue(raw, -b - 1, b);
    // the codes are integers: raw − codes is 0 where nothing was clamped, |·| ≥ 1 where it was
    if (clip) save([withinMask(tf.sub(raw, codes), 0)]);
    return {
      value: tf.mul(codes, 1 / scale),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => (clip ? tf.mul(dy, saved[0]) : dy),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor;
}

/** clamp for int32 tensors (wasm's ClipByValue reads int32 data as float32). */
export function clampInt(t: tf.Tensor, lo: number, hi: number): tf.Tensor {
  return tf.minimum(tf.maximum(t, tf.scalar(lo, 'int32')), tf.scalar(hi, 'int32'));
}

/**
 * Integer requantization as the chip does it: q = clamp(⌊acc·2^k + 0.5⌋, −B−1, B) for an int32
 * accumulator, k = log2(s_out / (s_in·s_w)). For k < 0 that is (acc + 2^(−k−1)) >> −k, computed
 * with int32 floor division so it stays exact beyond 2^24. Returns int32 codes.
 */
export function requantize(acc: tf.Tensor, k: number, bits: number): tf.Tensor {
  const b = qmax(bits);
  if (k >= 0) {
    // any |acc| ≥ 2^(bits) saturates anyway: clamp first so acc·2^k cannot overflow
    const lim = 2 ** (bits + 1);
    return clampInt(tf.mul(clampInt(acc, -lim, lim), tf.scalar(2 ** k, 'int32')), -b - 1, b);
  }
  const d = 2 ** -k;
  if (-k > 30) return tf.zerosLike(acc); // |acc|·2^k < 1/2 for any int32 accumulator
  return clampInt(tf.floorDiv(tf.add(acc, tf.scalar(d / 2, 'int32')), tf.scalar(d, 'int32')), -b - 1, b);
}
