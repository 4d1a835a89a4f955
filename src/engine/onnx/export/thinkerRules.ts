// What thinker v1.1.0 (tpacker + executor) runs differently from the graph it is given, measured
// on the real programs (docs/onnx.md, "thinker conformance"): the thinker export writes a form it
// runs correctly where one exists, otherwise it fails naming the layer and the reason — never a
// file that packs and computes something else.
import { DT } from '../proto';
import type { ExportContext } from './context';

/**
 * An export error of the thinker dialect: a pattern thinker v1.1.0 rejects or miscomputes. The
 * exporter prefixes the call being lowered (its layer); `where` names another layer when that one
 * is the cause (a GRUInt's h_n read by the next layer).
 */
export class ThinkerUnsupportedError extends Error {
  constructor(reason: string, where?: string) {
    super(`${where ? `${where}: ` : ''}thinker v1.1.0 cannot run this as exported: ${reason} (docs/onnx.md, thinker conformance)`);
    this.name = 'ThinkerUnsupportedError';
  }
}

/**
 * tpacker's Transpose2Reshape pass replaces a Transpose by a Reshape whenever the input's and the
 * output's dims other than 1 are equal in order — right when only size-1 axes move, wrong when two
 * equal dims swap (a square transpose, e.g. [1, 28, 28] by (0, 2, 1)): the data is not moved.
 */
export function squareTransposeHazard(shape: number[], perm: number[]): boolean {
  const kept = shape.filter((d) => d !== 1);
  const moved = perm.map((p) => shape[p]).filter((d) => d !== 1);
  if (kept.join() !== moved.join()) return false;
  const order = perm.filter((p) => shape[p] !== 1);
  return order.some((p, i) => i > 0 && p < order[i - 1]);
}

/**
 * A Transpose of `x` (shape `shape`) by `perm`. In the thinker dialect a transpose tpacker would
 * turn into a Reshape is written as Reshape (one moved dim split in two factors) → Transpose →
 * Reshape, which tpacker keeps and the executor computes; without such a split, an error.
 */
export function transposeNode(ctx: ExportContext, x: string, shape: number[], perm: number[], scope: string): string {
  const g = ctx.g;
  if (ctx.mode !== 'thinker' || !squareTransposeHazard(shape, perm)) return g.op('Transpose', [x], `${scope}/Transpose`, { perm });
  const outShape = perm.map((p) => shape[p]);
  for (const a of perm.filter((p) => shape[p] !== 1)) {
    const d = shape[a];
    for (let p = 2; p < d; p++) {
      if (d % p !== 0) continue;
      const split = [...shape.slice(0, a), p, d / p, ...shape.slice(a + 1)];
      const newPerm = perm.flatMap((j) => (j < a ? [j] : j > a ? [j + 1] : [a, a + 1]));
      if (squareTransposeHazard(split, newPerm)) continue;
      const shapeInit = (dims: number[]) => g.initializer('shape', [dims.length], DT.INT64, dims);
      const r = g.op('Reshape', [x, shapeInit(split)], `${scope}/TransposeSplit/Reshape`);
      const t = g.op('Transpose', [r], `${scope}/TransposeSplit/Transpose`, { perm: newPerm });
      return g.op('Reshape', [t, shapeInit(outShape)], `${scope}/TransposeSplit/Reshape`);
    }
  }
  throw new ThinkerUnsupportedError(
    `the transpose of [${shape.join(', ')}] by (${perm.join(', ')}) swaps equal dims, which tpacker's ` +
      'Transpose2Reshape pass turns into a Reshape (the data is not moved), and no dim it moves has factors to split it by',
  );
}
