// An Int layer's eval scales as a checkpoint's module tree records them (the Model view and the graph editor
// show them as 2^n and a Q-format): plain reads of its buffers, no layer code run.
import { Module } from '../nn/module';

export interface LayerScales {
  /**
   * input, weight and output scales (powers of two); absent where not calibrated yet. x is the
   * layer's own (from running_x): an input that carries a scale (another Int layer's output) uses
   * that one in eval instead.
   */
  x?: number;
  w?: number;
  o?: number;
}

const first = (m: Module, k: string): number | undefined => {
  const b = (m as unknown as Record<string, { raw?: { dataSync(): ArrayLike<number> } } | undefined>)[k];
  const v = b?.raw?.dataSync()[0];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
};

/**
 * The eval scales an Int layer would use: 2^round(log2(B/running)) from running_x / running_o
 * (linger's eval rule, docs/fixed-point.md), 2^⌊log2(B/max|w|)⌋ from the weight, B = 2^(bits−1) − 1.
 * Undefined for a module without linger's buffers.
 */
export function layerScales(m: Module, bits: { data: number; parameter: number; out: number }): LayerScales | undefined {
  if (!('running_x' in m) && !('running_o' in m)) return undefined;
  const B = (n: number) => 2 ** (n - 1) - 1;
  const fromRunning = (k: string, n: number): number | undefined => {
    const r = first(m, k);
    return r !== undefined && r > 0 ? 2 ** Math.round(Math.log2(B(n) / r)) : undefined;
  };
  const out: LayerScales = {};
  const x = fromRunning('running_x', bits.data);
  if (x !== undefined) out.x = x;
  const o = fromRunning('running_o', bits.out);
  if (o !== undefined) out.o = o;
  const w = (m as unknown as { weight?: { raw?: { dataSync(): ArrayLike<number> } } }).weight?.raw?.dataSync();
  if (w && w.length) {
    let max = 0;
    for (let i = 0; i < w.length; i++) max = Math.max(max, Math.abs(w[i]));
    if (max > 0) out.w = 2 ** Math.floor(Math.log2(B(bits.parameter) / max));
  }
  return out;
}
