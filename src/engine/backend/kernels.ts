// The few kernels whose TF.js gradients are missing on wasm or slow there, each forward beside
// its backward (docs/benchmarks.md#the-float-step-per-kernel-item-3 has the measurements these choices come from).
import { tf } from './tf';
import { currentShard } from './shard';

type Pads = [[number, number], [number, number]];
// tf.customGrad's typing takes (...inputs, save) as one union-typed rest parameter.
const customGrad = (
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  f: (...args: any[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] },
) => tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as (...xs: tf.Tensor[]) => tf.Tensor;

/** Identity forward, zero gradient (TF.js has no stop_gradient). */
export function stopGradient(x: tf.Tensor): tf.Tensor {
  if (!tapeActive()) return x;
  return customGrad((xv: tf.Tensor) => ({ value: tf.clone(xv), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) }))(x);
}

/** Is gradient recording on (inside tf.grads / variableGrads)? */
export function tapeActive(): boolean {
  // off inside a kernel too (e.g. the forward of a custom gradient), where nothing is recorded
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}

/**
 * A value whose gradient is another's: forward `value()` (computed off the tape), backward the
 * identity to `carrier`. Used for linger's "fused in forward, unfused in backward".
 */
export function straightThrough(carrier: tf.Tensor, value: () => tf.Tensor): tf.Tensor {
  if (!tapeActive()) return value();
  return customGrad(() => ({ value: value(), gradFunc: (dy: tf.Tensor) => dy }))(carrier);
}

/** `value()` forward; backward the incoming gradient times `maskOf(carrier)` (a constant), to `carrier`. */
export function maskedStraightThrough(carrier: tf.Tensor, maskOf: (c: tf.Tensor) => tf.Tensor, value: () => tf.Tensor): tf.Tensor {
  if (!tapeActive()) return value();
  return customGrad((c: tf.Tensor, save: (ts: tf.Tensor[]) => void) => {
    save([maskOf(c)]);
    return { value: value(), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]) };
  })(carrier);
}

/** Does `t` depend on a trainable variable in the gradient tape being recorded? */
export function needsGrad(t: tf.Tensor): boolean {
  if (!tapeActive()) return false;
  if (t instanceof tf.Variable) return t.trainable;
  const tape = (tf.engine().state as unknown as { activeTape: { outputs: tf.Tensor[] }[] | null }).activeTape;
  if (!tape) return false;
  for (let i = tape.length - 1; i >= 0; i--) {
    for (const o of tape[i].outputs) if (o.id === t.id) return true;
  }
  return false;
}

/** Pads (or, for negative amounts, crops) the spatial axes of an NHWC tensor. */
export function padSpatial(x: tf.Tensor4D, pads: Pads): tf.Tensor4D {
  const [[t, b], [l, r]] = pads;
  if (t === 0 && b === 0 && l === 0 && r === 0) return x;
  let y = x;
  if (t < 0 || b < 0 || l < 0 || r < 0) {
    const [n, h, w, c] = y.shape;
    const ct = Math.max(0, -t),
      cb = Math.max(0, -b),
      cl = Math.max(0, -l),
      cr = Math.max(0, -r);
    y = tf.slice(y, [0, ct, cl, 0], [n, h - ct - cb, w - cl - cr, c]);
  }
  if (t > 0 || b > 0 || l > 0 || r > 0) {
    y = tf.pad(y, [
      [0, 0],
      [Math.max(0, t), Math.max(0, b)],
      [Math.max(0, l), Math.max(0, r)],
      [0, 0],
    ]);
  }
  return y;
}

/** Inserts (s−1) zeros between the spatial elements of an NHWC tensor (no trailing zeros). */
export function zeroInsert(x: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return x;
  const [n, h, w, c] = x.shape;
  const x6 = tf.reshape(x, [n, h, 1, w, 1, c]);
  const padded = tf.pad(x6, [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  const full = tf.reshape(padded, [n, h * sh, w * sw, c]);
  return tf.slice(full, [0, 0, 0, 0], [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c]) as tf.Tensor4D;
}

export interface ConvGeometry {
  stride: [number, number];
  dilation: [number, number];
  /** explicit padding [[top, bottom], [left, right]] */
  pads: Pads;
}

/**
 * conv2d with explicit padding: non-negative pads go to the conv itself (XNNPACK pads on the
 * fly; a separate Pad op costs a copy), negative ones crop first.
 */
function convPadded(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  pads: Pads,
  stride: [number, number] | number,
  dilation: [number, number] | number,
): tf.Tensor4D {
  const [[t, b], [l, r]] = pads;
  if (t < 0 || b < 0 || l < 0 || r < 0) {
    const cropped = padSpatial(x, [
      [Math.min(t, 0), Math.min(b, 0)],
      [Math.min(l, 0), Math.min(r, 0)],
    ]);
    return convPadded(
      cropped,
      w,
      [
        [Math.max(t, 0), Math.max(b, 0)],
        [Math.max(l, 0), Math.max(r, 0)],
      ],
      stride,
      dilation,
    );
  }
  const pad =
    t === 0 && b === 0 && l === 0 && r === 0
      ? 'valid'
      : ([
          [0, 0],
          [t, b],
          [l, r],
          [0, 0],
        ] as tf.backend_util.ExplicitPadding);
  return tf.conv2d(x, w, stride, pad, 'NHWC', dilation);
}

function convForward(x: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  return convPadded(x, w, g.pads, g.stride, g.dilation);
}

/** Spreads an HWIO kernel's taps d apart (zeros between): a dilated conv as an undilated one. */
export function dilateKernel(w: tf.Tensor4D, dh: number, dw: number): tf.Tensor4D {
  const [kh, kw, ci, co] = w.shape;
  const w5 = tf.reshape(w, [kh, 1, kw, 1, ci * co]);
  const padded = tf.pad(w5, [
    [0, 0],
    [0, dh - 1],
    [0, 0],
    [0, dw - 1],
    [0, 0],
  ]);
  const full = tf.reshape(padded, [kh * dh, kw * dw, ci, co]);
  return tf.slice(full, [0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, ci, co]) as tf.Tensor4D;
}

/**
 * dL/dx of a conv as a forward conv of the (zero-inserted) output gradient with the spatially
 * flipped, in/out-swapped kernel: XNNPACK runs it ~10× faster than conv2dTranspose on wasm.
 */
function convInputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: number[], g: ConvGeometry): tf.Tensor4D {
  const [kh, kw] = w.shape;
  const [sh, sw] = g.stride;
  const [dh, dw] = g.dilation;
  const [, h, wid] = xShape;
  const [[pt], [pl]] = g.pads;
  const [, ho, wo] = dy.shape;
  const wf = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  const dz = zeroInsert(dy, sh, sw);
  const padT = dh * (kh - 1) - pt;
  const padL = dw * (kw - 1) - pl;
  const padB = h + dh * (kh - 1) - ((ho - 1) * sh + 1) - padT;
  const padR = wid + dw * (kw - 1) - ((wo - 1) * sw + 1) - padL;
  return convPadded(
    dz,
    wf,
    [
      [padT, padB],
      [padL, padR],
    ],
    1,
    g.dilation,
  );
}

/**
 * dL/dW (HWIO) as a conv over the transposed input: batch and channels swap roles, the output
 * gradient is the kernel, and stride/dilation trade places (wasm has no Conv2DBackpropFilter).
 */
function convWeightGrad(x: tf.Tensor4D, dy: tf.Tensor4D, wShape: number[], g: ConvGeometry): tf.Tensor4D {
  const [kh, kw, ci, co] = wShape;
  const [sh, sw] = g.stride;
  const [dh, dw] = g.dilation;
  const xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [ci, H, W, n], padded by the conv below
  const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [ho, wo, n, co]
  const r = convPadded(xt, dyt, g.pads, [dh, dw], [sh, sw]); // [ci, >=kh, >=kw, co]
  const rs = r.shape[1] === kh && r.shape[2] === kw ? r : tf.slice(r, [0, 0, 0, 0], [ci, kh, kw, co]);
  return tf.transpose(rs, [1, 2, 0, 3]) as tf.Tensor4D;
}

/**
 * conv2d on NHWC input with an HWIO filter and explicit padding, with gradients that work on
 * every backend. When `x` needs no gradient (the network's input), dL/dx is not computed.
 */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  if ((g.stride[0] > 1 || g.stride[1] > 1) && (g.dilation[0] > 1 || g.dilation[1] > 1)) {
    // TF.js convs take stride or dilation > 1, not both; the kernel's gradient flows back
    // through the dilation by autodiff
    return conv2d(x, dilateKernel(w, g.dilation[0], g.dilation[1]), { ...g, dilation: [1, 1] });
  }
  if (!tapeActive()) return convForward(x, w, g);
  if (!needsGrad(x)) {
    const f = customGrad((wv: tf.Tensor, save: tf.GradSaveFunc) => {
      // x is saved, not captured: it may be an intermediate that its module call releases
      save([x]);
      return {
        value: convForward(x, wv as tf.Tensor4D, g),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [convWeightGrad(saved[0] as tf.Tensor4D, dy as tf.Tensor4D, wv.shape, g)],
      };
    });
    return f(w) as tf.Tensor4D;
  }
  const f = customGrad((xv: tf.Tensor, wv: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xv, wv]);
    return {
      value: convForward(xv as tf.Tensor4D, wv as tf.Tensor4D, g),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        convInputGrad(dy as tf.Tensor4D, saved[1] as tf.Tensor4D, saved[0].shape, g),
        convWeightGrad(saved[0] as tf.Tensor4D, dy as tf.Tensor4D, saved[1].shape, g),
      ],
    };
  });
  return f(x, w) as tf.Tensor4D;
}

/**
 * x·W (+ b) with W stored [in, out]; the gradients use explicit transposes, which run several
 * times faster on wasm than matMul's transpose flags.
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const fwd = (xv: tf.Tensor2D, wv: tf.Tensor2D) => {
    const y = tf.matMul(xv, wv);
    return (b ? tf.add(y, b) : y) as tf.Tensor2D;
  };
  if (!tapeActive()) return fwd(x, w);
  const withDx = needsGrad(x);
  if (b) {
    const f = customGrad((xv: tf.Tensor, wv: tf.Tensor, bv: tf.Tensor, save: tf.GradSaveFunc) => {
      save([xv, wv]);
      return {
        value: tf.add(tf.matMul(xv as tf.Tensor2D, wv as tf.Tensor2D), bv),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
          withDx ? tf.matMul(dy as tf.Tensor2D, tf.transpose(saved[1])) : tf.zerosLike(saved[0]),
          tf.matMul(tf.transpose(saved[0]), dy as tf.Tensor2D),
          tf.sum(dy, 0),
        ],
      };
    });
    return f(x, w, b) as tf.Tensor2D;
  }
  const f = customGrad((xv: tf.Tensor, wv: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xv, wv]);
    return {
      value: tf.matMul(xv as tf.Tensor2D, wv as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        withDx ? tf.matMul(dy as tf.Tensor2D, tf.transpose(saved[1])) : tf.zerosLike(saved[0]),
        tf.matMul(tf.transpose(saved[0]), dy as tf.Tensor2D),
      ],
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/**
 * Valid max pooling on NHWC (callers pad with −∞ for PyTorch's padding and ceil_mode) whose
 * gradient goes to the FIRST maximum of each window in row-major order, as PyTorch's does. The
 * backward is a plain loop over the windows: wasm's MaxPoolGrad kernel misroutes windows whose
 * max is ≤ 0, and building the routing from TF.js ops needs slices, which are slow on wasm.
 */
export function maxPool2d(x: tf.Tensor4D, k: [number, number], s: [number, number]): tf.Tensor4D {
  const fwd = (xv: tf.Tensor4D) => tf.maxPool(xv, k, s, 'valid');
  if (!tapeActive()) return fwd(x);
  const f = customGrad((xv: tf.Tensor, save: tf.GradSaveFunc) => {
    const y = fwd(xv as tf.Tensor4D);
    save([xv]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tensor(
          maxPoolBackward(saved[0].dataSync() as Float32Array, saved[0].shape, dy.dataSync() as Float32Array, dy.shape, k, s),
          saved[0].shape,
          'float32',
        ),
    };
  });
  return f(x) as tf.Tensor4D;
}

/** dL/dx of a valid NHWC max pool: each window's output gradient goes to its first maximum. */
export function maxPoolBackward(
  x: Float32Array,
  xShape: number[],
  dy: Float32Array,
  dyShape: number[],
  [kh, kw]: [number, number],
  [sh, sw]: [number, number],
): Float32Array {
  const [n, h, w, c] = xShape;
  const [, ho, wo] = dyShape;
  const dx = new Float32Array(x.length);
  const best = new Float32Array(c);
  const at = new Int32Array(c);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        best.fill(-Infinity);
        at.fill(-1);
        for (let i = 0; i < kh; i++) {
          const row = (b * h + oh * sh + i) * w;
          for (let j = 0; j < kw; j++) {
            const off = (row + ow * sw + j) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[off + ch];
              // strict '>' keeps the first maximum; a NaN wins over numbers (PyTorch propagates NaN)
              if (v > best[ch] || at[ch] < 0 || (v !== v && best[ch] === best[ch])) {
                best[ch] = v;
                at[ch] = off + ch;
              }
            }
          }
        }
        for (let ch = 0; ch < c; ch++, o++) if (at[ch] >= 0) dx[at[ch]] += dy[o];
      }
    }
  }
  return dx;
}

/**
 * Column sums of x viewed as [M, C] (C the last axis), as xᵀ·1: wasm reduces leading axes slowly,
 * and with x as the left operand XNNPACK does not repack it (1·x packs the large matrix each call).
 */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  const c = x.shape[x.rank - 1];
  const m = x.size / c;
  return tf.reshape(tf.matMul(tf.reshape(x, [m, c]), tf.ones([m, 1]), true, false), [c]) as tf.Tensor1D;
}

/**
 * Training-mode batch norm over the channel (last) axis with batch statistics:
 * y = (x − μ)·γ/√(σ²+ε) + β, with the closed-form backward
 * dx = γ/√(σ²+ε)·(dy − mean(dy) − x̂·mean(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy.
 * Returns y and the batch mean and biased variance (for the running statistics; the caller
 * disposes them).
 */
export function batchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor1D | null,
  beta: tf.Tensor1D | null,
  eps: number,
): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const c = x.shape[x.rank - 1];
  // in a data-parallel step the statistics are the whole batch's (SyncBatchNorm): the per-channel
  // sums of every rank are added, in forward and in backward
  const group = currentShard()?.group;
  let m = x.size / c;
  const globalSum = (t: tf.Tensor, extra: number[] = []): Float64Array => group!.allReduce([...t.dataSync(), ...extra]);
  const moments = (xv: tf.Tensor) => {
    if (group) {
      const s = globalSum(channelSum(xv), [m]);
      m = s[c];
      const mean = tf.tensor1d(Float32Array.from(s.subarray(0, c), (v) => v / m));
      const d = tf.sub(xv, mean);
      const sq = globalSum(channelSum(tf.mul(d, d)));
      return { d, mean, variance: tf.tensor1d(Float32Array.from(sq, (v) => v / m)) };
    }
    const mean = tf.div(channelSum(xv), m) as tf.Tensor1D;
    const d = tf.sub(xv, mean);
    const variance = tf.div(channelSum(tf.mul(d, d)), m) as tf.Tensor1D;
    return { d, mean, variance };
  };
  const g = gamma ?? tf.ones([c]);
  const b = beta ?? tf.zeros([c]);
  if (!tapeActive()) {
    const { d, mean, variance } = moments(x);
    const scale = tf.mul(tf.rsqrt(tf.add(variance, eps)), g);
    return { y: tf.add(tf.mul(d, scale), b), mean, variance };
  }
  let mean!: tf.Tensor1D, variance!: tf.Tensor1D;
  const f = customGrad((xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor, save: tf.GradSaveFunc) => {
    const mo = moments(xv);
    // kept: the forward's intermediates are released when the kernel returns; the caller
    // disposes these after updating the running statistics
    mean = tf.keep(mo.mean);
    variance = tf.keep(mo.variance);
    const invStd = tf.rsqrt(tf.add(mo.variance, eps));
    const xhat = tf.mul(mo.d, invStd);
    save([xhat, invStd, gv]);
    return {
      value: tf.add(tf.mul(xhat, gv), bv),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, gs] = saved;
        const dbeta = channelSum(dy);
        const dgamma = channelSum(tf.mul(dy, xh));
        // the whole batch's sums for dx; each rank's own for dγ, dβ (the gradient reduction adds them)
        let sumDy: tf.Tensor = dbeta,
          sumDyXh: tf.Tensor = dgamma;
        if (group) {
          const both = group.allReduce([...dbeta.dataSync(), ...dgamma.dataSync()]);
          sumDy = tf.tensor1d(Float32Array.from(both.subarray(0, c)));
          sumDyXh = tf.tensor1d(Float32Array.from(both.subarray(c)));
        }
        // dx = γ·inv/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
        const k = tf.mul(gs, inv);
        const inner = tf.sub(tf.sub(dy, tf.div(sumDy, m)), tf.mul(xh, tf.div(sumDyXh, m)));
        return [tf.mul(inner, k), dgamma, dbeta];
      },
    };
  });
  const y = f(x, g, b);
  return { y, mean, variance };
}

/**
 * The per-channel (last axis) mean of x over every other axis and, in a data-parallel step, over
 * every rank's rows: the sums are added across ranks in forward, and the incoming gradients in
 * backward (each rank's mean feeds every rank's loss). Outside such a step, tf.mean.
 */
export function wholeBatchChannelMean(x: tf.Tensor): tf.Tensor1D {
  const group = currentShard()?.group;
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  if (!group) return tf.mean(x, axes) as tf.Tensor1D;
  const c = x.shape[x.rank - 1];
  const local = x.size / c;
  const f = customGrad((xv: tf.Tensor) => {
    const s = group.allReduce([...channelSum(xv).dataSync(), local]);
    const count = s[c];
    return {
      value: tf.tensor1d(Float32Array.from(s.subarray(0, c), (v) => v / count)),
      gradFunc: (dy: tf.Tensor) => {
        const g = group.allReduce(dy.dataSync());
        return tf.mul(tf.onesLike(xv), tf.tensor1d(Float32Array.from(g, (v) => v / count)));
      },
    };
  });
  return f(x) as tf.Tensor1D;
}
