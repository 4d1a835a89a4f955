// LayerNormInt's integer eval as ListenAI's chip computes it: thinker v1.1.0's executor kernel and
// the rounding and saturation of the LUNA vector primitives it calls (docs/fixed-point.md#layernormint).
// Per row of T int8 codes x, with q_x = log2(s_x), q_w = log2(s_w), q_o = log2(s_o):
//   S1 = Σx, S2 = Σx², D = wrap32(T·S2) − wrap32(S1·S1) + E(q_x, T)          (int64)
//   (tab, q) = the Q15 1/√ table entry for D normalized to [256, 1024) by pairs of bits
//   y1 = sat16(rnd(sat32(T·x − S1)·tab, q)),  acc = y1·γ + β,  y = sat8(rnd(acc, 10 + q_w − q_o))
// rnd(v, s) = ⌊v/2^s + 1/2⌋ for s > 0 (v unchanged for s ≤ 0, 0 for s > 63).
// All of it is exact in doubles (|values| < 2^53) except D of the generalized kernel (data_bits ≠ 8,
// which thinker's kernel does not take): exact sums, D in BigInt when it passes 2^53.

/** Entries of the reciprocal square-root table. */
export const RSQRT_TABLE_SIZE = 768;

/**
 * The chip's Q15 table of 1/√(1 + i/256), i = 0…767: ⌊32768/√(1 + i/256)⌋ capped at 32767,
 * computed exactly as the largest k with k²·(256 + i) ≤ 2^38.
 */
export function rsqrtTable(): Int16Array {
  const t = new Int16Array(RSQRT_TABLE_SIZE);
  for (let i = 0; i < RSQRT_TABLE_SIZE; i++) {
    const a = 2 ** 38,
      b = 256 + i;
    let k = Math.floor(Math.sqrt(a / b));
    while (k * k * b > a) k--;
    while ((k + 1) * (k + 1) * b <= a) k++;
    t[i] = Math.min(32767, k);
  }
  return t;
}

export const RSQRT_Q15 = rsqrtTable();

/** Index of the highest set bit of an integer 1 ≤ v < 2^53. */
function highBit(v: number): number {
  if (v < 2 ** 32) return 31 - Math.clz32(v);
  return 63 - Math.clz32(Math.floor(v / 2 ** 32));
}

/**
 * The table lookup for D ≥ 0: D scaled by 4^k into [256, 1024) (the pair of bits holding D's top
 * bit decides k), tab = table[that − 256] and the shift q = (pair index + 1) + 14 − 10 that makes
 * num·tab/2^q ≈ 1024·num/√D. D = 0 gives table[0] and q = 4 (the chip's own case).
 */
export function rsqrtLookup(D: number | bigint): { tab: number; q: number } {
  if (D === 0 || D === 0n) return { tab: RSQRT_Q15[0], q: 4 };
  let pair: number, top: number;
  if (typeof D === 'bigint') {
    pair = (D.toString(2).length - 1) >> 1;
    top = pair >= 4 ? Number(D >> BigInt(2 * pair - 8)) : Number(D) * 4 ** (4 - pair);
  } else {
    pair = highBit(D) >> 1;
    top = pair >= 4 ? Math.floor(D / 4 ** (pair - 4)) : D * 4 ** (4 - pair);
  }
  return { tab: RSQRT_Q15[top - 256], q: pair + 5 };
}

/** ⌊v/2^s + 1/2⌋ for an integer |v| < 2^52 (the LUNA shift: s ≤ 0 leaves v, s > 63 gives 0). */
export function roundShift(v: number, s: number): number {
  if (s <= 0) return v;
  if (s >= 53) return 0; // |v| < 2^52: v/2^s + 1/2 lies in (0, 1)
  return Math.floor((v + 2 ** (s - 1)) / 2 ** s);
}

const sat = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);
const I32 = 2 ** 31;
const sat32 = (v: number) => sat(v, -I32, I32 - 1);
const EPS = Math.fround(1e-5);

/**
 * The kernel's eps term E = ⌊eps·2^(2·q_x)·T·T + 0.5⌋ in float32 arithmetic with eps fixed at
 * 1e-5 (the layer's own eps is not used); 2^(2·q_x) is an int32 shift on the chip (its count taken
 * mod 32), `exactPower` uses the power itself (the generalized kernel).
 */
export function chipEpsTerm(qx: number, t: number, exactPower = false): number {
  const f = Math.fround;
  const p = exactPower ? 2 ** (2 * qx) : 1 << (2 * qx);
  const e = f(f(f(f(p) * EPS) * f(t)) * f(t));
  return Math.floor(f(e + 0.5));
}

export interface ChipOptions {
  /** q_x = log2(s_x) */
  qx: number;
  /** the final shift 10 + q_w − q_o */
  shift: number;
  /** output code range (int8 on the chip) */
  lo: number;
  hi: number;
  /** thinker's int8 kernel (int32 sums and products as the chip does them); false: the generalized kernel */
  chip: boolean;
  /** a limit on |acc| before the final shift (the engine's normalizeData clamp), or null */
  accLimit: number | null;
}

/** D of one row: the chip's, or (generalized, or a wrapped D below 0 where the chip reads outside its table) the exact one. */
function rowD(s1: number, s2: number, t: number, eps: number, chip: boolean): number | bigint {
  if (chip) {
    const D = Math.imul(t, s2) - Math.imul(s1, s1) + eps;
    if (D >= 0) return D;
  }
  const a = t * s2,
    b = s1 * s1;
  if (a < 2 ** 52 && b < 2 ** 52 && eps < 2 ** 51) return a - b + eps;
  return BigInt(t) * BigInt(s2) - BigInt(s1) * BigInt(s1) + BigInt(eps);
}

/**
 * The LayerNormInt eval on rows of T integer codes (row-major, the normalized dims last), int16
 * weight codes qw and int32 bias codes qb (one per position in the row): output codes.
 */
export function layerNormChip(x: ArrayLike<number>, t: number, qw: ArrayLike<number>, qb: ArrayLike<number>, o: ChipOptions): Float32Array {
  const out = new Float32Array(x.length);
  const eps = chipEpsTerm(o.qx, t, !o.chip);
  for (let r = 0; r < x.length; r += t) {
    let s1 = 0,
      s2 = 0;
    for (let i = 0; i < t; i++) {
      const v = x[r + i];
      s1 += v;
      s2 += v * v;
    }
    if (o.chip) {
      s1 = sat32(s1); // the LUNA sums saturate to int32 (T > 2^17 only)
      s2 = sat32(s2);
    }
    const { tab, q } = rsqrtLookup(rowD(s1, s2, t, eps, o.chip));
    for (let i = 0; i < t; i++) {
      const num = o.chip ? sat32(sat32(t * x[r + i]) - s1) : t * x[r + i] - s1;
      const y1 = sat(roundShift(num * tab, q), -32768, 32767);
      let acc = y1 * qw[i] + qb[i];
      if (o.accLimit !== null) acc = sat(acc, -o.accLimit, o.accLimit);
      out[r + i] = sat(roundShift(acc, o.shift), o.lo, o.hi);
    }
  }
  return out;
}
