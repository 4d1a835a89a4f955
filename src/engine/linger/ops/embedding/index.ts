// linger's EmbeddingInt: nn.Embedding in the fixed stage when init's quantModules names it, with its
// export — thinker: a Gather of the integer weight; qdq: a Gather of the dequantized codes.
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, THINKER, PLATFORM } from '../../../onnx/proto';
import { Embedding } from '../../../nn/sequence';
import { recordedScales } from '../base';
import { defineIntOp } from '../registry';
import { EmbeddingInt } from './layer';

export { EmbeddingInt } from './layer';

const intType = (bits: number) => (bits <= 8 ? DT.INT8 : bits <= 16 ? DT.INT16 : DT.INT32);

function embedding(L: ExportContext, c: CapturedCall, m: EmbeddingInt, sw: number, scope: string): void {
  const g = L.g;
  const idx = L.value(c.inputs[0] as Tensor).name;
  const { sw: check, codes } = m.weightCodes();
  if (check !== sw) throw new Error(`internal: weight scale ${check} differs from the recorded ${sw}`);
  const q = codes.dataSync();
  codes.dispose();
  const dims = [m.numEmbeddings, m.embeddingDim];
  if (L.mode === 'thinker') {
    const y = g.op(
      'Gather',
      [g.initializer(`${c.target}.weight`, dims, intType(m.parameterBits), q), idx],
      `${scope}/Gather`,
      {
        scale_w: { float: sw },
        scale_o: { float: sw },
        parameter_bits: m.parameterBits,
        o_bits: m.outBits,
        ...PLATFORM,
      },
      THINKER,
    );
    return L.out(c, { name: y, int8Scale: sw });
  }
  // the rows the engine returns: codes / s_w (exact in float32)
  const w = g.initializer(
    `${c.target}.weight_dq`,
    dims,
    DT.FLOAT,
    Float32Array.from(q, (v) => v / sw),
  );
  L.out(c, { name: g.op('Gather', [w, idx], `${scope}/Gather`, { axis: 0 }) });
}

const lower = (ctx: ExportContext, c: CapturedCall, m: EmbeddingInt, scope: string) => embedding(ctx, c, m, recordedScales(c).w!, scope);

defineIntOp({
  name: 'EmbeddingInt',
  intClass: EmbeddingInt,
  replaces: [{ float: Embedding, from: (m, o) => EmbeddingInt.from(m as Embedding, o) }],
  optIn: 'Embedding',
  lower: { qdq: lower, thinker: lower },
});
