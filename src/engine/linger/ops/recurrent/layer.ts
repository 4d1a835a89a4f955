// LSTMInt and GRUInt: linger's fixed-point recurrent layers (docs/linger-ops.md, docs/fixed-point.md).
// Every time step computes the integer cell a chip computes: int8 input and hidden state times
// int8 weights into int32 accumulators, both sides brought to Q11, the gates through the integer
// sigmoid/tanh (Q11 → Q7, quant/intActivation.ts), the cell and hidden state in Q14, and the
// hidden state requantized to o_bits at every step. Training runs the same integer cell with
// per-step scales and takes its gradient from the float cell on the dequantized values (straight
// through); eval uses the running scales and is integer-exact. The cell's element-wise integer
// work runs on the host, one typed-array loop per step (./hostCell.ts).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import { withoutInit } from '../../../nn/init';
import { Buffer, Module } from '../../../nn/module';
import { GRU, LSTM, RNNOptions } from '../../../nn/recurrent';
import { batchMax } from '../../../backend/shard';
import { evalScale, fakeQuant, maxAbs, qmax, quantizeCodes, trainScale } from '../../../quant/qvalue';
import { codesMatMulHost, hostRecurrence, hostToQ11, q11Shift } from './hostCell';
import { Tensor } from '../../../tensor';
import { applyOrigin, IntOrigin, ModuleClass, NotCalibratedError, quantized, takeParams } from '../base';
import { clampSym } from '../../normalize';

/** linger's buffer names (docs/linger-ops.md): input, hidden, their weights, output; io/ho are never written. */
const NAMES = ['i', 'h', 'iw', 'hw', 'io', 'ho', 'o'] as const;
type Name = (typeof NAMES)[number];
/** Layer l's buffers: linger's names for layer 0, `_l<k>` appended for the layers stacked above it. */
const bufferKeys = (layers: number) => {
  const out: string[] = [];
  for (let l = 0; l < layers; l++)
    for (const kind of ['running', 'scale']) for (const n of NAMES) out.push(`${kind}_${n}${l ? `_l${l}` : ''}`);
  return out;
};

/** The weights of one direction of one layer, as the float cell reads them (physical: [in, gates]). */
interface Weights {
  wih: tf.Tensor2D;
  whh: tf.Tensor2D;
  bih: tf.Tensor1D | null;
  bhh: tf.Tensor1D | null;
}

type Kind = 'LSTM' | 'GRU';

/** One direction of one layer as an export writes it (see exportLayer). */
export interface ExportedRecurrentLayer {
  scales: { si: number; sh: number; siw: number; shw: number; so: number };
  wih: { dims: number[]; values: number[] };
  whh: { dims: number[]; values: number[] };
  bih: number[] | null;
  bhh: number[] | null;
}

/** The scales one direction of one layer runs with (per step in training). */
interface StepScales {
  si: number[];
  siw: number;
  shw: number;
  sh0: number;
}

/** What the integer recurrence needs from the float layer it extends (nn.GRU / nn.LSTM). */
type RecurrentBase = ModuleClass &
  (abstract new (...args: any[]) => Module & { numLayers: number; bidirectional: boolean; hiddenSize: number }); // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The integer machinery GRUInt and LSTMInt share, mixed into the float layer (which keeps the
 * shape handling and the parameters): bits, buffers, the fixed stage, and the steps.
 */
function recurrentInt<TBase extends RecurrentBase>(Base: TBase, kind: Kind) {
  abstract class RecurrentInt extends quantized(Base) {
    readonly kind: Kind = kind;

    quantKeys(): readonly string[] {
      return bufferKeys(this.numLayers);
    }
    private buf(name: string): Buffer {
      return (this as unknown as Record<string, Buffer>)[name];
    }
    protected read(kind: 'running' | 'scale', n: Name, l: number): number {
      return this.buf(`${kind}_${n}${l ? `_l${l}` : ''}`).raw.dataSync()[0];
    }
    protected write(kind: 'running' | 'scale', n: Name, l: number, v: number): void {
      const b = this.buf(`${kind}_${n}${l ? `_l${l}` : ''}`).raw;
      b.assign(tf.tensor(v, b.shape, b.dtype as 'float32')); // the buffer's own shape (linger's [1])
    }
    protected ema(n: Name, l: number, v: number, times = 1): void {
      this.emaEach(n, l, new Array<number>(times).fill(v));
    }
    /** the running statistic after one update per value, in order */
    protected emaEach(n: Name, l: number, vs: number[]): void {
      let r = this.read('running', n, l);
      for (const v of vs) r = Math.fround(0.9 * r + 0.1 * v);
      this.write('running', n, l, r);
    }
    protected evalScaleOf(n: Name, l: number, bits: number): number {
      const r = this.read('running', n, l);
      if (!(r > 0)) throw new NotCalibratedError(this, `running_${n}${l ? `_l${l}` : ''}`);
      return evalScale(r, bits);
    }
    bitsRepr(): string {
      return `data_bits=${this.dataBits},parameter_bits=${this.parameterBits},o_bits=${this.outBits}`;
    }

    /**
     * One direction of one layer over xs [T, B, F] (time order already applied by the caller for
     * the reverse direction). `xScale` is the input's scale when it carries one. Returns each step's
     * h (on its o_bits grid), the final h and, for the LSTM, the final c.
     */
    protected direction(
      xs: tf.Tensor3D,
      xScale: number | undefined,
      l: number,
      w: Weights,
      h0: tf.Tensor2D,
      c0: tf.Tensor2D | null,
    ): { hs: tf.Tensor2D[]; h: tf.Tensor2D; c: tf.Tensor2D | null } {
      const [T, B, F] = xs.shape;
      const H = this.hiddenSize;
      const d = this.dataBits,
        p = this.parameterBits,
        o = this.outBits;
      const wih = clampSym(w.wih, this.normalizeWeight) as tf.Tensor2D,
        whh = clampSym(w.whh, this.normalizeWeight) as tf.Tensor2D;
      const bih = w.bih && clampSym(w.bih, this.normalizeBias),
        bhh = w.bhh && clampSym(w.bhh, this.normalizeBias);

      // ---- scales ----
      // a GRU's 8-bit state at 2^8, the scale the chip's GRU kernel reads it at (it halves the codes
      // into its Q7 operand): at any other scale the chip computes another GRU (docs/fixed-point.md#the-chips-gruint-lstmint-iqsigmoid-iqtanh-thinker-v110)
      const pinned = this.kind === 'GRU' && o === 8 && (this as { chipStateScale?: boolean }).chipStateScale !== false ? 256 : null;
      let sc: StepScales;
      let so = 0;
      if (this.training) {
        const stepMax = tf.tidy(() => tf.max(tf.abs(xs), [1, 2]).dataSync() as Float32Array);
        const maxes = Array.from(stepMax, (m) => batchMax(m));
        const si = maxes.map((m) => trainScale(m, d));
        // linger: the raw max of the whole sequence feeds running_i (an IQTensor input gives its scale)
        const whole = Math.max(...maxes);
        if (xScale !== undefined) this.write('running', 'i', l, qmax(d) / xScale);
        else this.ema('i', l, whole);
        const siw = trainScale(maxAbs(wih), p),
          shw = trainScale(maxAbs(whh), p);
        this.ema('iw', l, qmax(p) / siw, T);
        this.ema('hw', l, qmax(p) / shw, T);
        sc = { si, siw, shw, sh0: trainScale(batchMax(maxAbs(h0)), d) };
      } else {
        const si = xScale ?? this.evalScaleOf('i', l, d);
        const sh = this.evalScaleOf('h', l, d);
        so = pinned ?? this.evalScaleOf('o', l, o);
        this.write('scale', 'o', l, so);
        sc = { si: new Array(T).fill(si), siw: this.evalScaleOf('iw', l, p), shw: this.evalScaleOf('hw', l, p), sh0: sh };
      }
      this.write('scale', 'i', l, sc.si[T - 1]);
      this.write('scale', 'iw', l, sc.siw);
      this.write('scale', 'hw', l, sc.shw);

      // ---- the input side of every step at once: codes, accumulators (float32, exact), Q11 on the host ----
      const G = this.kind === 'GRU' ? 3 : 4;
      const GH = G * H;
      const scaleCol = tf.tensor3d(Float32Array.from(sc.si), [T, 1, 1]);
      const xCodes = quantizeCodes(tf.mul(xs, scaleCol), 1, d) as tf.Tensor3D;
      const wihCodes = quantizeCodes(wih, sc.siw, p) as tf.Tensor2D;
      const whhCodes = quantizeCodes(whh, sc.shw, p) as tf.Tensor2D;
      const accI = codesMatMulHost(tf.reshape(xCodes, [T * B, F]) as tf.Tensor2D, wihCodes, d, p);
      const bihV = bih && bih.dataSync(),
        bhhV = bhh && bhh.dataSync();
      const gi = new Float64Array(T * B * GH);
      const qb = bihV ? new Float64Array(GH) : null;
      for (let t = 0; t < T; t++) {
        const k = sc.si[t] * sc.siw;
        if (qb) for (let g = 0; g < GH; g++) qb[g] = Math.floor(Math.fround(bihV![g] * k + 0.5));
        hostToQ11(accI, q11Shift(k), qb, gi, t * B * GH, (t + 1) * B * GH);
      }

      // ---- the integer recurrence (host): each step's h, its scales in training ----
      const bo = qmax(o);
      const stepScales: number[] = []; // training: each step's scale of h
      const next = this.training
        ? (_t: number, local: number) => {
            const m = batchMax(local);
            const s = pinned ?? trainScale(m, o);
            stepScales.push(s);
            // the next step quantizes this h at dyn(h, d): its max is min(⌊m·s + 1/2⌋, B)/s, known here
            const mq = Math.min(Math.floor(m * s + 0.5), bo) / s;
            return { s, sh: trainScale(mq, d) };
          }
        : () => ({ s: so, sh: sc.sh0 });
      const run = hostRecurrence({
        kind: this.kind,
        T,
        B,
        H,
        gi,
        whhCodes,
        bhh: bhhV,
        shw: sc.shw,
        dataBits: d,
        parameterBits: p,
        outBits: o,
        h0: h0.dataSync(),
        c0: c0 && c0.dataSync(),
        clamp: this.normalizeData,
        sh0: sc.sh0,
        next,
      });
      if (this.training) {
        // the hidden state is requantized to o_bits at every step: its own scale in training, running_o in eval
        const vs = stepScales.map((s) => qmax(o) / s);
        this.emaEach('o', l, vs);
        this.emaEach('h', l, vs);
        this.write('scale', 'o', l, stepScales[T - 1]);
      }
      this.write('scale', 'h', l, run.shLast);
      const steps = (v: Float32Array) => tf.unstack(tf.tensor3d(v, [T, B, H])) as tf.Tensor2D[];
      if (!(this.training && K.tapeActive())) {
        const hs = steps(run.h);
        return { hs, h: hs[T - 1], c: run.cCell && tf.tensor2d(run.cCell.subarray((T - 1) * B * H), [B, H]) };
      }

      // ---- training: the float cell on the dequantized operands carries the gradient (straight through) ----
      const xdq = K.straightThrough(xs, () => tf.div(xCodes, scaleCol)) as tf.Tensor3D;
      const proj = K.linear(
        tf.reshape(xdq, [T * B, F]) as tf.Tensor2D,
        fakeQuant(wih, sc.siw, p, false) as tf.Tensor2D,
        bih as tf.Tensor1D | null,
      );
      const carrierProj = tf.unstack(tf.reshape(proj, [T, B, -1])) as tf.Tensor2D[];
      const whhQ = fakeQuant(whh, sc.shw, p, false);
      const hqs = steps(run.hq),
        hcs = steps(run.hCell),
        ccs = run.cCell && steps(run.cCell);
      let h = h0,
        c = c0;
      const hs: tf.Tensor2D[] = new Array(T);
      for (let t = 0; t < T; t++) {
        const hq = K.straightThrough(h, () => tf.clone(hqs[t])) as tf.Tensor2D;
        const fc = this.kind === 'GRU' ? floatGru(carrierProj[t], hq, whhQ, bhh, H) : floatLstm(carrierProj[t], hq, c!, whhQ, bhh, H);
        // the values are the integer cell's (fresh tensors: the host path is not on the gradient's way)
        const hv = clampSym(
          K.straightThrough(fc.h, () => tf.clone(hcs[t])),
          this.normalizeData,
        );
        if (ccs) c = K.straightThrough(fc.c!, () => tf.clone(ccs[t])) as tf.Tensor2D;
        h = fakeQuant(hv, stepScales[t], o) as tf.Tensor2D;
        hs[t] = h;
      }
      return { hs, h, c };
    }

    /** Runs every layer and direction (unified: the reverse direction shares the layer's buffers). */
    protected runAll(
      x: Tensor,
      xs: tf.Tensor3D,
      h0: tf.Tensor3D,
      c0: tf.Tensor3D | null,
      weightsOf: (l: number, sfx: string) => Weights,
    ): { out: tf.Tensor3D; scale: number; hN: tf.Tensor3D; cN: tf.Tensor3D | null } {
      const [, B] = xs.shape;
      const dirs = this.bidirectional ? 2 : 1;
      let inp = xs;
      let inScale = x.quantScale;
      const hN: tf.Tensor2D[] = [],
        cN: tf.Tensor2D[] = [];
      let scale = 0;
      for (let l = 0; l < this.numLayers; l++) {
        const outs: tf.Tensor3D[] = [];
        for (let dIdx = 0; dIdx < dirs; dIdx++) {
          const k = l * dirs + dIdx;
          const pick = (s: tf.Tensor3D) => tf.squeeze(tf.slice(s, [k, 0, 0], [1, B, this.hiddenSize]), [0]) as tf.Tensor2D;
          const seq = dIdx === 0 ? inp : (tf.reverse(inp, 0) as tf.Tensor3D);
          const r = this.direction(seq, inScale, l, weightsOf(l, dIdx ? '_reverse' : ''), pick(h0), c0 && pick(c0));
          const hs = dIdx === 0 ? r.hs : [...r.hs].reverse();
          outs.push(tf.stack(hs) as tf.Tensor3D);
          hN.push(r.h);
          if (r.c) cN.push(r.c);
        }
        let out = outs.length === 1 ? outs[0] : (tf.concat(outs, 2) as tf.Tensor3D);
        // the layer's output as one quantized tensor: its own scale in training, running_o in eval
        if (this.training) {
          scale = trainScale(batchMax(maxAbs(out)), this.outBits);
          out = fakeQuant(out, scale, this.outBits) as tf.Tensor3D;
        } else {
          scale = this.evalScaleOf('o', l, this.outBits);
        }
        inp = out;
        inScale = scale;
      }
      return { out: inp, scale, hN: tf.stack(hN) as tf.Tensor3D, cN: cN.length ? (tf.stack(cN) as tf.Tensor3D) : null };
    }

    /**
     * What an export needs of layer l, direction `sfx`, at the eval scales: the scales, and the
     * integer weights (PyTorch's logical [gates·H, in] order) and biases the eval computes with.
     * `si` is the input's scale (a quantized input's own, or from running_i).
     */
    exportLayer(l: number, sfx: string, si: number | undefined): ExportedRecurrentLayer {
      const d = this.dataBits,
        p = this.parameterBits;
      const scales = {
        si: si ?? this.evalScaleOf('i', l, d),
        sh: this.evalScaleOf('h', l, d),
        siw: this.evalScaleOf('iw', l, p),
        shw: this.evalScaleOf('hw', l, p),
        so: this.evalScaleOf('o', l, this.outBits),
      };
      const param = (k: string) => (this as unknown as Record<string, Tensor | undefined>)[`${k}_l${l}${sfx}`];
      const codes = (k: string, s: number) => {
        const t = param(k)!;
        return {
          dims: t.shape,
          values: Array.from(tf.tidy(() => quantizeCodes(clampSym(t.logical(), this.normalizeWeight), s, p)).dataSync()),
        };
      };
      const bias = (k: string, s: number) => {
        const t = param(k);
        return t ? Array.from(tf.tidy(() => tf.floor(tf.add(tf.mul(clampSym(t.raw, this.normalizeBias), s), 0.5))).dataSync()) : null;
      };
      return {
        scales,
        wih: codes('weight_ih', scales.siw),
        whh: codes('weight_hh', scales.shw),
        bih: bias('bias_ih', scales.si * scales.siw),
        bhh: bias('bias_hh', scales.sh * scales.shw),
      };
    }
  }
  return RecurrentInt;
}

/** The float cells the gradient comes from (pre-activations from the dequantized operands). */
function floatGru(proj: tf.Tensor2D, h: tf.Tensor2D, whh: tf.Tensor, bhh: tf.Tensor | null, H: number): { h: tf.Tensor; c: null } {
  const gh = K.linear(h, whh as tf.Tensor2D, bhh as tf.Tensor1D | null);
  const [xr, xz, xn] = tf.split(proj, [H, H, H], 1);
  const [hr, hz, hn] = tf.split(gh, [H, H, H], 1);
  const r = tf.sigmoid(tf.add(xr, hr)),
    z = tf.sigmoid(tf.add(xz, hz));
  const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
  return { h: tf.add(n, tf.mul(z, tf.sub(h, n))), c: null };
}
function floatLstm(
  proj: tf.Tensor2D,
  h: tf.Tensor2D,
  c: tf.Tensor,
  whh: tf.Tensor,
  bhh: tf.Tensor | null,
  H: number,
): { h: tf.Tensor; c: tf.Tensor } {
  const g = tf.add(proj, K.linear(h, whh as tf.Tensor2D, bhh as tf.Tensor1D | null));
  const [i, f, gg, o] = tf.split(g, [H, H, H, H], 1);
  const c2 = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(gg)));
  return { h: tf.mul(tf.sigmoid(o), tf.tanh(c2)), c: c2 };
}

function optionsOf(r: { numLayers: number; bias: boolean; batchFirst: boolean; dropout: number; bidirectional: boolean }): RNNOptions {
  return { numLayers: r.numLayers, bias: r.bias, batchFirst: r.batchFirst, dropout: r.dropout, bidirectional: r.bidirectional };
}

/**
 * linger's GRUInt: r, z, n from Q11 gates through the integer sigmoid/tanh, h' = (1 − z)·n + z·h
 * in Q14, h requantized to o_bits every step. Same call and results as nn.GRU; the output
 * carries its scale to the next Int layer.
 */
export class GRUInt extends recurrentInt(GRU, 'GRU') {
  /**
   * Keep the 8-bit state at 2^8 (the default), the scale thinker v1.1.0's GRU kernel reads it at;
   * false: linger's scale from the data (running_o), which the chip computes as another GRU, so
   * the thinker export refuses it unless that scale is 2^8 (docs/fixed-point.md#the-chips-gruint-lstmint-iqsigmoid-iqtanh-thinker-v110).
   */
  chipStateScale = false;
  static from(g: GRU, o: IntOrigin): GRUInt {
    const m = withoutInit(() => new GRUInt(g.inputSize, g.hiddenSize, optionsOf(g)));
    takeParams(m, g);
    applyOrigin(m, o);
    m.addQuantBuffers();
    return m;
  }
  forward(x: Tensor, hx?: Tensor): [Tensor, Tensor] {
    const { xs, unbatched } = this.sequence(x);
    const h0 = this.initialState(hx, xs.shape[1], unbatched, 'h_0');
    const r = this.runAll(x, xs, h0, null, (l, sfx) => this.weightsOf(l, sfx));
    const out = this.shapeOutput(r.out, unbatched);
    return [new Tensor(out.raw, out.perm, r.scale), this.shapeState(r.hN, unbatched)];
  }
}

/**
 * linger's LSTMInt: gates i, f, g, o from Q11 through the integer sigmoid/tanh, c' = f·c + i·g in
 * Q14, h' = o·tanh(c'), h requantized to o_bits every step (c stays at Q14).
 */
export class LSTMInt extends recurrentInt(LSTM, 'LSTM') {
  static from(g: LSTM, o: IntOrigin): LSTMInt {
    const m = withoutInit(() => new LSTMInt(g.inputSize, g.hiddenSize, optionsOf(g)));
    takeParams(m, g);
    applyOrigin(m, o);
    m.addQuantBuffers();
    return m;
  }
  forward(x: Tensor, hx?: [Tensor, Tensor]): [Tensor, [Tensor, Tensor]] {
    const { xs, unbatched } = this.sequence(x);
    const B = xs.shape[1];
    const h0 = this.initialState(hx?.[0], B, unbatched, 'h_0');
    const c0 = this.initialState(hx?.[1], B, unbatched, 'c_0');
    const r = this.runAll(x, xs, h0, c0, (l, sfx) => this.weightsOf(l, sfx));
    const out = this.shapeOutput(r.out, unbatched);
    return [new Tensor(out.raw, out.perm, r.scale), [this.shapeState(r.hN, unbatched), this.shapeState(r.cN!, unbatched)]];
  }
}
