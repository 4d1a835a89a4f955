// What Inspect says about a checkpoint's fixed-point layers and its tensors' distributions
// (docs/contract.md): each Int layer's bits, its eval scales (2^n) and the range its weight codes
// take; a histogram per tensor. Plain reads of the stored values, no model code run.
import type { ModuleTreeEntry } from '../state/checkpoint';

export interface Histogram {
  lo: number;
  hi: number;
  /** counts of the finite values in equal bins from lo to hi */
  counts: number[];
}

export interface LayerQuantSummary {
  path: string;
  type: string;
  bits: { data: number; parameter: number; out: number };
  /** eval scales, powers of two (x: the layer's own; a quantized input carries its producer's) */
  scales: { x?: number; w?: number; o?: number };
  /** the weight's integer codes at scale w: their range and how many of the code range's bits they use */
  weightCodes?: { min: number; max: number; bitsUsed: number };
}

export const HISTOGRAM_BINS = 24;

/** A histogram of `n` values read by `at`, between their finite min and max. */
export function histogram(n: number, at: (i: number) => number, min: number | null, max: number | null): Histogram | undefined {
  if (n < 2 || min === null || max === null) return undefined;
  const counts = new Array<number>(HISTOGRAM_BINS).fill(0);
  const w = max - min;
  for (let i = 0; i < n; i++) {
    const v = at(i);
    if (!Number.isFinite(v)) continue;
    counts[w > 0 ? Math.min(HISTOGRAM_BINS - 1, Math.floor(((v - min) / w) * HISTOGRAM_BINS)) : 0]++;
  }
  return { lo: min, hi: max, counts };
}

/** The Int layers of a module tree with their scales and weight codes, from the stored tensors. */
export function layerQuantSummaries(
  tree: ModuleTreeEntry[] | undefined,
  values: (key: string) => ArrayLike<number> | undefined,
): LayerQuantSummary[] {
  const out: LayerQuantSummary[] = [];
  for (const e of tree ?? []) {
    if (!e.bits) continue;
    const key = (k: string) => (e.path ? `${e.path}.${k}` : k);
    const B = (bits: number) => 2 ** (bits - 1) - 1;
    const fromRunning = (k: string, bits: number) => {
      const r = values(key(k))?.[0];
      return r !== undefined && r > 0 ? 2 ** Math.round(Math.log2(B(bits) / r)) : undefined;
    };
    const w = values(key('weight'));
    let wmax = 0;
    for (let i = 0; i < (w?.length ?? 0); i++) wmax = Math.max(wmax, Math.abs(w![i]));
    const scales = {
      ...(e.scales ?? {}),
      ...(e.scales?.x === undefined && fromRunning('running_x', e.bits.data) !== undefined
        ? { x: fromRunning('running_x', e.bits.data) }
        : {}),
      ...(e.scales?.o === undefined && fromRunning('running_o', e.bits.out) !== undefined
        ? { o: fromRunning('running_o', e.bits.out) }
        : {}),
      ...(e.scales?.w === undefined && wmax > 0 ? { w: 2 ** Math.floor(Math.log2(B(e.bits.parameter) / wmax)) } : {}),
    };
    const s: LayerQuantSummary = { path: e.path, type: e.type, bits: e.bits, scales };
    if (w && w.length && scales.w !== undefined) {
      let lo = Infinity,
        hi = -Infinity;
      const b = B(e.bits.parameter);
      for (let i = 0; i < w.length; i++) {
        const q = Math.min(b, Math.max(-b - 1, Math.floor(w[i] * scales.w + 0.5)));
        lo = Math.min(lo, q);
        hi = Math.max(hi, q);
      }
      const mag = Math.max(Math.abs(lo), Math.abs(hi));
      s.weightCodes = { min: lo, max: hi, bitsUsed: mag > 0 ? Math.ceil(Math.log2(mag + 1)) + 1 : 1 };
    }
    out.push(s);
  }
  return out;
}
