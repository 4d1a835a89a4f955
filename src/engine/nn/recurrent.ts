// nn.LSTM and nn.GRU with PyTorch's semantics: gate order, parameter names and shapes, default
// initialisation, state-dict keys, multi-layer and bidirectional stacking, dropout between layers,
// [output, h_n(, c_n)] results with h_n [layers·directions, batch, hidden] even when batch_first.
import { tf } from '../backend/tf';
import * as K from '../backend/kernels';
import { Tensor } from '../tensor';
import { initUniform } from './init';
import { IO } from './layout';
import { dropoutRaw } from './misc';
import { Module, Parameter, parameterFrom, ShapeError } from './module';
import { pyBool, pyFloat } from './repr';

export interface RNNOptions {
  numLayers?: number;
  bias?: boolean;
  batchFirst?: boolean;
  /** dropout on the outputs of every layer but the last, in training */
  dropout?: number;
  bidirectional?: boolean;
}

type Cell = 'LSTM' | 'GRU';
const GATES: Record<Cell, number> = { LSTM: 4, GRU: 3 };

/** What one direction of one layer computes from the input projection: its outputs and final state. */
interface DirectionWeights {
  wih: tf.Tensor2D;
  whh: tf.Tensor2D;
  bih: tf.Tensor1D | null;
  bhh: tf.Tensor1D | null;
}

abstract class RNNBase extends Module {
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;

  constructor(
    cell: Cell,
    readonly inputSize: number,
    readonly hiddenSize: number,
    opts: RNNOptions = {},
  ) {
    super();
    this.numLayers = opts.numLayers ?? 1;
    this.bias = opts.bias ?? true;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropout = opts.dropout ?? 0;
    this.bidirectional = opts.bidirectional ?? false;
    const name = this.typeName();
    if (!Number.isInteger(inputSize) || inputSize < 1 || !Number.isInteger(hiddenSize) || hiddenSize < 1) {
      throw new Error(`${name}: inputSize and hiddenSize must be positive integers, got ${inputSize}, ${hiddenSize}`);
    }
    if (!Number.isInteger(this.numLayers) || this.numLayers < 1)
      throw new Error(`${name}: numLayers must be a positive integer, got ${this.numLayers}`);
    if (!(this.dropout >= 0 && this.dropout <= 1))
      throw new Error(`${name}: dropout should be a number in range [0, 1], got ${this.dropout}`);
    const g = GATES[cell] * hiddenSize;
    const bound = 1 / Math.sqrt(hiddenSize);
    const self = this as unknown as Record<string, Parameter>;
    // PyTorch's order (its _flat_weights_names): per layer, per direction: W_ih, W_hh, b_ih, b_hh
    for (let l = 0; l < this.numLayers; l++) {
      const inF = l === 0 ? inputSize : hiddenSize * this.directions;
      for (const sfx of this.suffixes()) {
        self[`weight_ih_l${l}${sfx}`] = parameterFrom(initUniform(g * inF, bound), [g, inF], IO);
        self[`weight_hh_l${l}${sfx}`] = parameterFrom(initUniform(g * hiddenSize, bound), [g, hiddenSize], IO);
        if (this.bias) {
          self[`bias_ih_l${l}${sfx}`] = parameterFrom(initUniform(g, bound), [g]);
          self[`bias_hh_l${l}${sfx}`] = parameterFrom(initUniform(g, bound), [g]);
        }
      }
    }
  }

  get directions(): number {
    return this.bidirectional ? 2 : 1;
  }
  private suffixes(): string[] {
    return this.bidirectional ? ['', '_reverse'] : [''];
  }

  protected weightsOf(l: number, sfx: string): DirectionWeights {
    const p = (k: string) => (this as unknown as Record<string, Parameter | undefined>)[`${k}_l${l}${sfx}`]?.raw ?? null;
    return {
      wih: p('weight_ih') as tf.Tensor2D,
      whh: p('weight_hh') as tf.Tensor2D,
      bih: p('bias_ih') as tf.Tensor1D | null,
      bhh: p('bias_hh') as tf.Tensor1D | null,
    };
  }

  /** The input as [T, B, F] (and whether it was unbatched), checked. */
  protected sequence(x: Tensor): { xs: tf.Tensor3D; unbatched: boolean } {
    const s = x.shape;
    if ((s.length !== 2 && s.length !== 3) || s[s.length - 1] !== this.inputSize) {
      const want = this.batchFirst ? '[batch, seq, input_size]' : '[seq, batch, input_size]';
      throw new ShapeError(
        this,
        `expected input ${want} or unbatched [seq, input_size] with input_size=${this.inputSize}, got [${s.join(', ')}]`,
      );
    }
    let v = x.logical();
    if (s.length === 2) return { xs: tf.expandDims(v, 1) as tf.Tensor3D, unbatched: true };
    if (this.batchFirst) v = tf.transpose(v, [1, 0, 2]);
    return { xs: v as tf.Tensor3D, unbatched: false };
  }

  /** An initial state [layers·directions, B, H] given by the caller, checked; or zeros. */
  protected initialState(t: Tensor | undefined, batch: number, unbatched: boolean, what: string): tf.Tensor3D {
    const n = this.numLayers * this.directions;
    const want = unbatched ? [n, this.hiddenSize] : [n, batch, this.hiddenSize];
    if (!t) return tf.zeros([n, batch, this.hiddenSize]);
    if (t.shape.join() !== want.join()) {
      throw new ShapeError(this, `expected ${what} of shape [${want.join(', ')}], got [${t.shape.join(', ')}]`);
    }
    return (unbatched ? tf.expandDims(t.logical(), 1) : t.logical()) as tf.Tensor3D;
  }

  /** Runs every layer and direction; `step` advances one time step of one direction. */
  protected run(
    xs: tf.Tensor3D,
    states: tf.Tensor3D[],
    step: (proj: tf.Tensor2D, st: tf.Tensor2D[], w: DirectionWeights) => tf.Tensor2D[],
  ): { out: tf.Tensor3D; finals: tf.Tensor3D[] } {
    const [T, B] = xs.shape;
    const finals: tf.Tensor2D[][] = states.map(() => []);
    let inp: tf.Tensor3D = xs;
    for (let l = 0; l < this.numLayers; l++) {
      const outs: tf.Tensor3D[] = [];
      this.suffixes().forEach((sfx, d) => {
        const w = this.weightsOf(l, sfx);
        const inF = inp.shape[2];
        // the input projection of every time step as one matmul (K.linear: its backward avoids
        // wasm's slow transposed matmuls)
        const proj = K.linear(tf.reshape(inp, [T * B, inF]) as tf.Tensor2D, w.wih, w.bih);
        const steps = tf.unstack(tf.reshape(proj, [T, B, -1])) as tf.Tensor2D[];
        const k = l * this.directions + d;
        let st = states.map((s) => tf.squeeze(tf.slice(s, [k, 0, 0], [1, B, this.hiddenSize]), [0]) as tf.Tensor2D);
        const hs: tf.Tensor2D[] = new Array(T);
        for (let i = 0; i < T; i++) {
          const t = d === 0 ? i : T - 1 - i;
          st = step(steps[t], st, w);
          hs[t] = st[0];
        }
        st.forEach((s, j) => finals[j].push(s));
        outs.push(tf.stack(hs) as tf.Tensor3D);
      });
      inp = outs.length === 1 ? outs[0] : (tf.concat(outs, 2) as tf.Tensor3D);
      if (this.dropout > 0 && this.training && l < this.numLayers - 1)
        inp = dropoutRaw(new Tensor(inp), this.dropout, true).raw as tf.Tensor3D;
    }
    return { out: inp, finals: finals.map((f) => tf.stack(f) as tf.Tensor3D) };
  }

  /** The output back in the caller's layout, and a final state without the batch axis when unbatched. */
  protected shapeOutput(out: tf.Tensor3D, unbatched: boolean): Tensor {
    if (unbatched) return new Tensor(tf.squeeze(out, [1]));
    return new Tensor(this.batchFirst ? tf.transpose(out, [1, 0, 2]) : out);
  }
  protected shapeState(s: tf.Tensor3D, unbatched: boolean): Tensor {
    return new Tensor(unbatched ? tf.squeeze(s, [1]) : s);
  }

  extraRepr(): string {
    let s = `${this.inputSize}, ${this.hiddenSize}`;
    if (this.numLayers !== 1) s += `, num_layers=${this.numLayers}`;
    if (!this.bias) s += `, bias=${pyBool(this.bias)}`;
    if (this.batchFirst) s += `, batch_first=${pyBool(this.batchFirst)}`;
    if (this.dropout !== 0) s += `, dropout=${pyFloat(this.dropout)}`;
    if (this.bidirectional) s += `, bidirectional=${pyBool(this.bidirectional)}`;
    return s;
  }
}

/**
 * torch.nn.LSTM: gates i, f, g, o (rows of weight_ih/weight_hh in that order);
 * c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c'). `lstm(x, [h0, c0]?)` returns [output, [h_n, c_n]].
 */
export class LSTM extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, opts: RNNOptions = {}) {
    super('LSTM', inputSize, hiddenSize, opts);
  }

  forward(x: Tensor, hx?: [Tensor, Tensor]): [Tensor, [Tensor, Tensor]] {
    const { xs, unbatched } = this.sequence(x);
    const B = xs.shape[1];
    const h0 = this.initialState(hx?.[0], B, unbatched, 'h_0');
    const c0 = this.initialState(hx?.[1], B, unbatched, 'c_0');
    const H = this.hiddenSize;
    const { out, finals } = this.run(xs, [h0, c0], (proj, [h, c], w) => {
      const g = tf.add(proj, K.linear(h, w.whh, w.bhh));
      const [i, f, gg, o] = tf.split(g, [H, H, H, H], 1);
      const c2 = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(gg))) as tf.Tensor2D;
      return [tf.mul(tf.sigmoid(o), tf.tanh(c2)) as tf.Tensor2D, c2];
    });
    return [this.shapeOutput(out, unbatched), [this.shapeState(finals[0], unbatched), this.shapeState(finals[1], unbatched)]];
  }
}

/**
 * torch.nn.GRU: gates r, z, n; r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r·(W_hn·h + b_hn)),
 * h' = (1 − z)·n + z·h. `gru(x, h0?)` returns [output, h_n].
 */
export class GRU extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, opts: RNNOptions = {}) {
    super('GRU', inputSize, hiddenSize, opts);
  }

  forward(x: Tensor, hx?: Tensor): [Tensor, Tensor] {
    const { xs, unbatched } = this.sequence(x);
    const h0 = this.initialState(hx, xs.shape[1], unbatched, 'h_0');
    const H = this.hiddenSize;
    const { out, finals } = this.run(xs, [h0], (proj, [h], w) => {
      const gh = K.linear(h, w.whh, w.bhh);
      const [xr, xz, xn] = tf.split(proj, [H, H, H], 1);
      const [hr, hz, hn] = tf.split(gh, [H, H, H], 1);
      const r = tf.sigmoid(tf.add(xr, hr));
      const z = tf.sigmoid(tf.add(xz, hz));
      const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
      return [tf.add(n, tf.mul(z, tf.sub(h, n))) as tf.Tensor2D];
    });
    return [this.shapeOutput(out, unbatched), this.shapeState(finals[0], unbatched)];
  }
}
