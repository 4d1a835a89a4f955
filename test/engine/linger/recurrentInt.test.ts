// GRUInt and LSTMInt (LINGER-OPS §1, §2; docs/fixed-point.md): init replaces nn.GRU/nn.LSTM, QAT
// trains through them, and eval equals an independent plain-JS integer reference bit for bit,
// including the hidden state's requantization at every step.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { F, initBackend, linger, manualSeed, nn, optim, randn, tensor, Tensor } from '../../../src/engine/index';
import { exportOnnx } from '../../../src/engine/onnx/index';
import { applyCheckpointTransforms } from '../../../src/engine/state/replay';
import { readCheckpointInfo } from '../../../src/engine/state/checkpoint';
import { onnx } from '../../../src/engine/onnx/proto';
import { PIECEWISE_ACTIVATIONS } from '../../../src/engine/quant/intActivation';

before(async () => {
  await initBackend();
});

// ---- the reference: plain JS numbers, written from LINGER-OPS §1–2, not from the engine ---------
const f32 = Math.fround;
const R = (v: number) => Math.floor(v + 0.5);
const clampI = (v: number, bits: number) => Math.min(2 ** (bits - 1) - 1, Math.max(-(2 ** (bits - 1)), v));
const code = (v: number, s: number, bits = 8) => clampI(Math.floor(f32(f32(v * s) + 0.5)), bits);
const evs = (r: number, bits: number) => 2 ** Math.round(Math.log2((2 ** (bits - 1) - 1) / r));
/** toQ(acc, s, 11) */
const toQ11 = (acc: number, s: number) => {
  const l = 11 - Math.log2(s);
  return l > 0 ? acc * 2 ** l : R(acc * 2 ** l);
};
const SIG = (x: number) => PIECEWISE_ACTIVATIONS.sigmoid(x);
const TANH = (x: number) => PIECEWISE_ACTIVATIONS.tanh(x);

interface RefDir {
  wih: number[][];
  whh: number[][];
  bih: number[] | null;
  bhh: number[] | null;
}
/** A float GRU (seq-first x [T, B, F]) whose state is clamped to [lo, hi] every step: its outputs, flat. */
function floatGru(
  x: number[],
  [T, B, F]: number[],
  H: number,
  wih: number[],
  whh: number[],
  bih: number[],
  bhh: number[],
  [lo, hi]: [number, number],
): number[] {
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  let h = Array.from({ length: B }, () => new Array(H).fill(0));
  const out: number[] = [];
  for (let t = 0; t < T; t++) {
    h = h.map((hb, b) => {
      const xi = (g: number) =>
        bih[g] + Array.from({ length: F }, (_, f) => wih[g * F + f] * x[(t * B + b) * F + f]).reduce((p, q) => p + q, 0);
      const hh = (g: number) => bhh[g] + hb.reduce((p, v, j) => p + whh[g * H + j] * v, 0);
      return hb.map((hv, j) => {
        const r = sig(xi(j) + hh(j)),
          z = sig(xi(H + j) + hh(H + j));
        const n = Math.tanh(xi(2 * H + j) + r * hh(2 * H + j));
        return Math.min(hi, Math.max(lo, (1 - z) * n + z * hv));
      });
    });
    for (const hb of h) out.push(...hb);
  }
  return out;
}

interface RefScales {
  si: number;
  sh: number;
  siw: number;
  shw: number;
  so: number;
}

/** 2^⌊log2(B / m)⌋, or 2^bits for m = 0: a training scale from the data (linger's QValue) */
const trainScale = (m: number, bits = 8) => {
  if (!(m > 0)) return 2 ** bits;
  let e = Math.floor(Math.log2((2 ** (bits - 1) - 1) / m));
  while (2 ** (e + 1) <= (2 ** (bits - 1) - 1) / m) e++;
  while (2 ** e > (2 ** (bits - 1) - 1) / m) e--;
  return 2 ** e;
};
const maxAbsOf = (v: number[]) => Math.max(0, ...v.map(Math.abs));

/**
 * One direction over xs[t][b][f] (already in the direction's time order): each step's h. With
 * `train`, every scale comes from the data instead of `s`: the input's from each step's own max,
 * the weights' from theirs, and the state's from each step's h (its o_bits grid; the next step
 * reads it at data_bits), or `train.pinned`.
 */
function refDirection(
  kind: 'GRU' | 'LSTM',
  xs: number[][][],
  w: RefDir,
  s: RefScales,
  H: number,
  train?: { pinned: number | null },
): number[][][] {
  const G = kind === 'GRU' ? 3 : 4;
  if (train) {
    s = { ...s, siw: trainScale(maxAbsOf(w.wih.flat())), shw: trainScale(maxAbsOf(w.whh.flat())), sh: trainScale(0) };
  }
  const qwi = w.wih.map((r) => r.map((v) => code(v, s.siw)));
  const qwh = w.whh.map((r) => r.map((v) => code(v, s.shw)));
  const B = xs[0].length;
  let h = Array.from({ length: B }, () => new Array(H).fill(0));
  let c = Array.from({ length: B }, () => new Array(H).fill(0));
  const out: number[][][] = [];
  for (const xt of xs) {
    const si = train ? trainScale(maxAbsOf(xt.flat())) : s.si;
    const nh: number[][] = [],
      nc: number[][] = [];
    for (let b = 0; b < B; b++) {
      const xq = xt[b].map((v) => code(v, si));
      const hq = h[b].map((v) => code(v, s.sh));
      const gi: number[] = [],
        gh: number[] = [];
      for (let g = 0; g < G * H; g++) {
        let ai = w.bih ? Math.floor(f32(f32(w.bih[g] * s.siw * si) + 0.5)) : 0;
        for (let f = 0; f < xq.length; f++) ai += xq[f] * qwi[g][f];
        let ah = w.bhh ? Math.floor(f32(f32(w.bhh[g] * s.shw * s.sh) + 0.5)) : 0;
        for (let k = 0; k < H; k++) ah += hq[k] * qwh[g][k];
        gi.push(toQ11(ai, si * s.siw));
        gh.push(toQ11(ah, s.sh * s.shw));
      }
      const hr: number[] = [],
        cr: number[] = [];
      for (let j = 0; j < H; j++) {
        let Hq: number;
        if (kind === 'GRU') {
          const r = SIG(gi[j] + gh[j]),
            z = SIG(gi[H + j] + gh[H + j]);
          const rh = R((r * gh[2 * H + j]) / 128);
          const n = TANH(gi[2 * H + j] + rh);
          const h7 = R(128 * h[b][j]); // linger's Q7 state (docs/fixed-point.md#the-chips-gruint-lstmint-iqsigmoid-iqtanh-thinker-v110)
          Hq = 128 * n + z * (h7 - n);
        } else {
          const g = (k: number) => Math.max(-32768, Math.min(32767, gi[k * H + j] + gh[k * H + j]));
          const i = SIG(g(0)),
            fg = SIG(g(1)),
            gg = TANH(g(2)),
            o = SIG(g(3));
          const C = fg * R(128 * c[b][j]) + i * gg;
          cr.push(C / 16384);
          Hq = o * TANH(Math.max(-32768, Math.min(32767, R(C / 8))));
        }
        hr.push(Hq / 16384);
      }
      nh.push(hr);
      nc.push(cr);
    }
    // the state requantized to o_bits: at s_o, or in training at its own step's scale
    const m = maxAbsOf(nh.flat());
    const so = train ? (train.pinned ?? trainScale(m)) : s.so;
    h = nh.map((row) => row.map((v) => code(v, so) / so));
    if (train) s = { ...s, sh: trainScale(Math.min(R(m * so), 127) / so) };
    c = nc;
    out.push(h);
  }
  return out;
}

/** The layer's weights as PyTorch lays them out ([gates, in]) and its eval scales, from the state dict. */
function refWeights(sd: Record<string, Tensor>, p: string, l: number, sfx: string, G: number, H: number): RefDir {
  const mat = (k: string) => {
    const t = sd[`${p}.${k}_l${l}${sfx}`];
    const d = Array.from(t.dataSync());
    const cols = t.shape[1];
    return Array.from({ length: G * H }, (_, r) => d.slice(r * cols, (r + 1) * cols));
  };
  const vec = (k: string) => (sd[`${p}.${k}_l${l}${sfx}`] ? Array.from(sd[`${p}.${k}_l${l}${sfx}`].dataSync()) : null);
  return { wih: mat('weight_ih'), whh: mat('weight_hh'), bih: vec('bias_ih'), bhh: vec('bias_hh') };
}
function refScales(sd: Record<string, Tensor>, p: string, l: number, dataBits = 8, paramBits = 8, outBits = 8): RefScales {
  const r = (n: string) => sd[`${p}.running_${n}${l ? `_l${l}` : ''}`].item();
  return {
    si: evs(r('i'), dataBits),
    sh: evs(r('h'), dataBits),
    siw: evs(r('iw'), paramBits),
    shw: evs(r('hw'), paramBits),
    so: evs(r('o'), outBits),
  };
}

/** The whole layer: layers × directions, [T][B][F] in, [T][B][dirs·H] out. */
function refLayer(
  kind: 'GRU' | 'LSTM',
  sd: Record<string, Tensor>,
  p: string,
  xs: number[][][],
  o: { layers: number; bidirectional: boolean; H: number },
): number[][][] {
  const G = kind === 'GRU' ? 3 : 4;
  let inp = xs;
  for (let l = 0; l < o.layers; l++) {
    const s = refScales(sd, p, l);
    // a later layer's input is the earlier layer's output, carried at its scale
    if (l > 0) s.si = refScales(sd, p, l - 1).so;
    const fw = refDirection(kind, inp, refWeights(sd, p, l, '', G, o.H), s, o.H);
    if (!o.bidirectional) {
      inp = fw;
      continue;
    }
    const bw = refDirection(kind, [...inp].reverse(), refWeights(sd, p, l, '_reverse', G, o.H), s, o.H).reverse();
    inp = fw.map((row, t) => row.map((v, b) => [...v, ...bw[t][b]]));
  }
  return inp;
}

const toNested = (t: Tensor): number[][][] => {
  const [a, b, c] = t.shape;
  const d = Array.from(t.dataSync());
  return Array.from({ length: a }, (_, i) => Array.from({ length: b }, (_, j) => d.slice((i * b + j) * c, (i * b + j + 1) * c)));
};

class Seq extends nn.Module {
  rnn: nn.GRU | nn.LSTM;
  fc: nn.Linear;
  constructor(
    readonly kind: 'GRU' | 'LSTM',
    F: number,
    readonly H: number,
    opts: { numLayers?: number; bidirectional?: boolean; batchFirst?: boolean },
  ) {
    super();
    this.rnn = kind === 'GRU' ? new nn.GRU(F, H, opts) : new nn.LSTM(F, H, opts);
    this.fc = new nn.Linear(H * (opts.bidirectional ? 2 : 1), 3);
  }
  forward(x: Tensor): Tensor {
    const [out] = this.rnn(x) as [Tensor, unknown];
    const last = out.shape;
    return this.fc(out.reshape([-1, last[last.length - 1]]));
  }
}

function trained(kind: 'GRU' | 'LSTM', opts: { numLayers?: number; bidirectional?: boolean; batchFirst?: boolean }, seed = 3) {
  manualSeed(seed);
  const m = new Seq(kind, 6, 5, opts);
  linger.init(m, { dummyInput: randn([4, 2, 6]) });
  // for the chip: a GRU's state at 2^8 (docs/fixed-point.md#the-chips-gruint-lstmint-iqsigmoid-iqtanh-thinker-v110)
  if (kind === 'GRU') (m.rnn as unknown as { chipStateScale: boolean }).chipStateScale = true;
  const opt = new optim.SGD(m.parameters(), { lr: 0.05 });
  for (let i = 0; i < 30; i++) {
    const x = randn([4, 3, 6]).mul(1.5);
    const n = x.shape[0] * x.shape[1];
    opt.step(() =>
      F.crossEntropy(
        m(x),
        tensor(
          Int32Array.from({ length: n }, (_, k) => k % 3),
          [n],
          'int32',
        ),
      ),
    );
  }
  m.eval();
  return m;
}

describe('GRUInt and LSTMInt', () => {
  for (const kind of ['GRU', 'LSTM'] as const) {
    for (const opts of [{}, { bidirectional: true }, { numLayers: 2 }, { bidirectional: true, batchFirst: true }]) {
      test(`${kind}Int ${JSON.stringify(opts)}: eval equals the integer reference bit for bit`, () => {
        const m = trained(kind, opts);
        const x = randn([7, 4, 6]).mul(1.3); // [T, B, F] or [B, T, F]
        const [out, hn] = m.rnn(x) as [Tensor, Tensor | [Tensor, Tensor]];
        const sd = m.stateDict();
        const xs = toNested(opts.batchFirst ? x.transpose(0, 1) : x);
        const want = refLayer(kind, sd, 'rnn', xs, { layers: opts.numLayers ?? 1, bidirectional: !!opts.bidirectional, H: 5 });
        const got = toNested(opts.batchFirst ? out.transpose(0, 1) : out);
        let equal = 0,
          total = 0,
          nonzero = 0;
        got.forEach((row, t) =>
          row.forEach((v, b) =>
            v.forEach((y, j) => {
              total++;
              if (y === want[t][b][j]) equal++;
              if (y !== 0) nonzero++;
            }),
          ),
        );
        assert.equal(equal, total, `${equal}/${total} outputs equal`);
        assert.ok(nonzero > total / 2, 'the outputs are not trivially zero');
        // the output carries its scale (running_o of the last layer) to the next Int layer
        const L = (opts.numLayers ?? 1) - 1;
        assert.equal(out.quantScale, evs(sd[`rnn.running_o${L ? `_l${L}` : ''}`].item(), 8));
        // h_n is the last step's h of each direction
        const h = (Array.isArray(hn) ? hn[0] : hn).dataSync();
        const dirs = opts.bidirectional ? 2 : 1;
        const T = want.length,
          B = want[0].length,
          H = 5;
        for (let b = 0; b < B; b++)
          for (let j = 0; j < H; j++) {
            assert.equal(h[(L * dirs * B + b) * H + j], want[T - 1][b][j]);
            if (dirs === 2) assert.equal(h[((L * dirs + 1) * B + b) * H + j], want[0][b][H + j]);
          }
      });
    }
  }

  for (const kind of ['GRU', 'LSTM'] as const)
    for (const pinned of kind === 'GRU' ? [null, 256] : [null])
      test(`${kind}Int QAT forward${pinned ? ' (state pinned at 2^8)' : ''}: every step at its own scales equals the integer reference, with and without the gradient tape`, () => {
        manualSeed(13);
        const m = new Seq(kind, 6, 5, {});
        linger.init(m, { dummyInput: randn([4, 2, 6]) });
        if (kind === 'GRU') (m.rnn as unknown as { chipStateScale: boolean }).chipStateScale = pinned !== null;
        m.train();
        const x = randn([9, 4, 6]).mul(1.7);
        const sd = m.stateDict();
        const want = refDirection(kind, toNested(x), refWeights(sd, 'rnn', 0, '', kind === 'GRU' ? 3 : 4, 5), refScales(sd, 'rnn', 0), 5, {
          pinned,
        });
        // the layer's output in training is the whole sequence requantized at its own scale
        const S = trainScale(maxAbsOf(want.flat(2)));
        const flat = want.flat(2).map((v) => code(v, S) / S);
        const plain = (m.rnn(x) as [Tensor, unknown])[0];
        assert.deepEqual(Array.from(plain.dataSync()), flat, 'without the tape');
        // under the tape the values come through the float carrier's straight-through path
        let taped: number[] = [];
        const opt = new optim.SGD(m.parameters(), { lr: 0 });
        opt.step(() => {
          const [out] = m.rnn(x) as [Tensor, unknown];
          taped = Array.from(out.dataSync());
          return out.mul(out).mean();
        });
        assert.deepEqual(taped, flat, 'under the tape');
        assert.ok(flat.filter((v) => v !== 0).length > flat.length / 2, 'the outputs are not trivially zero');
      });

  test("traceLayers keeps an LSTM's [output, [h, c]] as the forward destructures it, and the last state feeds the head", () => {
    class Last extends nn.Module {
      lstm = new nn.LSTM(6, 5);
      fc = new nn.Linear(5, 3);
      forward(x: Tensor): Tensor {
        const [, [hN]] = this.lstm(x) as [Tensor, [Tensor, Tensor]];
        return this.fc(hN.reshape([-1, 5]));
      }
    }
    manualSeed(2);
    const m = new Last();
    const x = randn([4, 2, 6]);
    const want = Array.from((m(x) as Tensor).dataSync());
    linger.traceLayers(m, m, x);
    assert.deepEqual(Array.from((m(x) as Tensor).dataSync()), want);
    linger.init(m, { dummyInput: x });
    assert.match(String(m), /LSTMInt/);
    assert.deepEqual((m(x) as Tensor).shape, [2, 3]);
  });

  test('init replaces GRU and LSTM; printing, buffers named as linger names them, fixed dicts load strict', () => {
    const m = trained('GRU', { bidirectional: true });
    assert.match(String(m), /\(rnn\): GRUInt\(6, 5, bidirectional=True,data_bits=8,parameter_bits=8,o_bits=8\)/);
    const keys = Object.keys(m.stateDict()).filter((k) => k.startsWith('rnn.'));
    for (const n of ['i', 'h', 'iw', 'hw', 'io', 'ho', 'o']) {
      assert.ok(keys.includes(`rnn.running_${n}`) && keys.includes(`rnn.scale_${n}`), `running_${n}/scale_${n}`);
    }
    assert.ok(keys.includes('rnn.weight_hh_l0_reverse'));
    const two = trained('LSTM', { numLayers: 2 });
    assert.ok(Object.keys(two.stateDict()).includes('rnn.running_h_l1'), 'a stacked layer has its own buffers');
    const again = trained('GRU', { bidirectional: true }, 9);
    again.loadStateDict(m.stateDict());
    const x = randn([5, 2, 6]);
    assert.deepEqual(Array.from((again(x) as Tensor).dataSync()), Array.from((m(x) as Tensor).dataSync()));
  });

  test('eval before statistics names the buffer; a float dict restarts the statistics', () => {
    manualSeed(1);
    const m = new Seq('LSTM', 6, 5, {});
    const floatDict = m.stateDict();
    linger.init(m, { dummyInput: randn([3, 2, 6]) });
    m.eval();
    assert.throws(() => m(randn([3, 2, 6])), /NotCalibratedError|running_i/);
    m.train();
    m(randn([3, 2, 6]));
    m.eval();
    m(randn([3, 2, 6]));
    m.loadStateDict(floatDict);
    assert.equal(m.stateDict()['rnn.running_i'].item(), 0);
    assert.throws(() => m(randn([3, 2, 6])), /running_i/);
  });

  test('QAT: every parameter gets a gradient, including the recurrent weights through time', () => {
    for (const kind of ['GRU', 'LSTM'] as const) {
      manualSeed(5);
      const m = new Seq(kind, 6, 5, {});
      linger.init(m, { dummyInput: randn([3, 2, 6]) });
      const x = randn([6, 4, 6]);
      const y = tensor(
        Int32Array.from({ length: 24 }, (_, k) => k % 3),
        [24],
        'int32',
      );
      const before = Object.fromEntries(m.namedParameters().map(([k, p]) => [k, Array.from(p.dataSync())]));
      const opt = new optim.SGD(m.parameters(), { lr: 0.5 });
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) losses.push(opt.step(() => F.crossEntropy(m(x), y)));
      for (const [k, p] of m.namedParameters()) {
        const moved = Array.from(p.dataSync()).some((v, i) => v !== before[k][i]);
        assert.ok(moved, `${k} was updated`);
      }
      assert.ok(
        losses[losses.length - 1] < losses[0],
        `${kind}: the loss went down (${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)})`,
      );
      // training outputs lie on the output's int8 grid
      const out = (m.rnn(x) as [Tensor, unknown])[0];
      const s = out.quantScale!;
      assert.ok(Array.from(out.dataSync()).every((v) => Number.isInteger(v * s) && Math.abs(v * s) <= 128));
    }
  });

  for (const chip of [false, true])
    test(`the fixed-point GRU stays close to the float GRU it came from${chip ? ', its state pinned at 2^8 as the chip reads it' : ' (linger: its state at its data scale)'}`, () => {
      manualSeed(11);
      const m = new Seq('GRU', 6, 5, {});
      const x = randn([8, 6, 6]);
      m.eval();
      const sd = m.stateDict();
      const w = (k: string) => Array.from(sd[`rnn.${k}`].dataSync());
      linger.init(m, { dummyInput: x });
      (m.rnn as unknown as { chipStateScale: boolean }).chipStateScale = chip;
      // calibration: running_i is an EMA from 0, so it needs a few dozen batches to settle
      linger.calibrate(
        m,
        Array.from({ length: 40 }, () => x),
      );
      m.eval();
      const got = Array.from((m.rnn(x) as [Tensor, Tensor])[0].dataSync());
      // pinned: the 8-bit state stays at 2^8, the scale thinker's GRU kernel reads it at, and the
      // float GRU it approximates has its state clamped to [−128, 127]/256 (docs/fixed-point.md#the-chips-gruint-lstmint-iqsigmoid-iqtanh-thinker-v110)
      const so = m.stateDict()['rnn.scale_o'].dataSync()[0];
      if (chip) assert.equal(so, 256);
      else assert.ok(so < 256, `s_o ${so}: this state needs more than ±0.5`);
      const ref = floatGru(
        Array.from(x.dataSync()),
        [8, 6, 6],
        5,
        w('weight_ih_l0'),
        w('weight_hh_l0'),
        w('bias_ih_l0'),
        w('bias_hh_l0'),
        chip ? [-0.5, 127 / 256] : [-Infinity, Infinity],
      );
      const err = Math.max(...got.map((v, i) => Math.abs(v - ref[i])));
      assert.ok(err < 0.08, `max |fixed − float| = ${err} (s_o ${so})`);
    });

  test("GRUInt.chipStateScale = false: the state's scale from the data (linger's), and a thinker export that refuses it off 2^8", async () => {
    manualSeed(11);
    const m = new Seq('GRU', 6, 5, {});
    const x = randn([8, 6, 6]);
    linger.init(m, { dummyInput: x });
    (m.rnn as unknown as { chipStateScale: boolean }).chipStateScale = false;
    linger.calibrate(
      m,
      Array.from({ length: 40 }, () => x),
    );
    m.eval();
    m(x);
    const so = m.stateDict()['rnn.scale_o'].dataSync()[0];
    assert.notEqual(so, 256, 'this GRU state sits elsewhere');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-rnn-pin-'));
    await assert.rejects(exportOnnx(m, x, path.join(dir, 'g.onnx'), { dialect: 'thinker' }), {
      name: 'OnnxExportError',
      message: new RegExp(
        `GRUInt at 'rnn'.*its state is at 2\\^${Math.log2(so)}, and thinker v1\\.1\\.0's GRU kernel reads the state as if at 2\\^8`,
      ),
    });
  });

  test("thinker export: one GRUInt/LSTMInt node per direction with linger's attributes, int8 weights, int32 biases", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-rnn-int-'));
    // thinker v1.1.0's tpacker drops a GRUInt's direction: a bidirectional GRU is refused (docs/onnx.md)
    await assert.rejects(
      exportOnnx(trained('GRU', { bidirectional: true, batchFirst: true }), randn([2, 4, 6]), path.join(dir, 'bi.onnx'), {
        dialect: 'thinker',
      }),
      {
        name: 'OnnxExportError',
        message: /GRUInt at 'rnn': thinker v1\.1\.0 cannot run this as exported: tpacker v1\.1\.0 packs no direction for GRUInt/,
      },
    );
    for (const kind of ['GRU', 'LSTM'] as const) {
      const bi = kind === 'LSTM';
      const m = trained(kind, { bidirectional: bi, batchFirst: true });
      const file = path.join(dir, `${kind}.onnx`);
      await exportOnnx(m, randn([2, 4, 6]), file, { dialect: 'thinker' });
      const g = onnx.ModelProto.decode(fs.readFileSync(file)).graph!;
      const nodes = g.node!.filter((n) => n.opType === `${kind}Int`);
      assert.equal(nodes.length, bi ? 2 : 1, 'a node per direction');
      const attrs = (n: onnx.INodeProto) => Object.fromEntries(n.attribute!.map((a) => [a.name!, a]));
      const names = Object.keys(attrs(nodes[0])).sort();
      assert.deepEqual(
        names,
        [
          'batch_first',
          'data_bits',
          'dropout',
          'go_forward',
          'hidden_size',
          'input_size',
          'num_layers',
          'o_bits',
          'parameter_bits',
          'platform_quant',
          'scale_h',
          'scale_hw',
          'scale_i',
          'scale_iw',
          'scale_o',
        ].sort(),
      );
      assert.deepEqual(
        nodes.map((n) => Number(attrs(n).go_forward.i)),
        bi ? [1, 0] : [1],
      );
      assert.ok(nodes.every((n) => n.domain === 'thinker'));
      assert.equal(nodes[0].output!.length, kind === 'LSTM' ? 3 : 2);
      const sd = m.stateDict();
      const a = attrs(nodes[0]);
      assert.equal(a.scale_o.f, evs(sd['rnn.running_o'].item(), 8));
      assert.equal(a.scale_iw.f, evs(sd['rnn.running_iw'].item(), 8));
      assert.equal(Number(a.batch_first.i), 1);
      const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
      const w = inits.get(nodes[0].input![1])!,
        b = inits.get(nodes[0].input![3])!;
      assert.equal(w.dataType, onnx.TensorProto.DataType.INT8);
      assert.deepEqual(w.dims!.map(Number), [(kind === 'GRU' ? 3 : 4) * 5, 6]);
      assert.equal(b.dataType, onnx.TensorProto.DataType.INT32);
      // the directions are joined by thinker iqCat; the model starts with Quant and ends with Dequant
      if (bi)
        assert.ok(
          g.node!.some((n) => n.opType === 'iqCat' && n.input!.includes(nodes[0].output![0]) && n.input!.includes(nodes[1].output![0])),
        );
      assert.equal(g.node![0].opType, 'Quant');
      assert.equal(g.node![g.node!.length - 1].opType, 'Dequant');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a checkpoint replays disableQuant and per-layer bits on recurrent layers, and loads strict', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-rnn-replay-'));
    class Two extends nn.Module {
      a = new nn.GRU(6, 5);
      b = new nn.LSTM(5, 4);
      forward(x: Tensor): Tensor {
        return (this.b((this.a(x) as [Tensor, Tensor])[0]) as [Tensor, unknown])[0];
      }
    }
    manualSeed(6);
    const m = new Two();
    linger.disableQuant(m.a);
    linger.quantModule(m.b, { dataBits: 6, parameterBits: 7, outBits: 6 });
    linger.init(m, { dummyInput: randn([3, 2, 6]) });
    assert.match(String(m), /\(a\): GRU\(6, 5\)/);
    assert.match(String(m), /\(b\): LSTMInt\(5, 4,data_bits=6,parameter_bits=7,o_bits=6\)/);
    m.train();
    for (let i = 0; i < 5; i++) m(randn([3, 2, 6]));
    const file = path.join(dir, 'two.safetensors');
    await linger.save(m, file);
    manualSeed(7);
    const fresh = new Two();
    applyCheckpointTransforms(fresh, readCheckpointInfo(file).metadata, randn([3, 2, 6]), file);
    assert.equal(String(fresh), String(m));
    fresh.loadStateDict(await linger.load(file));
    m.eval();
    fresh.eval();
    const x = randn([3, 2, 6]);
    assert.deepEqual(Array.from((fresh(x) as Tensor).dataSync()), Array.from((m(x) as Tensor).dataSync()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
