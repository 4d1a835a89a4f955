// What the layers and kernels ask while a data-parallel step runs: is there a group to agree with,
// and which rows of the whole batch does this rank hold. Outside such a step every answer is
// "alone", so the single-process path is untouched. It lives here, below both the kernels and
// parallel/, so that the kernels need nothing of the thread machinery: parallel/ sets the shard,
// everything else only reads it.

/** What a shard's group does for the layers (parallel/group.ts's ProcessGroup is one). */
export interface ShardGroup {
  /** element-wise sum (or max) over the ranks, in rank order, as float64 */
  allReduce(values: ArrayLike<number>, op?: 'sum' | 'max'): Float64Array;
  /** max over the ranks of one number */
  max(v: number): number;
}

export interface Shard {
  group: ShardGroup;
  /** this rank's rows [start, end) of the batch of `total` rows */
  start: number;
  end: number;
  total: number;
}

let current: Shard | null = null;

/** Runs `fn` as this rank's part of one data-parallel step. */
export function inShard<T>(shard: Shard, fn: () => T): T {
  const prev = current;
  current = shard;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** The running step's shard, or null outside data-parallel training. */
export function currentShard(): Shard | null {
  return current;
}

/** A data statistic's maximum over the whole batch (a quantizer's max|x|): every rank picks the same scale. */
export function batchMax(v: number): number {
  return current ? current.group.max(v) : v;
}

/** Values per channel in the whole batch, from this rank's count (every row holds as many). */
export function wholeBatchCount(localCount: number): number {
  return current ? (localCount / (current.end - current.start)) * current.total : localCount;
}
