// The values an imported graph computes on while it runs: engine tensors, or constants (shapes,
// initializers, folded values) that become tensors where a tensor op reads them.
import { tf } from '../../backend/tf';
import { Tensor, tensor } from '../../tensor';
import { ConstValue, isConst } from './constEval';

/** A value while the graph runs: a tensor, or a constant (shapes, initializers, folded values). */
export type RtValue = Tensor | ConstValue;

const STATIC_TENSORS = new WeakMap<ConstValue, Tensor>();
/** A constant as an engine tensor (import-time constants are made once and kept). */
export function constTensor(v: ConstValue): Tensor {
  const cached = STATIC_TENSORS.get(v);
  if (cached && !cached.isDisposed) return cached;
  const t = tensor(Float32Array.from(v.data), v.dims.length ? v.dims : [], 'float32');
  return t;
}
/** Makes `v`'s tensor once, outside any tidy, so every forward reuses it. */
export function keepConstTensor(v: ConstValue): void {
  if (STATIC_TENSORS.has(v)) return;
  const t = tensor(Float32Array.from(v.data), v.dims.length ? v.dims : [], 'float32');
  tf.keep(t.raw);
  STATIC_TENSORS.set(v, t);
}

export const asTensor = (v: RtValue | undefined, what: string): Tensor => {
  if (v === undefined) throw new Error(`${what}: an input is missing`);
  return isConst(v) ? constTensor(v) : v;
};
export const asConst = (v: RtValue | undefined, what: string): ConstValue => {
  if (v === undefined || !isConst(v)) throw new Error(`${what} must be a constant (it depends on the input)`);
  return v;
};
