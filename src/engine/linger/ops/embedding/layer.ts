// linger's EmbeddingInt (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import { withoutInit } from '../../../nn/init';
import { Buffer } from '../../../nn/module';
import { fakeQuant, maxAbs, quantizeCodes, trainScale, updatedRunning } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { clampSym } from '../../normalize';
import { applyOrigin, IntOrigin, NotCalibratedError, quantized, readBuf, takeParams, writeBuf } from '../base';
import { Embedding } from '../../../nn/sequence';

/**
 * linger's EmbeddingInt: rows of the weight quantized at s_w = 2^⌊log2(B/max|W|)⌋ (the current
 * weight, training and eval), returned as codes at s_w (an IQTensor; not requantized). The weight
 * gradient is Embedding's scatter-add, straight through the quantizer.
 */
export class EmbeddingInt extends quantized(Embedding) {
  /** linger's EmbeddingInt prints no ahead_relu/ahead_sigmoid */
  bitsRepr(): string {
    return `${this.clampRepr()},data_bits:${this.dataBits},parameter_bits:${this.parameterBits},o_bits:${this.outBits}`;
  }
  declare running_x: Buffer;
  declare running_w: Buffer;
  declare running_o: Buffer;
  declare scale_x: Buffer;
  declare scale_w: Buffer;
  declare scale_o: Buffer;

  static from(e: Embedding, o: IntOrigin): EmbeddingInt {
    const m = withoutInit(() => new EmbeddingInt(e.numEmbeddings, e.embeddingDim, { paddingIdx: e.paddingIdx ?? undefined }));
    takeParams(m, e);
    applyOrigin(m, o);
    m.addQuantBuffers();
    return m;
  }

  /** s_w and the integer codes of the weight, as the layer uses them. */
  weightCodes(): { sw: number; codes: tf.Tensor } {
    const w = clampSym(this.weight.raw, this.normalizeWeight);
    const sw = trainScale(maxAbs(w), this.parameterBits);
    return { sw, codes: quantizeCodes(w, sw, this.parameterBits) };
  }

  forward(idx: Tensor): Tensor {
    const w = clampSym(this.weight.raw, this.normalizeWeight);
    const sw = trainScale(maxAbs(w), this.parameterBits);
    writeBuf(this, 'scale_w', sw);
    writeBuf(this, 'scale_o', sw);
    if (this.training) {
      const r = updatedRunning(readBuf(this, 'running_w'), sw, this.parameterBits);
      writeBuf(this, 'running_w', r);
      writeBuf(this, 'running_o', r); // linger copies it
    } else if (!(readBuf(this, 'running_o') > 0)) {
      throw new NotCalibratedError(this, 'running_o');
    }
    const wq = this.training ? fakeQuant(w, sw, this.parameterBits, false) : tf.div(quantizeCodes(w, sw, this.parameterBits), sw);
    return new Tensor(this.lookup(wq, idx), null, sw);
  }
}
