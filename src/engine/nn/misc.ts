import { tf } from '../backend/tf';
import { rng } from '../random';
import { currentShard } from '../backend/shard';
import { record, Tensor } from '../tensor';
import { Module } from './module';
import { pyBool, pyFloat } from './repr';

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
  extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

/** Inverted dropout (scaled by 1/(1−p) in training), masks from the engine's seeded generator. */
export function dropoutRaw(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  if (p === 1) return x.mul(0);
  return record('dropout', [x], () => {
    // in a data-parallel step every rank draws the whole batch's mask (the generator's state is
    // the coordinator's) and keeps its rows: the masks of the single-process run
    const sh = currentShard();
    const perRow = x.size / x.raw.shape[0];
    const u = sh
      ? rng()
          .uniformArray(perRow * sh.total, 0, 1)
          .subarray(perRow * sh.start, perRow * sh.end)
      : rng().uniformArray(x.size, 0, 1);
    const mask = tf.tensor(u, x.raw.shape);
    const keep = tf.div(tf.cast(tf.greaterEqual(mask, p), 'float32'), 1 - p);
    return new Tensor(tf.mul(x.raw, keep), x.perm);
  });
}

export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    readonly inplace = false,
  ) {
    super();
    if (p < 0 || p > 1) throw new Error(`dropout probability has to be between 0 and 1, but got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return dropoutRaw(x, this.p, this.training);
  }
  extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=${pyBool(this.inplace)}`;
  }
}

export class Softmax extends Module {
  constructor(readonly dim: number | null = null) {
    super();
  }
  forward(x: Tensor): Tensor {
    return softmaxRaw(x, this.dim ?? (x.rank <= 1 || x.rank === 3 ? 0 : 1), false);
  }
  extraRepr(): string {
    return `dim=${this.dim ?? 'None'}`;
  }
}

/** softmax / log_softmax along a logical dim, as broadcast ops (tf.softmax takes only the last axis). */
export function softmaxRaw(x: Tensor, dim: number, log: boolean): Tensor {
  const d = dim < 0 ? dim + x.rank : dim;
  const axis = x.perm ? x.perm[d] : d;
  return record(
    log ? 'log_softmax' : 'softmax',
    [x],
    () => {
      const m = tf.max(x.raw, axis, true);
      const z = tf.sub(x.raw, m);
      const lse = tf.log(tf.sum(tf.exp(z), axis, true));
      const y = log ? tf.sub(z, lse) : tf.exp(tf.sub(z, lse));
      return new Tensor(y, x.perm);
    },
    { dim },
  );
}
