import { rng } from '../random';

let suspended = 0;

/** Uniform(−bound, bound) initial values from the seeded generator (PyTorch's default inits). */
export function initUniform(n: number, bound: number): Float32Array {
  if (suspended) return new Float32Array(n);
  return rng().uniformArray(n, -bound, bound);
}

/**
 * Builds modules without drawing initial values (zeros instead): transforms that replace a layer
 * and then hand it the old layer's parameters must not shift the random stream.
 */
export function withoutInit<T>(fn: () => T): T {
  suspended++;
  try {
    return fn();
  } finally {
    suspended--;
  }
}

/** Standard-normal initial values from the seeded generator (nn.Embedding's default init). */
export function initNormal(n: number): Float32Array {
  if (suspended) return new Float32Array(n);
  return rng().normalArray(n);
}
