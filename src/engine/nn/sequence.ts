// The other layers of speech and sequence models, with PyTorch's semantics: nn.LayerNorm and
// nn.Embedding (its weight gradient is a scatter-add, which the wasm backend lacks: computed
// beside its forward on the host).
import { tf } from '../backend/tf';
import { tapeActive } from '../backend/kernels';
import { Tensor } from '../tensor';
import { initNormal } from './init';
import { Module, ModuleError, Parameter, parameterFrom, ShapeError } from './module';
import { pyBool, pyFloat, pyTuple } from './repr';

export interface LayerNormOptions {
  eps?: number;
  elementwiseAffine?: boolean;
}

/** torch.nn.LayerNorm: normalizes over the last len(normalizedShape) dims (biased variance), then ·γ + β. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  weight: Parameter | null;
  bias: Parameter | null;

  constructor(normalizedShape: number | number[], opts: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (!this.normalizedShape.length || !this.normalizedShape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`LayerNorm: normalizedShape must be positive integers, got ${JSON.stringify(normalizedShape)}`);
    }
    this.eps = opts.eps ?? 1e-5;
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    const n = this.normalizedShape.reduce((a, b) => a * b, 1);
    this.weight = this.elementwiseAffine ? parameterFrom(new Float32Array(n).fill(1), this.normalizedShape) : null;
    this.bias = this.elementwiseAffine ? parameterFrom(new Float32Array(n), this.normalizedShape) : null;
  }

  forward(x: Tensor): Tensor {
    const k = this.normalizedShape.length;
    const s = x.shape;
    if (s.length < k || s.slice(-k).join() !== this.normalizedShape.join()) {
      throw new ShapeError(this, `expected input [*, ${this.normalizedShape.join(', ')}] (normalized_shape), got [${s.join(', ')}]`);
    }
    const v = x.logical();
    const axes = Array.from({ length: k }, (_, i) => s.length - k + i);
    const mean = tf.mean(v, axes, true);
    const d = tf.sub(v, mean);
    const variance = tf.mean(tf.mul(d, d), axes, true);
    let y = tf.mul(d, tf.rsqrt(tf.add(variance, this.eps)));
    if (this.weight) y = tf.mul(y, this.weight.raw);
    if (this.bias) y = tf.add(y, this.bias.raw);
    return new Tensor(y);
  }

  extraRepr(): string {
    return `${pyTuple(this.normalizedShape)}, eps=${pyFloat(this.eps)}, elementwise_affine=${pyBool(this.elementwiseAffine)}`;
  }
}

export interface EmbeddingOptions {
  paddingIdx?: number;
}

/**
 * torch.nn.Embedding: rows of weight [num, dim] picked by int32 indices of any shape → [..., dim].
 * Initialised N(0, 1) with the padding row zero; the padding row gets no gradient.
 */
export class Embedding extends Module {
  weight: Parameter;
  readonly paddingIdx: number | null;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: EmbeddingOptions = {},
  ) {
    super();
    if (!Number.isInteger(numEmbeddings) || numEmbeddings < 1 || !Number.isInteger(embeddingDim) || embeddingDim < 1) {
      throw new Error(`Embedding: numEmbeddings and embeddingDim must be positive integers, got ${numEmbeddings}, ${embeddingDim}`);
    }
    let p = opts.paddingIdx ?? null;
    if (p !== null) {
      if (!Number.isInteger(p) || p >= numEmbeddings || p < -numEmbeddings)
        throw new Error('Embedding: paddingIdx must be within numEmbeddings');
      if (p < 0) p += numEmbeddings;
    }
    this.paddingIdx = p;
    const w = initNormal(numEmbeddings * embeddingDim);
    if (p !== null) w.fill(0, p * embeddingDim, (p + 1) * embeddingDim);
    this.weight = parameterFrom(w, [numEmbeddings, embeddingDim]);
  }

  forward(idx: Tensor): Tensor {
    return new Tensor(this.lookup(this.weight.raw, idx));
  }

  /**
   * Rows of `w` ([num, dim], this layer's weight or a function of it) picked by int32 `idx` →
   * [..., dim]. Its gradient to `w` is a scatter-add computed on the host (the padding row gets none).
   */
  protected lookup(w: tf.Tensor, idx: Tensor): tf.Tensor {
    if (idx.dtype !== 'int32') throw new ModuleError(this, `expected int32 indices, got ${idx.dtype} (tensor(values, shape, 'int32'))`);
    const flat = idx.logical().reshape([-1]) as tf.Tensor1D;
    const ids = flat.dataSync() as Int32Array;
    for (const i of ids) {
      if (i < 0 || i >= this.numEmbeddings) throw new ModuleError(this, `index ${i} is out of range for ${this.numEmbeddings} embeddings`);
    }
    const n = this.numEmbeddings,
      dim = this.embeddingDim,
      pad = this.paddingIdx;
    const gather = (v: tf.Tensor) => tf.gather(v, flat);
    let rows: tf.Tensor;
    if (!tapeActive()) rows = gather(w);
    else {
      const f = tf.customGrad(((v: tf.Tensor) => ({
        value: gather(v),
        // dW[i] = Σ of the output gradients of the rows that picked i (none for the padding row)
        gradFunc: (dy: tf.Tensor) => {
          const g = dy.dataSync() as Float32Array;
          const dw = new Float32Array(n * dim);
          for (let r = 0; r < ids.length; r++) {
            const i = ids[r];
            if (i === pad) continue;
            for (let j = 0; j < dim; j++) dw[i * dim + j] += g[r * dim + j];
          }
          return tf.tensor(dw, [n, dim]);
        },
      })) as unknown as Parameters<typeof tf.customGrad>[0]);
      rows = f(w) as tf.Tensor;
    }
    return tf.reshape(rows, [...idx.shape, dim]);
  }

  extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}` + (this.paddingIdx !== null ? `, padding_idx=${this.paddingIdx}` : '');
  }
}
