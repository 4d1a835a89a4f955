// Copying an ONNX initializer into an engine layer's parameter, checked against the shape the
// layer expects (the layer ops' `make`s).
import { Parameter } from '../../nn/module';
import { tensor } from '../../tensor';
import { ConstValue, sizeOf } from './constEval';

/** p ← v reshaped to `dims` (nothing when the layer has no such parameter or the node no such input). */
export function assignParam(what: string, p: Parameter | null, v: ConstValue | undefined, dims: number[], label: string): void {
  if (!p || !v) return;
  if (sizeOf(v.dims) !== sizeOf(dims)) throw new Error(`${what}: ${label} has shape [${v.dims.join(', ')}], expected [${dims.join(', ')}]`);
  p.assignLogical(tensor(Float32Array.from(v.data), dims));
}
