import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { initUniform } from './init';
import { Tensor } from '../tensor';
import { Module, Parameter, parameterFrom, ShapeError } from './module';
import { IO } from './layout';
import { pyBool } from './repr';
import { defaultInitBound } from './conv';

/** y = x·Wᵀ + b over the last dimension, W [out, in] (stored [in, out] so the matmul needs no flags). */
export function linearRaw(x: Tensor, wIO: tf.Tensor2D, b: tf.Tensor1D | null): Tensor {
  const s = x.shape;
  const inF = s[s.length - 1];
  const x2 = (s.length === 2 ? x.logical() : tf.reshape(x.logical(), [-1, inF])) as tf.Tensor2D;
  const y = K.linear(x2, wIO, b);
  return new Tensor(s.length === 2 ? y : tf.reshape(y, [...s.slice(0, -1), wIO.shape[1]]));
}

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    const bound = defaultInitBound(inFeatures);
    this.weight = parameterFrom(initUniform(inFeatures * outFeatures, bound), [outFeatures, inFeatures], IO);
    this.bias = opts.bias === false ? null : parameterFrom(initUniform(outFeatures, bound), [outFeatures]);
  }

  checkInput(x: Tensor): void {
    const s = x.shape;
    if (s.length < 1 || s[s.length - 1] !== this.inFeatures) {
      throw new ShapeError(this, `expected input [*, ${this.inFeatures}] (in_features=${this.inFeatures}), got [${s.join(', ')}]`);
    }
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return this.finishOutput(linearRaw(x, this.effectiveWeight() as tf.Tensor2D, this.effectiveBias() as tf.Tensor1D | null));
  }
  /** The weight ([in, out] physical) and bias the forward uses (normalize layers clamp them). */
  effectiveWeight(): tf.Tensor {
    return this.weight.raw;
  }
  effectiveBias(): tf.Tensor | null {
    return this.bias?.raw ?? null;
  }
  finishOutput(y: Tensor): Tensor {
    return y;
  }

  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${pyBool(this.bias !== null)}`;
  }
}
