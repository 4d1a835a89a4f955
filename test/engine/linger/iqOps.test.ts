// linger's element-wise iq ops in the fixed stage (LINGER-OPS §6): iqMul, iqSum, iqSigmoid, iqTanh,
// iqClamp and ReLU6Int. Eval is checked bit for bit against a plain-JS integer reference written
// from the formulas (only the Q11→Q7 activation table comes from intActivation.ts, as σ/tanh);
// training against the same formulas at the batch's scale, with straight-through gradients.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { F, initBackend, linger, manualSeed, nn, optim, randn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { IQClamp, IQMul, IQSigmoid, IQSum, IQTanh, ReLU6Int } from '../../../src/engine/linger/index';
import { activationTables } from '../../../src/engine/quant/intActivation';
import { warningsDuring } from '../warnings';
import { withRecordedScales } from '../../../src/engine/linger/ops/base';

before(async () => {
  await initBackend();
});

const BITS = { dataBits: 8, parameterBits: 8, outBits: 8 };

// ---- the reference: plain JS numbers, from LINGER-OPS §0/§6 -------------------------------------
const R = (v: number) => Math.floor(v + 0.5);
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const int8 = (v: number) => clamp(v, -128, 127);
/** Python's round (half to even) */
function pyRound(v: number): number {
  const f = Math.floor(v);
  return v - f > 0.5 ? f + 1 : v - f < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}
/** OSR / evs: 2^round(log2(127/m)), m = 0 → 1 */
const osr = (m: number) => (m > 0 ? 2 ** pyRound(Math.log2(127 / m)) : 1);
/** dyn(y, 8) = 2^floor(log2(127/|y|)), 0 → 2^8 */
const dyn = (y: number) => (y === 0 ? 256 : 2 ** Math.floor(Math.log2(127 / Math.abs(y))));

function refMul(qx: number[], sx: number, y: number[] | number, sy: number | null, sz: number): number[] {
  // y: codes at sy, or a number quantized at dyn(y)
  const yCodes = typeof y === 'number' ? [int8(R(Math.fround(y) * dyn(Math.fround(y))))] : y;
  const syq = typeof y === 'number' ? dyn(Math.fround(y)) : sy!;
  let s = syq,
    yi = yCodes;
  if (sx * syq < sz) {
    s = sz / sx;
    yi = yCodes.map((q) => int8(R((q / syq) * s)));
  }
  const r = sz / (sx * s);
  return qx.map((q, i) => int8(R(q * yi[typeof y === 'number' ? 0 : i] * r)));
}
function refActivation(q: number, sx: number, table: Int32Array): number {
  const s16 = 256 * sx;
  const q16 = clamp(R((q / sx) * s16), -32768, 32767);
  const l = 11 - Math.log2(s16);
  const x11 = l > 0 ? q16 * 2 ** l : R(q16 * 2 ** l);
  return table[clamp(x11, -32768, 32767) + 32768];
}

/** An IQTensor: the codes / s, carrying s. */
const iq = (codes: number[], shape: number[], s: number) =>
  new Tensor(
    tf.tensor(
      codes.map((q) => q / s),
      shape,
    ),
    null,
    s,
  );
/** Deterministic codes in [−128, 127]. */
const codes = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (((i + 1) * 7919 * seed + seed * 31) % 256) - 128);
const valuesOf = (t: Tensor) => Array.from(t.dataSync());
function setRunning(m: nn.Module, v: number, key = 'running_o'): void {
  m.loadStateDict({ [key]: tensor([v]).reshape([]) }, { strict: false });
}

describe('eval equals the integer reference bit for bit', () => {
  test('iqMul: tensor × tensor, with and without the requantization of y (s_x·s_y < s_z)', () => {
    for (const [sx, sy, running] of [
      [16, 8, 1.9],
      [4, 2, 0.05],
      [64, 128, 0.003],
      [1, 32, 2.5],
      [32, 32, 0.2],
    ] as const) {
      const m = new IQMul(BITS);
      m.eval();
      setRunning(m, running);
      const qx = codes(60, 3),
        qy = codes(60, 5);
      const z = tidy(() => m(iq(qx, [3, 20], sx), iq(qy, [3, 20], sy)) as Tensor);
      const sz = osr(running);
      assert.equal(z.quantScale, sz);
      assert.equal(m.stateDict().scale_o.item(), sz, 'eval writes scale_o');
      assert.deepEqual(
        valuesOf(z).map((v) => v * sz),
        refMul(qx, sx, qy, sy, sz),
        `s_x ${sx}, s_y ${sy}, running ${running}`,
      );
    }
    // the requantized case really saturates y codes: s_x·s_y = 8 < s_z = 2^round(log2(127/0.05)) = 2048
    assert.ok(4 * 2 < osr(0.05));
  });

  test('iqMul: tensor × number (y quantized at 2^⌊log2(127/|y|)⌋), broadcasting a [1, n] operand', () => {
    for (const [c, running] of [
      [0.75, 0.8],
      [-1.7, 3],
      [0.3, 0.01],
      [5, 40],
      [0, 1],
    ] as const) {
      const m = new IQMul(BITS);
      m.eval();
      setRunning(m, running);
      const qx = codes(24, 7);
      const z = tidy(() => m(iq(qx, [4, 6], 8), c) as Tensor);
      const sz = osr(running);
      assert.deepEqual(
        valuesOf(z).map((v) => v * sz),
        refMul(qx, 8, c, null, sz),
        `y = ${c}`,
      );
    }
    const m = new IQMul(BITS);
    m.eval();
    setRunning(m, 0.5);
    const qx = codes(12, 2),
      qy = codes(4, 9);
    const z = tidy(() => m(iq(qx, [3, 4], 16), iq(qy, [1, 4], 32)) as Tensor);
    const sz = osr(0.5);
    assert.deepEqual(z.shape, [3, 4]);
    assert.deepEqual(
      valuesOf(z).map((v) => v * sz),
      refMul(
        qx,
        16,
        qx.map((_, i) => qy[i % 4]),
        32,
        sz,
      ),
    );
  });

  test('iqSum: over all elements, over a dim, keepdim, over several dims', () => {
    const shape = [2, 3, 4, 5];
    const qx = codes(120, 11),
      sx = 32;
    const at = (i: number[]) => qx[((i[0] * 3 + i[1]) * 4 + i[2]) * 5 + i[3]];
    for (const [opts, running] of [
      [{}, 10],
      [{ dim: 1 }, 0.9],
      [{ dim: -1, keepdim: true }, 1.3],
      [{ dim: [0, 2] }, 3.7],
      [{ dim: 3 }, 0.05],
    ] as const) {
      const m = new IQSum(BITS);
      m.eval();
      setRunning(m, running);
      const z = tidy(() => m(iq(qx, shape, sx), opts) as Tensor);
      const sz = osr(running);
      // reference: the integer sum of codes per output, then ⌊Σq·s_z/s_x + 1/2⌋ clamped
      const dims = opts.dim === undefined ? [0, 1, 2, 3] : (Array.isArray(opts.dim) ? opts.dim : [opts.dim]).map((d) => (d + 4) % 4);
      const outShape = shape.map((s, i) => (dims.includes(i) ? 1 : s));
      const want: number[] = [];
      const idx = [0, 0, 0, 0];
      const n = outShape.reduce((a, b) => a * b, 1);
      for (let o = 0; o < n; o++) {
        let rest = o;
        for (let d = 3; d >= 0; d--) {
          idx[d] = rest % outShape[d];
          rest = Math.floor(rest / outShape[d]);
        }
        let acc = 0;
        const inner = (d: number, cur: number[]) => {
          if (d === 4) {
            acc += at(cur);
            return;
          }
          if (dims.includes(d)) for (let v = 0; v < shape[d]; v++) inner(d + 1, [...cur, v]);
          else inner(d + 1, [...cur, idx[d]]);
        };
        inner(0, []);
        want.push(int8(R((acc * sz) / sx)));
      }
      const keep = 'keepdim' in opts && opts.keepdim;
      assert.deepEqual(z.shape, opts.dim === undefined ? [] : keep ? outShape : shape.filter((_, i) => !dims.includes(i)));
      assert.deepEqual(
        valuesOf(z).map((v) => v * sz),
        want,
        JSON.stringify(opts),
      );
    }
  });

  test('iqSigmoid / iqTanh: 16-bit requant, Q11 (both shift directions), the Q7 table; scale 128', () => {
    const t = activationTables();
    for (const sx of [0.25, 1, 8, 16, 64, 1024]) {
      const qx = Array.from({ length: 256 }, (_, i) => i - 128);
      for (const [Cls, table] of [
        [IQSigmoid, t.sigmoid],
        [IQTanh, t.tanh],
      ] as const) {
        const m = new Cls(BITS);
        m.eval();
        setRunning(m, 1);
        const z = tidy(() => m(iq(qx, [16, 16], sx)) as Tensor);
        assert.equal(z.quantScale, 128);
        assert.deepEqual(
          valuesOf(z).map((v) => v * 128),
          qx.map((q) => refActivation(q, sx, table)),
          `${Cls.name} s_x ${sx}`,
        );
        const sd = m.stateDict();
        assert.equal(sd.scale_o.item(), 128);
        assert.equal(sd.running_o.item(), 1);
      }
    }
    // the table is the activation: σ(0) = 1/2, tanh saturates
    assert.equal(t.sigmoid[32768], 64);
    assert.ok(t.tanh[32768 + 20000] >= 126);
  });

  test('iqClamp: s_o = 127/max, min 0 or −8, ÷ s_o', () => {
    for (const [min, max, sx] of [
      [0, 127 / 16, 8],
      [-8, 127 / 16, 64],
      [0, 127 / 32, 1],
      [-8, 127 / 4, 128],
      [0, 127, 0.5],
    ] as const) {
      const m = new IQClamp(BITS, min, max);
      m.eval();
      setRunning(m, 1);
      const qx = Array.from({ length: 256 }, (_, i) => i - 128);
      const z = tidy(() => m(iq(qx, [256], sx)) as Tensor);
      const so = 127 / max;
      assert.equal(z.quantScale, so);
      const want = qx.map((q) => {
        const y = R((q / sx) * so);
        return int8(min === 0 ? clamp(y, 0, 127) : y);
      });
      assert.deepEqual(
        valuesOf(z).map((v) => v * so),
        want,
        `clamp(${min}, ${max}) at s_x ${sx}`,
      );
    }
    assert.throws(() => new IQClamp(BITS, 0, 6), { message: /clamp\(0, 6\) is not supported/ });
    assert.equal(IQClamp.supports(-1, 127 / 8), false);
  });

  test('ReLU6Int: M = min(round(6s), 127) (half to even), y = clamp(q, 0, M)/s; IQTensor or float input', () => {
    for (const s of [0.125, 0.25, 4, 16, 64]) {
      const m = new ReLU6Int(BITS);
      m.eval();
      const qx = Array.from({ length: 256 }, (_, i) => i - 128);
      const z = tidy(() => m(iq(qx, [256], s)) as Tensor);
      const M = Math.min(pyRound(6 * s), 127);
      assert.equal(z.quantScale, s);
      assert.deepEqual(
        valuesOf(z).map((v) => v * s),
        qx.map((q) => clamp(q, 0, M)),
        `s ${s}`,
      );
      const sd = m.stateDict();
      assert.equal(sd.max_thresh.item(), M);
      assert.equal(sd.min_thresh.item(), 0);
      assert.equal(sd.scale_x.item(), s);
      assert.equal(sd.running_x.item(), Math.fround(127 / s), "the IQTensor's running value");
    }
    assert.equal(Math.min(pyRound(6 * 0.25), 127), 2, '1.5 rounds to even');
    // a float input in eval: s = 2^round(log2(127/running_x)), q = clamp(⌊x·s + 1/2⌋)
    const m = new ReLU6Int(BITS);
    m.eval();
    setRunning(m, 7.3, 'running_x');
    const xs = Array.from({ length: 50 }, (_, i) => (i - 20) * 0.173);
    const z = tidy(() => m(tensor(xs)) as Tensor);
    const s = osr(7.3);
    assert.equal(z.quantScale, s);
    const M = Math.min(pyRound(6 * s), 127);
    assert.deepEqual(
      valuesOf(z).map((v) => v * s),
      xs.map((x) => clamp(int8(R(Math.fround(x) * s)), 0, M)),
    );
  });

  test('eval before any statistics is NotCalibratedError naming the buffer', () => {
    const x = iq(codes(8, 1), [8], 16);
    for (const m of [new IQMul(BITS), new IQSum(BITS), new IQSigmoid(BITS), new IQTanh(BITS), new IQClamp(BITS, 0, 127 / 16)]) {
      m.eval();
      assert.throws(
        () => (m instanceof IQMul ? m(x, x) : m(x)),
        { name: 'NotCalibratedError', message: /no data statistics yet \(running_o = 0\)/ },
        m.typeName(),
      );
    }
    const r = new ReLU6Int(BITS);
    r.eval();
    assert.throws(() => r(tensor([1, 2])), { name: 'NotCalibratedError', message: /running_x = 0/ });
    assert.doesNotThrow(() => r(x), 'an IQTensor input brings its own scale');
    // an operand without a scale is a clear error
    const mul = new IQMul(BITS);
    assert.throws(() => mul(tensor([1]), 2), { message: /does not come from a quantized layer/ });
  });
});

describe('training: the batch scale (OSR), the raw max into running_o, straight-through gradients', () => {
  test('iqMul: value at s_z = 2^round(log2(127/max|x·y|)), running_o = 0.1·max, d/dx = y, d/dy = x', () => {
    const m = new IQMul(BITS);
    m.train();
    const qx = codes(20, 3),
      qy = codes(20, 4);
    const sx = 16,
      sy = 32;
    const xv = tf.variable(tf.tensor(qx.map((q) => q / sx)));
    const yv = tf.variable(tf.tensor(qy.map((q) => q / sy)));
    let out: number[] = [];
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
      const z = m(new Tensor(a, null, sx), new Tensor(b, null, sy)) as Tensor;
      out = Array.from(z.raw.dataSync());
      return tf.sum(tf.mul(z.raw, tf.range(1, 21)));
    })([xv, yv]);
    const prod = qx.map((q, i) => (q / sx) * (qy[i] / sy));
    const max = Math.max(...prod.map(Math.abs));
    const sz = osr(max);
    assert.deepEqual(
      out.map((v) => v * sz),
      refMul(qx, sx, qy, sy, sz),
    );
    assert.ok(Math.abs(m.stateDict().running_o.item() - Math.fround(0.1 * max)) < 1e-7, 'running_o ← 0.9·0 + 0.1·max');
    assert.equal(m.stateDict().scale_o.item(), 0, 'only eval writes scale_o');
    const w = Array.from({ length: 20 }, (_, i) => i + 1);
    assert.deepEqual(
      Array.from(grads[0].dataSync()),
      qy.map((q, i) => Math.fround(w[i] * (q / sy))),
    );
    assert.deepEqual(
      Array.from(grads[1].dataSync()),
      qx.map((q, i) => Math.fround(w[i] * (q / sx))),
    );
    // a number operand: the gradient is the quantized constant
    const g = tf.grads((a: tf.Tensor) => tf.sum((m(new Tensor(a, null, sx), 0.3) as Tensor).raw))([xv])[0];
    const c = R(Math.fround(0.3) * dyn(0.3)) / dyn(0.3);
    assert.ok(
      Array.from(g.dataSync()).every((v) => v === Math.fround(c)),
      `d/dx = ${c}`,
    );
  });

  test('iqSum / iqSigmoid / iqTanh / iqClamp / ReLU6Int: training values and gradients', () => {
    const sx = 32;
    const qx = Array.from({ length: 64 }, (_, i) => 4 * i - 128);
    const x = tf.variable(
      tf.tensor(
        qx.map((q) => q / sx),
        [8, 8],
      ),
    );
    const gradOf = (fn: (t: Tensor) => Tensor) => {
      let value: number[] = [];
      const g = tf.grads((a: tf.Tensor) => {
        const z = fn(new Tensor(a, null, sx));
        value = Array.from(z.raw.dataSync());
        return tf.sum(z.raw);
      })([x])[0];
      return { g: Array.from(g.dataSync()), value };
    };
    // iqSum over dim 1: the sum of codes at the batch's scale; gradient 1
    const sum = new IQSum(BITS);
    const s = gradOf((t) => sum(t, { dim: 1 }) as Tensor);
    const sums = Array.from({ length: 8 }, (_, r) => qx.slice(r * 8, r * 8 + 8).reduce((a, b) => a + b, 0));
    const sz = osr(Math.max(...sums.map((v) => Math.abs(v / sx))));
    assert.deepEqual(
      s.value.map((v) => v * sz),
      sums.map((a) => int8(R((a * sz) / sx))),
    );
    assert.ok(s.g.every((v) => v === 1));
    // iqSigmoid: the table's value, σ'(x) as gradient
    const sig = new IQSigmoid(BITS);
    const a = gradOf((t) => sig(t) as Tensor);
    assert.deepEqual(
      a.value.map((v) => v * 128),
      qx.map((q) => refActivation(q, sx, activationTables().sigmoid)),
    );
    qx.forEach((q, i) => {
      const sg = 1 / (1 + Math.exp(-q / sx));
      assert.ok(Math.abs(a.g[i] - sg * (1 - sg)) < 1e-6);
    });
    assert.equal(sig.stateDict().running_o.item(), 1);
    const th = new IQTanh(BITS);
    const b = gradOf((t) => th(t) as Tensor);
    qx.forEach((q, i) => assert.ok(Math.abs(b.g[i] - (1 - Math.tanh(q / sx) ** 2)) < 1e-6));
    // iqClamp(0, 127/32): gradient 1 inside [0, max], 0 outside
    const cl = new IQClamp(BITS, 0, 127 / 32);
    const c = gradOf((t) => cl(t) as Tensor);
    assert.deepEqual(
      c.g,
      qx.map((q) => (q / sx >= 0 && q / sx <= 127 / 32 ? 1 : 0)),
    );
    assert.deepEqual(
      c.value.map((v) => v * 32),
      qx.map((q) => clamp(R(q), 0, 127)),
    );
    assert.ok(cl.stateDict().running_o.item() > 0, 'running_o follows the OSR');
    // ReLU6Int on a float input: s = dyn(max|x|), gradient 0 outside (0, 6)
    const r6 = new ReLU6Int(BITS);
    const xf = tf.variable(tf.tensor([-1, 0.5, 2, 5.9, 6.5, 7.9]));
    let rv: number[] = [];
    const rg = tf.grads((t: tf.Tensor) => {
      const z = (r6(new Tensor(t)) as Tensor).raw;
      rv = Array.from(z.dataSync());
      return tf.sum(z);
    })([xf])[0];
    const sr = 2 ** Math.floor(Math.log2(127 / 7.9)); // 16
    assert.equal(r6.stateDict().scale_x.item(), sr);
    assert.equal(r6.stateDict().running_x.item(), Math.fround((0.1 * 127) / sr), 'running_x ← ema(B/s)');
    assert.deepEqual(
      rv,
      [-1, 0.5, 2, 5.9, 6.5, 7.9].map((v) => clamp(R(Math.fround(v) * sr), 0, Math.min(pyRound(6 * sr), 127)) / sr),
    );
    assert.deepEqual(Array.from(rg.dataSync()), [0, 1, 1, 1, 0, 0]);
  });
});

describe('iqAdd / iqCat follow the same output scale rule (LINGER-OPS §6)', () => {
  test('training: the raw max into running_o; eval: 2^round(log2(127/running_o)), iqAdd capped at min(s_x, s_y), iqCat not', () => {
    const qx = codes(30, 3),
      qy = codes(30, 8);
    const x = iq(qx, [30], 16),
      y = iq(qy, [30], 64);
    const add = new nn.IQAdd(BITS);
    add.train();
    const z = tidy(() => add(x, y) as Tensor);
    const xs = qx.map((q) => q / 16),
      ys = qy.map((q) => q / 64);
    const max = Math.max(...xs.map(Math.abs), ...ys.map(Math.abs), ...xs.map((v, i) => Math.abs(v + ys[i])));
    assert.equal(z.quantScale, osr(max));
    assert.ok(Math.abs(add.stateDict().running_o.item() - 0.1 * max) < 1e-6, 'running_o = 0.9·0 + 0.1·max (raw)');
    add.eval();
    setRunning(add, 0.01); // evs = 2^14, capped at min(16, 64)
    assert.equal(tidy(() => add(x, y) as Tensor).quantScale, 16);
    setRunning(add, 3); // evs = 2^5 = 32 > 16: still the cap
    assert.equal(tidy(() => add(x, y) as Tensor).quantScale, 16);
    setRunning(add, 20); // evs = 2^3
    const z8 = tidy(() => add(x, y) as Tensor);
    assert.equal(z8.quantScale, 8);
    assert.deepEqual(
      valuesOf(z8).map((v) => v * 8),
      qx.map((q, i) => int8(R((q * 8) / 16) + R((qy[i] * 8) / 64))),
    );
    const cat = new nn.IQCat(BITS);
    cat.eval();
    setRunning(cat, 0.01);
    const c = tidy(() => cat([x, y], 0) as Tensor);
    assert.equal(c.quantScale, osr(0.01), "no cap for iqCat (linger's iqCat has none)");
    assert.deepEqual(
      valuesOf(c).map((v) => v * osr(0.01)),
      // linger's scale_to: a saturated code is ±(127.01 | 128.01), the clamp's bounds
      [...qx.map((q) => R((q * osr(0.01)) / 16)), ...qy.map((q) => R((q * osr(0.01)) / 64))].map((q) =>
        q > 127 ? Math.fround(127.01) : q < -128 ? Math.fround(-128.01) : q,
      ),
    );
    cat.train();
    setRunning(cat, 0);
    const zero = new Tensor(tf.zeros([4]), null, 16);
    assert.equal(tidy(() => cat([zero, zero], 0) as Tensor).quantScale, 1, 'an all-zero batch: scale 1');
  });
});

// ---- init wires them into a model ---------------------------------------------------------------
const opLayers = (m: nn.Module) => [...m.namedModules()].filter(([p]) => p.split('.').pop()!.startsWith('_linger_round_tensor_'));
class Gate extends nn.Module {
  conv = new nn.Conv2d(2, 4, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(4);
  r6 = new nn.ReLU6();
  gate = new nn.Conv2d(4, 4, 1);
  act = new nn.Sigmoid();
  th = new nn.Tanh();
  head = new nn.Linear(4, 3);
  forward(x: Tensor): Tensor {
    const a = this.r6(this.bn(this.conv(x)));
    const g = this.gate(a);
    let y = a.mul(this.act(g)).add(this.th(g).mul(0.5));
    y = F.sigmoid(y)
      .mul(y)
      .clamp(-8, 127 / 16);
    return this.head(y.sum([2, 3]).mul(0.25));
  }
}

describe('linger.init replaces the ops of a model', () => {
  test("ReLU6 → ReLU6Int, the graph's ops → linger_iq in call order; QAT trains; eval layers equal the reference", () => {
    manualSeed(5);
    const m = new Gate();
    linger.traceLayers(m, m, randn([1, 2, 6, 6]));
    linger.init(m);
    assert.equal(m.r6.typeName(), 'ReLU6Int');
    assert.equal(m.act.typeName(), 'Sigmoid', 'nn.Sigmoid stays; its op goes to an IQSigmoid');
    // as in linger: each op's layer is a child of the module whose forward calls it (nn.Sigmoid's
    // own), named by that module's counter, from its first call
    assert.deepEqual(opLayers(m), []);
    tidy(() => {
      m(randn([2, 2, 6, 6]));
    });
    assert.deepEqual(
      opLayers(m).map(([p, l]) => `${p}: ${l.toString()}`),
      [
        'act._linger_round_tensor_iqsigmoid_0: iqSigmoidLayer()',
        'th._linger_round_tensor_iqtanh_0: iqTanhLayer()',
        '_linger_round_tensor_iqmul__default_index_0: iqMulLayer()',
        '_linger_round_tensor_iqmul__default_index_1: iqMulLayer()',
        '_linger_round_tensor_iqadd__default_index_2: iqAddLayer()',
        '_linger_round_tensor_iqsigmoid_3: iqSigmoidLayer()',
        '_linger_round_tensor_iqmul__default_index_4: iqMulLayer()',
        '_linger_round_tensor_iqclamp_5: iqClampLayer()',
        '_linger_round_tensor_iqsum__default_index_6: iqSumLayer()',
        '_linger_round_tensor_iqmul__default_index_7: iqMulLayer()',
      ],
    );
    assert.deepEqual(
      Object.keys(m.stateDict()).filter(
        (k) => k.startsWith('r6.') || k.startsWith('act.') || k.startsWith('_linger_round_tensor_iqmul__default_index_0.'),
      ),
      [
        'r6.running_x',
        'r6.scale_x',
        'r6.min_thresh',
        'r6.max_thresh',
        'act._linger_round_tensor_iqsigmoid_0.scale_o',
        'act._linger_round_tensor_iqsigmoid_0.running_o',
        '_linger_round_tensor_iqmul__default_index_0.scale_o',
        '_linger_round_tensor_iqmul__default_index_0.running_o',
        '_linger_round_tensor_iqmul__default_index_0.y',
      ],
    );
    const opt = new optim.SGD(m.parameters(), { lr: 0.05 });
    const labels = tensor(Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]), [8], 'int32');
    const losses: number[] = [];
    for (let i = 0; i < 4; i++) losses.push(opt.step(() => F.crossEntropy(m(randn([8, 2, 6, 6])) as Tensor, labels)));
    const g0 = m.gate.weight.dataSync().slice();
    tidy(() => {
      opt.step(() => F.crossEntropy(m(randn([8, 2, 6, 6])) as Tensor, labels));
    });
    assert.ok(
      m.gate.weight.dataSync().some((v, i) => v !== g0[i]),
      'gradients reach the layer before the iq ops',
    );
    for (const [, l] of opLayers(m)) assert.ok(l.stateDict().running_o.item() > 0, `${l.typeName()} has statistics`);
    linger.calibrate(
      m,
      Array.from({ length: 10 }, () => randn([8, 2, 6, 6])),
    );
    m.eval();
    // capture each iq layer's operands and result in eval, check them with the reference
    const seen: { layer: nn.Module; args: unknown[]; z: Tensor }[] = [];
    for (const [, l] of opLayers(m)) {
      const orig = l.forward.bind(l);
      l.forward = (...args: unknown[]) => {
        const z = orig(...args) as Tensor;
        seen.push({ layer: l, args: args.map((a) => (a instanceof Tensor ? a.keep() : a)), z: z.keep() });
        return z;
      };
    }
    // the scale_* buffers hold the eval scales only where an export records them
    const out = withRecordedScales(() => m(randn([2, 2, 6, 6])) as Tensor);
    assert.deepEqual(out.shape, [2, 3]);
    assert.equal(seen.length, 10, 'every op went through its iq layer');
    const t = activationTables();
    for (const { layer, args, z } of seen) {
      const x = args[0] as Tensor;
      const sx = x.quantScale!,
        sz = z.quantScale!;
      const qx = valuesOf(x).map((v) => Math.round(v * sx));
      const got = valuesOf(z).map((v) => v * sz);
      const running = layer.stateDict().running_o.item();
      assert.ok(
        got.some((v) => v !== 0 && v > -128 && v < 127),
        `${layer.typeName()}: non-trivial codes (not all 0 or saturated)`,
      );
      if (layer instanceof IQMul) {
        assert.equal(sz, osr(running));
        const y = args[1];
        const want =
          typeof y === 'number'
            ? refMul(qx, sx, y, null, sz)
            : refMul(
                qx,
                sx,
                valuesOf(y as Tensor).map((v) => Math.round(v * (y as Tensor).quantScale!)),
                (y as Tensor).quantScale!,
                sz,
              );
        assert.deepEqual(got, want, 'iqMul');
      } else if (layer instanceof IQSigmoid || layer instanceof IQTanh) {
        assert.deepEqual(
          got,
          qx.map((q) => refActivation(q, sx, layer instanceof IQSigmoid ? t.sigmoid : t.tanh)),
          layer.typeName(),
        );
      } else if (layer instanceof IQClamp) {
        assert.deepEqual(
          got,
          qx.map((q) => int8(R((q / sx) * 16))),
          'iqClamp',
        );
      } else if (layer instanceof IQSum) {
        assert.deepEqual(z.shape, [2, 4]);
        const [, c, h, w] = x.shape;
        const want = Array.from({ length: 2 * c }, (_, o) => {
          let acc = 0;
          for (let k = 0; k < h * w; k++) acc += qx[o * h * w + k];
          return int8(R((acc * sz) / sx));
        });
        assert.deepEqual(got, want, 'iqSum');
      }
    }
    // ReLU6Int takes the (BN-folded) conv's codes with their scale
    assert.equal(m.bn.typeName(), 'EmptyBatchNorm');
    assert.equal(m.r6.stateDict().scale_x.item(), m.conv.stateDict().scale_o.item());
    assert.ok(losses.every(Number.isFinite));
  });

  test('disableQuant on an nn.Sigmoid keeps it float; clamp bounds iqClamp cannot take stay float; a Softmax warns', () => {
    class M extends nn.Module {
      fc = new nn.Linear(4, 4);
      act = new nn.Sigmoid();
      sm = new nn.Softmax(1);
      forward(x: Tensor): Tensor {
        const y = this.fc(x);
        return this.sm(this.act(y).add(y.clamp(0, 6)).add(y.tanh()));
      }
    }
    const m = new M();
    linger.disableQuant(m.act);
    const w = warningsDuring(() => linger.init(m, { dummyInput: randn([2, 4]) }));
    assert.deepEqual(
      w.map((x) => x.code),
      ['LINGER_FLOAT_LEFT'],
    );
    assert.match(w[0].message, /no fixed-point version of sm \(Softmax\)/);
    linger.calibrate(m, [randn([4, 4])]);
    // the adds of float operands never ran in an iq layer: only the tanh's is a child (linger counts the calls it quantizes)
    assert.deepEqual(
      opLayers(m).map(([p, l]) => `${p}: ${l.typeName()}`),
      ['_linger_round_tensor_iqtanh_0: iqTanhLayer'],
    );
    m.eval();
    const entered = new Set<number>();
    opLayers(m).forEach(([, l], i) => {
      const orig = l.forward.bind(l);
      l.forward = (...a: unknown[]) => {
        entered.add(i);
        return orig(...a);
      };
    });
    const y = tidy(() => m(randn([3, 4])) as Tensor);
    assert.deepEqual(y.shape, [3, 4]);
    // the disabled sigmoid and the clamp(0, 6) ran in float: their outputs carry no scale, so both adds
    // stay float; the tanh of the LinearInt's output is an IQTanh
    assert.deepEqual([...entered], [0]);
  });

  test('state dicts: strict round trip; a float dict loads into the fixed model (the iq buffers restart at 0)', () => {
    manualSeed(6);
    const make = () => {
      const g = new Gate();
      linger.traceLayers(g, g, randn([1, 2, 6, 6]));
      return g;
    };
    const a = make();
    const floatDict = new Gate().stateDict();
    linger.init(a);
    linger.calibrate(a, [randn([4, 2, 6, 6])]);
    const b = make();
    linger.init(b);
    b.loadStateDict(a.stateDict());
    for (const k of ['_linger_round_tensor_iqmul__default_index_1.running_o', 'r6.running_x', 'r6.max_thresh'])
      assert.deepEqual(b.stateDict()[k].dataSync(), a.stateDict()[k].dataSync(), k);
    const c = new Gate();
    linger.init(c, { dummyInput: randn([1, 2, 6, 6]) });
    c.loadStateDict(floatDict);
    assert.deepEqual(opLayers(c), [], 'a float dict has no op layer');
    tidy(() => {
      c(randn([2, 2, 6, 6]));
    });
    assert.equal(c.stateDict()['act._linger_round_tensor_iqsigmoid_0.running_o'].item() > 0, true);
    assert.equal(c.stateDict()['r6.max_thresh'].dtype, 'int32');
  });
});
