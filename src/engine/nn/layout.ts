// Physical layouts the engine keeps tensors in (logical axis i lives in physical axis perm[i]).
import { Tensor } from '../tensor';
import { Module, ShapeError } from './module';

/** NCHW activations stored NHWC. */
export const NHWC = [0, 3, 1, 2] as const;
/** NCL activations stored NLC. */
export const NLC = [0, 2, 1] as const;
/** Conv2d weights [out, in/g, kH, kW] stored HWIO [kH, kW, in/g, out]. */
export const HWIO = [3, 2, 0, 1] as const;
/** Conv1d weights [out, in/g, k] stored [k, in/g, out]. */
export const KIO = [2, 1, 0] as const;
/** Linear weights [out, in] stored [in, out]. */
export const IO = [1, 0] as const;

/** Channels-last layout for a tensor of the given rank (NC… → N…C). */
export function channelsLast(rank: number): number[] | null {
  if (rank <= 2) return null;
  return [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
}

export type Pair = [number, number];
export function pair(v: number | readonly number[], what: string): Pair {
  if (typeof v === 'number') return [v, v];
  if (v.length === 1) return [v[0], v[0]];
  if (v.length !== 2) throw new Error(`${what} must be an int or a pair, got [${v.join(', ')}]`);
  return [v[0], v[1]];
}
export function single(v: number | readonly number[], what: string): number {
  if (typeof v === 'number') return v;
  if (v.length !== 1) throw new Error(`${what} must be an int or a 1-tuple, got [${v.join(', ')}]`);
  return v[0];
}

/** Throws a ShapeError naming the module when `x` is not `rank`-d with `channels` at dim `cdim`. */
export function expectInput(m: Module, x: Tensor, rank: number | number[], channels?: { dim: number; size: number; what: string }): void {
  const ranks = Array.isArray(rank) ? rank : [rank];
  const s = x.shape;
  if (!ranks.includes(s.length)) {
    throw new ShapeError(m, `expected a ${ranks.join('-d or ')}-d input, got shape [${s.join(', ')}]`);
  }
  if (channels && s[channels.dim] !== channels.size) {
    const want = s.map((v, i) => (i === channels.dim ? String(channels.size) : i === 0 ? 'N' : '*'));
    throw new ShapeError(m, `expected input [${want.join(', ')}] (${channels.what}=${channels.size}), got [${s.join(', ')}]`);
  }
}
