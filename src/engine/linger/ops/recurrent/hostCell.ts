// The integer recurrence of GRUInt and LSTMInt, one direction of one layer, on the host
// (docs/benchmarks.md#the-sequence-demos-fixed-point-step-issue-25). The cell's element-wise work
// on a [batch, hidden] state is a few dozen tiny int32 kernels per time step in TF.js, each
// costing more in dispatch than in arithmetic (wasm's int32 element-wise ops have no SIMD); here
// it is one loop over typed arrays per step. The matmuls stay in TF.js: integer codes in float32,
// exact because the reduction is split so partial sums stay below 2^24.
//
// Every expression is the one the cell's definition gives (docs/linger-ops.md: Q11 gates, the
// integer sigmoid/tanh tables, Q14 cell and state), in float64, which holds each of these integers
// exactly; the few values TF.js computed in float32 (codes ⌊x·s + 1/2⌋, the state q7) are rounded
// to float32 where TF.js rounded them, so the results are the same numbers bit for bit.
import { tf } from '../../../backend/tf';
import { EXACT, floorLog2, qmax } from '../../../quant/qvalue';
import { activationTables } from '../../../quant/intActivation';

const f32 = Math.fround;

/** clamp(⌊x·s + 1/2⌋, −B−1, B) as float32 arithmetic gives it (s a power of two: x·s is exact). */
export function hostCode(x: number, s: number, b: number): number {
  const v = Math.floor(f32(x * s + 0.5));
  return v < -b - 1 ? -b - 1 : v > b ? b : v;
}

/**
 * toQ(acc, s, 11) in place for l = 11 − log2 s: acc·2^l for l ≥ 0, else ⌊acc·2^l + 1/2⌋ (exact in
 * float64: ·2^l only moves the exponent). `bias[i mod bias.length]` is added to acc first.
 */
export function hostToQ11(
  acc: ArrayLike<number>,
  l: number,
  bias: Float64Array | null,
  out: Float64Array,
  from = 0,
  to = out.length,
): void {
  const m = 2 ** l;
  const half = l >= 0 ? 0 : 2 ** (-l - 1);
  const n = bias ? bias.length : 0;
  for (let i = from, g = 0; i < to; i++) {
    const a = bias ? acc[i] + bias[g] : acc[i];
    out[i] = l >= 0 ? a * m : Math.floor((a + half) * m);
    if (++g === n) g = 0;
  }
}
/** the shift l = 11 − log2 s of an accumulator at scale s */
export const q11Shift = (s: number): number => 11 - floorLog2(s);

/**
 * Σ a·w of integer codes (a [M, K] of `aBits` codes, w [K, N] of `wBits` codes) as host numbers:
 * one float32 matmul when every partial sum stays below 2^24, else chunks of the reduction summed
 * in float64.
 */
export function codesMatMulHost(a: tf.Tensor2D, w: tf.Tensor2D, aBits: number, wBits: number): Float32Array | Float64Array {
  const k = a.shape[1];
  const chunk = Math.max(1, Math.floor((EXACT - 1) / (2 ** (aBits - 1) * 2 ** (wBits - 1))));
  const part = (a0: tf.Tensor2D, w0: tf.Tensor2D) => {
    const p = tf.matMul(a0, w0);
    try {
      return p.dataSync() as Float32Array;
    } finally {
      p.dispose();
    }
  };
  if (k <= chunk) return part(a, w);
  const out = new Float64Array(a.shape[0] * w.shape[1]);
  for (let c0 = 0; c0 < k; c0 += chunk) {
    const n = Math.min(chunk, k - c0);
    const as = tf.slice(a, [0, c0], [-1, n]),
      ws = tf.slice(w, [c0, 0], [n, -1]);
    const p = part(as, ws);
    as.dispose();
    ws.dispose();
    for (let i = 0; i < out.length; i++) out[i] += p[i];
  }
  return out;
}

/** One direction of one layer, as the host recurrence needs it. */
export interface HostRecurrence {
  kind: 'GRU' | 'LSTM';
  T: number;
  B: number;
  H: number;
  /** the input side of every step at Q11: [T, B, gates·H] */
  gi: Float64Array;
  /** the recurrent weights' codes, physical [H, gates·H] */
  whhCodes: tf.Tensor2D;
  /** the recurrent bias (after its normalize clamp), or null */
  bhh: Float32Array | ArrayLike<number> | null;
  shw: number;
  dataBits: number;
  parameterBits: number;
  outBits: number;
  /** the initial state [B·H] (and the LSTM's cell state) */
  h0: ArrayLike<number>;
  c0: ArrayLike<number> | null;
  /** normalize_data: the state's clamp, or null */
  clamp: number | null;
  /** the scale step 0 quantizes the initial state at */
  sh0: number;
  /**
   * After step t's cell: from max|h| (after the clamp), the scale h is requantized at (its o_bits
   * grid) and the scale the next step quantizes it at (data_bits).
   */
  next(t: number, maxAbs: number): { s: number; sh: number };
}

export interface HostResult {
  /** each step's input state as the cell read it: codes / sh, [T, B, H] */
  hq: Float32Array;
  /** each step's h from the cell, before the normalize clamp, [T, B, H] */
  hCell: Float32Array;
  /** LSTM: each step's cell state c (Q14 as a float), [T, B, H] */
  cCell: Float32Array | null;
  /** each step's h on its o_bits grid, [T, B, H] */
  h: Float32Array;
  /** the scale a step after the last would quantize its input state at (linger's scale_h) */
  shLast: number;
}

/** Runs the integer cell over every step (values only: a training step's gradient comes from the float carrier). */
export function hostRecurrence(r: HostRecurrence): HostResult {
  const { T, B, H, gi } = r;
  const G = r.kind === 'GRU' ? 3 : 4;
  const GH = G * H,
    BH = B * H;
  const { sigmoid: SIG, tanh: TANH } = activationTables();
  const lut = (tab: Int32Array, x: number) => tab[x < -32768 ? 0 : x > 32767 ? 65535 : x + 32768];
  const bd = qmax(r.dataBits),
    bo = qmax(r.outBits);
  const v = r.clamp === null ? null : f32(r.clamp);
  const hq = new Float32Array(T * BH),
    hCell = new Float32Array(T * BH),
    hOut = new Float32Array(T * BH);
  const cCell = r.kind === 'LSTM' ? new Float32Array(T * BH) : null;
  const h = Float32Array.from(r.h0);
  const c = r.kind === 'LSTM' ? Float32Array.from(r.c0 ?? new Float32Array(BH)) : null;
  const codes = new Float32Array(BH);
  const hv = new Float32Array(BH);
  const qb = r.bhh ? new Float64Array(GH) : null;
  const ghAll = new Float64Array(B * GH);
  let sh = r.sh0;
  for (let t = 0; t < T; t++) {
    const at = t * BH;
    for (let i = 0; i < BH; i++) {
      codes[i] = hostCode(h[i], sh, bd);
      hq[at + i] = codes[i] / sh;
    }
    const hCodes = tf.tensor2d(codes, [B, H]);
    const acc = codesMatMulHost(hCodes, r.whhCodes, r.dataBits, r.parameterBits);
    hCodes.dispose();
    const k = sh * r.shw;
    const l = q11Shift(k);
    if (qb) for (let g = 0; g < GH; g++) qb[g] = Math.floor(f32(r.bhh![g] * k + 0.5));
    hostToQ11(acc, l, qb, ghAll);
    let m = 0;
    for (let b = 0; b < B; b++) {
      const gb = (t * B + b) * GH,
        ab = b * GH;
      for (let j = 0; j < H; j++) {
        const i = b * H + j;
        let hc: number;
        if (c === null) {
          const rr = lut(SIG, gi[gb + j] + ghAll[ab + j]),
            z = lut(SIG, gi[gb + H + j] + ghAll[ab + H + j]);
          const rh = Math.floor((rr * ghAll[ab + 2 * H + j] + 64) / 128); // Q18 → Q11
          const n = lut(TANH, gi[gb + 2 * H + j] + rh);
          const h7 = Math.floor(f32(h[i] * 128 + 0.5)); // linger's Q7 state
          hc = (128 * n + z * (h7 - n)) / 16384;
        } else {
          const ig = lut(SIG, gi[gb + j] + ghAll[ab + j]),
            fg = lut(SIG, gi[gb + H + j] + ghAll[ab + H + j]),
            gg = lut(TANH, gi[gb + 2 * H + j] + ghAll[ab + 2 * H + j]),
            og = lut(SIG, gi[gb + 3 * H + j] + ghAll[ab + 3 * H + j]);
          const C = fg * Math.floor(f32(c[i] * 128 + 0.5)) + ig * gg; // Q14
          const tc = lut(TANH, Math.floor((C + 4) / 8)); // Q14 → Q11
          hc = (og * tc) / 16384;
          c[i] = C / 16384;
          cCell![at + i] = c[i];
        }
        hCell[at + i] = hc;
        const y = v === null ? hc : hc < -v ? -v : hc > v ? v : hc;
        hv[i] = y;
        const a = y < 0 ? -y : y;
        if (a > m) m = a;
      }
    }
    const nx = r.next(t, m);
    for (let i = 0; i < BH; i++) {
      h[i] = hostCode(hv[i], nx.s, bo) / nx.s;
      hOut[at + i] = h[i];
    }
    sh = nx.sh;
  }
  return { hq, hCell, cCell, h: hOut, shLast: sh };
}
