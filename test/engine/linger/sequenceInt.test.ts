// LayerNormInt, EmbeddingInt, BmmInt (LINGER-OPS §3–§5): init only when asked, keys, printing,
// strict loads, training sanity, and eval equal to an independent plain-JS integer reference.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { F, initBackend, linger, manualSeed, nn, optim, randn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { withRecordedScales } from '../../../src/engine/linger/ops/base';

before(async () => {
  await initBackend();
});

// ---- the reference: plain JS / BigInt integer arithmetic from LINGER-OPS' formulas -------------------
const f32 = Math.fround;
const B = (bits: number) => 2 ** (bits - 1) - 1;
/** Q_b(x, s) = clamp(⌊x·s + 0.5⌋) (float32 arithmetic, as the chip's input quantizer is specified). */
const code = (v: number, s: number, bits = 8) => Math.min(B(bits), Math.max(-B(bits) - 1, Math.floor(f32(f32(v * s) + 0.5))));
/** dyn: 2^⌊log2(B/max|w|)⌋. */
function dyn(max: number, bits: number): number {
  if (!(max > 0)) return 2 ** bits;
  let e = Math.floor(Math.log2(B(bits) / max));
  while (2 ** (e + 1) * max <= B(bits)) e++;
  while (2 ** e * max > B(bits)) e--;
  return 2 ** e;
}
/** evs: 2^round(log2(B/running)). */
const evs = (r: number, bits: number) => 2 ** Math.round(Math.log2(B(bits) / r));
const maxAbsOf = (v: ArrayLike<number>) => Array.from(v).reduce((a, x) => Math.max(a, Math.abs(x)), 0);
const bigFloorDiv = (a: bigint, b: bigint) => {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
};
const bigClamp = (v: bigint, lo: bigint, hi: bigint) => (v < lo ? lo : v > hi ? hi : v);
/** clamp(⌊acc·2^k + 1/2⌋) for an integer acc. */
function shiftRef(acc: bigint, k: number, bits: number): number {
  const q = k >= 0 ? acc * 2n ** BigInt(k) : bigFloorDiv(acc + 2n ** BigInt(-k - 1), 2n ** BigInt(-k));
  return Number(bigClamp(q, BigInt(-B(bits) - 1), BigInt(B(bits))));
}

interface LnRef {
  out: number[];
  /** the largest exact D = N·Σq² − (Σq)² + E of a row */
  maxD: bigint;
  /** rows whose int32 products N·Σq², (Σq)² wrapped (int8 data: the chip's arithmetic) */
  wrapped: number;
  /** of those, rows whose wrapped D is negative (outside the chip's table: the exact D instead) */
  negative: number;
}
/** The LUNA rounding shift: v >> (s − 1), then its low bit added to v >> s; v for s ≤ 0. */
const lunaShift = (v: bigint, s: number) => (s <= 0 ? v : ((v >> BigInt(s - 1)) & 1n) + (v >> BigInt(s)));
/**
 * LayerNormInt eval on rows of N values x (already at scale sx), weights w, b; output codes at so:
 * thinker v1.1.0's kernel (docs/fixed-point.md#layernormint), eps 1e-5 whatever the layer's; data
 * other than 8 bits: the same kernel with exact sums and products.
 */
function layerNormRef(
  x: ArrayLike<number>,
  n: number,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  s: { sx: number; so: number; dataBits: number; outBits: number },
): LnRef {
  const sw = dyn(maxAbsOf(w), 16);
  const qw = Array.from(w, (v) => BigInt(code(v, sw, 16)));
  const qb = Array.from(b, (v) => bigClamp(BigInt(Math.floor(v * sw * 1024 + 0.5)), -(2n ** 31n), 2n ** 31n - 1n));
  const chip = s.dataBits === 8;
  const table = Array.from({ length: 768 }, (_, i) => BigInt(Math.min(32767, Math.floor(32768 / Math.sqrt(1 + i / 256)))));
  const N = BigInt(n);
  const qx = Math.log2(s.sx);
  const p = chip ? 1 << (2 * qx) : 2 ** (2 * qx);
  const E = BigInt(Math.floor(f32(f32(f32(f32(f32(p) * f32(1e-5)) * n) * n) + 0.5)));
  const shift = 10 + Math.log2(sw) - Math.log2(s.so);
  const i32 = (v: bigint) => (chip ? bigClamp(v, -(2n ** 31n), 2n ** 31n - 1n) : v);
  const out: number[] = [];
  let maxD = 0n,
    wrapped = 0,
    negative = 0;
  for (let r0 = 0; r0 < x.length; r0 += n) {
    const q = Array.from({ length: n }, (_, i) => BigInt(code(x[r0 + i], s.sx, s.dataBits)));
    const s1 = i32(q.reduce((a, v) => a + v, 0n)),
      s2 = i32(q.reduce((a, v) => a + v * v, 0n));
    let D = N * s2 - s1 * s1 + E;
    if (D > maxD) maxD = D;
    if (chip) {
      const wrap = BigInt.asIntN(32, N * s2) - BigInt.asIntN(32, s1 * s1) + E;
      if (wrap !== D) wrapped++;
      if (wrap >= 0n) D = wrap;
      else negative++;
    }
    // the highest non-zero pair of bits of D decides the scaling into [256, 1024)
    let pair = 31;
    while (pair >= 0 && ((D >> BigInt(2 * pair)) & 3n) === 0n) pair--;
    const top = pair < 0 ? 256n : pair >= 4 ? D >> BigInt(2 * pair - 8) : D << BigInt(8 - 2 * pair);
    const tab = table[Number(top) - 256],
      qs = pair + 1 + 14 - 10;
    q.forEach((v, i) => {
      const num = i32(i32(N * v) - s1);
      const y1 = bigClamp(lunaShift(num * tab, qs), -32768n, 32767n);
      out.push(Number(bigClamp(lunaShift(y1 * qw[i] + qb[i], shift), BigInt(-B(s.outBits) - 1), BigInt(B(s.outBits)))));
    });
  }
  return { out, maxD, wrapped, negative };
}

/** Σ qx·qy per batch, then the rounding shift to o_bits. */
function bmmRef(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  [b, n, m, p]: number[],
  s: { sx: number; sy: number; so: number; bits: number },
  xCodes = false,
  yCodes = false,
): number[] {
  const qx = Array.from(x, (v) => (xCodes ? Math.round(v * s.sx) : code(v, s.sx, s.bits)));
  const qy = Array.from(y, (v) => (yCodes ? Math.round(v * s.sy) : code(v, s.sy, s.bits)));
  const k = Math.log2(s.so) - Math.log2(s.sx) - Math.log2(s.sy);
  const out: number[] = [];
  for (let t = 0; t < b; t++)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < p; j++) {
        let acc = 0n;
        for (let c = 0; c < m; c++) acc += BigInt(qx[(t * n + i) * m + c] * qy[(t * m + c) * p + j]);
        out.push(shiftRef(acc, k, 8));
      }
  return out;
}

const buf = (m: nn.Module, k: string) => m.stateDict()[k].item();
const ids = (shape: number[], n: number, seed = 7) =>
  tensor(
    Int32Array.from({ length: shape.reduce((a, v) => a * v, 1) }, (_, i) => (i * seed + 3) % n),
    shape,
    'int32',
  );

// ---- a small attention-like model ----------------------------------------------------------------
class Inner extends nn.Module {
  proj = new nn.Linear(8, 8);
  forward(h: Tensor): Tensor {
    return F.bmm(this.proj(h), h.permute([0, 2, 1]));
  }
}
class Net extends nn.Module {
  emb = new nn.Embedding(20, 8, { paddingIdx: 0 });
  ln = new nn.LayerNorm(8);
  inner = new Inner();
  forward(idx: Tensor): Tensor {
    const h = this.ln(this.emb(idx));
    const a = this.inner(h); // [b, t, t]
    return F.bmm(a, h); // the root's own bmm: [b, t, 8]
  }
}
function traced(seed = 1): Net {
  manualSeed(seed);
  const m = new Net();
  linger.traceLayers(m, m, ids([2, 5], 20));
  return m;
}
const asked = { quantModules: ['LayerNorm', 'Embedding'] as ('LayerNorm' | 'Embedding')[], bmm: true };
const types = (m: nn.Module) => Object.fromEntries([...m.namedModules()].filter(([p]) => p).map(([p, x]) => [p, x.typeName()]));

describe('init: LayerNorm, Embedding and bmm only when asked', () => {
  test('by default they stay in float (as in linger)', () => {
    const m = traced();
    linger.init(m);
    assert.deepEqual(types(m), { emb: 'Embedding', ln: 'LayerNorm', inner: 'Inner', 'inner.proj': 'LinearInt' });
  });

  test('quantModules and bmm: Int layers, a BmmInt per F.bmm in call order', () => {
    const m = traced();
    linger.init(m, asked);
    // as in linger, a BmmInt is a child of the module whose forward calls the bmm, from its first call
    assert.deepEqual(types(m), { emb: 'EmbeddingInt', ln: 'LayerNormInt', inner: 'Inner', 'inner.proj': 'LinearInt' });
    m(ids([2, 5], 20));
    assert.deepEqual(types(m), {
      emb: 'EmbeddingInt',
      ln: 'LayerNormInt',
      inner: 'Inner',
      'inner.proj': 'LinearInt',
      'inner._linger_round_tensor_function_bmm_0': 'BmmInt',
      _linger_round_tensor_function_bmm_0: 'BmmInt',
    });
    assert.equal(m.stage(), 'fixed');
    assert.throws(() => linger.init(traced(), { quantModules: ['GRU' as 'LayerNorm'] }), { message: /quantModules: unknown type 'GRU'/ });
  });

  test('disableQuant and quantModule apply to them; a bmm belongs to the module whose forward calls it', () => {
    const m = traced();
    linger.disableQuant(m.emb);
    linger.quantModule(m.ln, { dataBits: 6, outBits: 7, parameterBits: 4 });
    linger.quantModule(m, { dataBits: 5 }); // the root's own bmm
    linger.disableQuant(m.inner); // its bmm stays float (its Linear is not the module itself: quantized)
    linger.init(m, asked);
    assert.equal(m.emb.typeName(), 'Embedding');
    const ln = m.ln as nn.LayerNormInt;
    assert.deepEqual([ln.dataBits, ln.parameterBits, ln.outBits], [6, 16, 7], 'parameter_bits is always 16');
    assert.equal(m.inner.proj.typeName(), 'LinearInt');
    // the inner bmm runs in float, the root's in BmmInt: the output carries BmmInt's scale
    linger.calibrate(m, [ids([2, 5], 20, 3), ids([2, 5], 20, 11)]);
    assert.deepEqual(
      Object.entries(types(m))
        .filter(([, t]) => t === 'BmmInt')
        .map(([p]) => p),
      ['_linger_round_tensor_function_bmm_0'],
    );
    assert.equal((m as unknown as Record<string, nn.BmmInt>)['_linger_round_tensor_function_bmm_0'].dataBits, 5);
    m.eval();
    const y = withRecordedScales(() => m(ids([2, 5], 20)) as Tensor);
    assert.equal(y.quantScale, buf(m, '_linger_round_tensor_function_bmm_0.scale_o'));
  });
});

describe('keys, printing, loads', () => {
  test("state-dict keys are linger's buffer names; printing is the layer's repr then its bits", () => {
    const m = traced();
    linger.init(m, asked);
    m(ids([2, 5], 20));
    const keys = Object.keys(m.stateDict());
    assert.deepEqual(
      keys.filter((k) => k.startsWith('ln.')),
      [
        'ln.weight',
        'ln.bias',
        'ln.running_x',
        'ln.running_normal',
        'ln.running_w',
        'ln.running_o',
        'ln.scale_x',
        'ln.scale_normal',
        'ln.scale_w',
        'ln.scale_o',
      ],
    );
    assert.deepEqual(
      keys.filter((k) => k.startsWith('emb.')),
      ['emb.weight', 'emb.running_x', 'emb.running_w', 'emb.running_o', 'emb.scale_x', 'emb.scale_w', 'emb.scale_o'],
    );
    assert.deepEqual(
      keys.filter((k) => k.startsWith('inner._linger_round_tensor_function_bmm_0.')),
      ['running_x', 'running_y', 'running_o', 'scale_x', 'scale_y', 'scale_o'].map((k) => `inner._linger_round_tensor_function_bmm_0.${k}`),
    );
    assert.equal(buf(m, 'ln.scale_normal'), 1024);
    // linger 1.1.1's LayerNormInt.extra_repr (docs/fixed-point.md#conformance-with-linger-111)
    assert.equal(
      m.ln.toString(),
      'LayerNormInt((8,), eps=1e-05, elementwise_affine=True ,clamp_data:None,clamp_weight:None,clamp_bias:None,ahead_relu:False,data_bits:8, parameter_bits:16, o_bits:8)',
    );
    assert.equal(
      m.emb.toString(),
      'EmbeddingInt(20, 8, padding_idx=0,clamp_data:None,clamp_weight:None,clamp_bias:None,data_bits:8,parameter_bits:8,o_bits:8)',
    );
    assert.equal(m.getSubmodule('inner._linger_round_tensor_function_bmm_0').toString(), 'BmmInt()');
  });

  test('fixed dicts load strict and reproduce eval exactly; float dicts load with the statistics reset; bad dicts change nothing', () => {
    const a = traced(2);
    linger.init(a, asked);
    const opt = new optim.SGD(a.parameters(), { lr: 0.05 });
    for (let i = 0; i < 3; i++)
      opt.step(() => {
        const y = a(ids([4, 5], 20, 3 + 2 * i)) as Tensor;
        return y.mul(y).mean();
      });
    const b = traced(3);
    linger.init(b, asked);
    b.loadStateDict(a.stateDict());
    a.eval();
    b.eval();
    const x = ids([3, 5], 20, 9);
    assert.deepEqual((b(x) as Tensor).dataSync(), (a(x) as Tensor).dataSync());
    // a float dict: same parameter keys, quantizer statistics start empty
    const f = new Net();
    const c = traced(4);
    linger.init(c, asked);
    c.loadStateDict(f.stateDict());
    assert.deepEqual(c.stateDict()['ln.weight'].dataSync(), f.stateDict()['ln.weight'].dataSync());
    assert.equal(buf(c, 'ln.running_x'), 0);
    c.eval();
    assert.throws(() => c(x), { name: 'NotCalibratedError', message: /EmbeddingInt at 'emb': no data statistics yet \(running_o = 0\)/ });
    // strict: a fixed dict without a BmmInt's buffer names it and changes nothing
    const sd = { ...a.stateDict() };
    delete (sd as Record<string, Tensor>)['_linger_round_tensor_function_bmm_0.running_y'];
    const before = buf(b, 'inner._linger_round_tensor_function_bmm_0.running_x');
    assert.throws(() => b.loadStateDict(sd), { message: /missing keys: _linger_round_tensor_function_bmm_0\.running_y/ });
    assert.equal(buf(b, 'inner._linger_round_tensor_function_bmm_0.running_x'), before);
  });
});

test('a checkpoint replays init with them (module tree) and its dict loads strict', async () => {
  const a = traced(12);
  linger.quantModule(a.ln, { outBits: 6 });
  linger.init(a, asked);
  linger.calibrate(a, [ids([4, 5], 20, 3)]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-seqint-'));
  try {
    const file = await linger.save(a, path.join(dir, 'fixed.safetensors'));
    const ck = await linger.loadCheckpoint(file);
    const b = new Net();
    linger.applyCheckpointTransforms(b, ck.metadata, ids([2, 5], 20), file);
    assert.equal((b.ln as nn.LayerNormInt).outBits, 6);
    b.loadStateDict(ck.stateDict);
    // the op layers become children as the dict's keys say
    assert.deepEqual(types(b), types(a));
    a.eval();
    b.eval();
    const x = ids([3, 5], 20, 9);
    assert.deepEqual((b(x) as Tensor).dataSync(), (a(x) as Tensor).dataSync());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('training: fake quantization, straight-through gradients', () => {
  test("LayerNormInt: values on the output grid, statistics updated, gradients close to float LayerNorm's", () => {
    manualSeed(5);
    const fl = new nn.LayerNorm(16);
    fl.loadStateDict({
      weight: tensor(Float32Array.from({ length: 16 }, (_, i) => 0.5 + i / 16)),
      bias: tensor(Float32Array.from({ length: 16 }, (_, i) => (i - 8) / 20)),
    });
    const q = new nn.Sequential(new nn.LayerNorm(16));
    q.at(0).loadStateDict(fl.stateDict());
    linger.init(q, { quantModules: ['LayerNorm'] });
    const ln = q.at(0) as nn.LayerNormInt;
    const xv = randn([6, 16]).dataSync() as Float32Array;
    const g = tf.randomNormal([6, 16], 0, 1, 'float32', 3);
    const run = (layer: nn.Module) => {
      const x = new nn.Parameter(tf.tensor(xv, [6, 16]));
      const params = layer.namedParameters().map(([, p]) => p.variable);
      let y!: Float32Array;
      const { grads } = tf.variableGrads(() => {
        const out = layer(x) as Tensor;
        y = out.dataSync() as Float32Array;
        return tf.sum(tf.mul(out.logical(), g)) as tf.Scalar;
      }, [x.variable, ...params]);
      return { y, gx: grads[x.variable.name].dataSync(), gw: grads[params[0].name].dataSync(), gb: grads[params[1].name].dataSync() };
    };
    const a = run(fl),
      b = run(ln);
    const so = buf(ln, 'scale_o');
    assert.ok(
      Array.from(b.y).every((v) => Number.isInteger(v * so)),
      'outputs are codes / s_o',
    );
    const err = Math.max(...Array.from(a.y, (v, i) => Math.abs(v - b.y[i])));
    assert.ok(err < 4 / so, `|float − fake-quant| = ${err}`);
    assert.equal(buf(ln, 'running_x'), f32((0.1 * 127) / dyn(maxAbsOf(xv), 8)));
    assert.equal(buf(ln, 'running_w'), f32((0.1 * 32767) / dyn(1.5 - 1 / 16, 16)));
    assert.ok(buf(ln, 'running_o') > 0);
    const cos = (u: ArrayLike<number>, v: ArrayLike<number>) => {
      let d = 0,
        nu = 0,
        nv = 0;
      for (let i = 0; i < u.length; i++) {
        d += u[i] * v[i];
        nu += u[i] * u[i];
        nv += v[i] * v[i];
      }
      return d / Math.sqrt(nu * nv);
    };
    assert.ok(cos(a.gx, b.gx) > 0.98, `grad x cosine ${cos(a.gx, b.gx)}`);
    assert.ok(cos(a.gw, b.gw) > 0.98, `grad w cosine ${cos(a.gw, b.gw)}`);
    assert.deepEqual(Array.from(b.gb), Array.from(a.gb), 'the bias gradient is Σ g, straight through');
  });

  test('EmbeddingInt: rows of the quantized weight at s_w; the gradient is the scatter-add (none for the padding row)', () => {
    manualSeed(6);
    const m = new nn.Sequential(new nn.Embedding(6, 3, { paddingIdx: 1 }));
    linger.init(m, { quantModules: ['Embedding'] });
    const e = m.at(0) as nn.EmbeddingInt;
    const w = e.weight.dataSync();
    const sw = dyn(maxAbsOf(w), 8);
    const idx = tensor([0, 1, 4, 4, 1, 2], [2, 3], 'int32');
    const g = tf.tensor(
      Float32Array.from({ length: 18 }, (_, i) => i + 1),
      [2, 3, 3],
    );
    let y!: Tensor;
    const { grads } = tf.variableGrads(() => {
      y = (e(idx) as Tensor).keep();
      return tf.sum(tf.mul(y.logical(), g)) as tf.Scalar;
    }, [e.weight.variable]);
    assert.equal(y.quantScale, sw);
    const rows = [0, 1, 4, 4, 1, 2];
    assert.deepEqual(
      Array.from(y.dataSync()),
      rows.flatMap((r) => [0, 1, 2].map((j) => code(w[r * 3 + j], sw) / sw)),
    );
    const gw = grads[e.weight.variable.name].dataSync();
    const want = new Float32Array(18);
    rows.forEach((r, k) => {
      if (r !== 1) for (let j = 0; j < 3; j++) want[r * 3 + j] += k * 3 + j + 1;
    });
    assert.deepEqual(Array.from(gw), Array.from(want));
    assert.equal(buf(e, 'running_w'), f32((0.1 * 127) / sw));
    assert.equal(buf(e, 'running_o'), buf(e, 'running_w'), 'linger copies running_w to running_o');
  });

  test('BmmInt: both operands fake-quantized; gradients straight through to both', () => {
    manualSeed(7);
    const bm = new nn.BmmInt({ dataBits: 8, parameterBits: 8, outBits: 8 });
    const xa = new nn.Parameter(tf.randomNormal([2, 3, 4], 0, 1, 'float32', 1)),
      ya = new nn.Parameter(tf.randomNormal([2, 4, 5], 0, 1, 'float32', 2));
    const g = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 4);
    let z!: Float32Array, zf!: Float32Array, so!: number;
    const q = tf.variableGrads(() => {
      const o = bm(xa, ya) as Tensor;
      z = o.dataSync() as Float32Array;
      so = o.quantScale!;
      return tf.sum(tf.mul(o.logical(), g)) as tf.Scalar;
    }, [xa.variable, ya.variable]);
    const f = tf.variableGrads(() => {
      const o = F.bmm(xa, ya);
      zf = o.dataSync() as Float32Array;
      return tf.sum(tf.mul(o.logical(), g)) as tf.Scalar;
    }, [xa.variable, ya.variable]);
    // training leaves scale_* alone (linger fills them only while exporting); the operands' scales
    // are the batch's, their running values B/s
    assert.deepEqual([buf(bm, 'scale_x'), buf(bm, 'scale_y'), buf(bm, 'scale_o')], [0, 0, 0]);
    const sx = dyn(maxAbsOf(xa.dataSync()), 8),
      sy = dyn(maxAbsOf(ya.dataSync()), 8);
    assert.equal(buf(bm, 'running_x'), Math.fround(0.1 * (127 / sx)));
    assert.equal(buf(bm, 'running_y'), Math.fround(0.1 * (127 / sy)));
    // the output scale comes from the batch of bmm(fq(x), fq(y))
    const fx = Array.from(xa.dataSync(), (v) => code(v, sx) / sx),
      fy = Array.from(ya.dataSync(), (v) => code(v, sy) / sy);
    let zmax = 0;
    for (let t = 0; t < 2; t++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 5; j++) {
          let acc = 0;
          for (let c = 0; c < 4; c++) acc += fx[(t * 3 + i) * 4 + c] * fy[(t * 4 + c) * 5 + j];
          zmax = Math.max(zmax, Math.abs(acc));
        }
    assert.equal(so, dyn(zmax, 8));
    assert.ok(Array.from(z).every((v) => Number.isInteger(v * so)));
    assert.ok(Math.max(...Array.from(z, (v, i) => Math.abs(v - zf[i]))) < 0.1, 'close to the float bmm');
    for (const v of [xa, ya]) {
      const a = q.grads[v.variable.name].dataSync(),
        b = f.grads[v.variable.name].dataSync();
      assert.ok(Math.max(...Array.from(a, (u, i) => Math.abs(u - b[i]))) < 0.2, 'gradient close to float');
      assert.ok(Array.from(a).some((u) => u !== 0));
    }
    assert.equal(buf(bm, 'running_x'), f32((0.1 * 127) / sx));
  });
});

describe('eval is integer-exact (independent reference)', () => {
  test('LayerNormInt over 1024 features: D passes 2^31; equals the reference bit for bit', () => {
    manualSeed(8);
    const n = 1024;
    const m = new nn.Sequential(new nn.LayerNorm([16, 64], { eps: 1e-3 }));
    linger.init(m, { quantModules: ['LayerNorm'] });
    const w = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1.7),
      b = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.3) * 0.4);
    m.at(0).loadStateDict({ weight: tensor(w, [16, 64]), bias: tensor(b, [16, 64]) }, { strict: false });
    linger.calibrate(
      m,
      Array.from({ length: 20 }, () => randn([3, 16, 64])),
    );
    m.eval();
    const x = randn([3, 16, 64]).mul(2);
    const y = m(x) as Tensor;
    const sx = evs(buf(m, '0.running_x'), 8),
      so = evs(buf(m, '0.running_o'), 8);
    assert.equal(buf(m, '0.scale_x'), sx);
    assert.equal(y.quantScale, so);
    const ref = layerNormRef(x.dataSync(), n, w, b, { sx, so, dataBits: 8, outBits: 8 });
    assert.ok(ref.maxD > 2n ** 31n, `D = ${ref.maxD}`);
    assert.equal(ref.wrapped, 3, "every row's N·Σq² wraps in the chip's int32");
    const got = Array.from(y.dataSync(), (v) => v * so);
    assert.deepEqual(got, ref.out);
    assert.ok(new Set(ref.out).size > 50, 'a non-trivial output');
  });

  test('LayerNormInt with 16-bit data over 4096 features: D passes 2^53 (exact integer arithmetic)', () => {
    const n = 4096;
    const m = new nn.Sequential(new nn.LayerNorm(n));
    linger.quantModule(m.at(0), { dataBits: 16, outBits: 16 });
    linger.init(m, { quantModules: ['LayerNorm'] });
    const w = Float32Array.from({ length: n }, (_, i) => 1 + ((i * 13) % 7) / 10),
      b = Float32Array.from({ length: n }, (_, i) => ((i * 5) % 9) / 50 - 0.08);
    m.at(0).loadStateDict({ weight: tensor(w), bias: tensor(b) }, { strict: false });
    const xv = Float32Array.from({ length: 2 * n }, (_, i) => Math.sin(i * 0.37) * (i < n ? 3 : 0.5) + ((i * 7919) % 101) / 300);
    linger.calibrate(m, [tensor(xv, [2, n])]);
    m.eval();
    const y = m(tensor(xv, [2, n])) as Tensor;
    const sx = evs(buf(m, '0.running_x'), 16),
      so = evs(buf(m, '0.running_o'), 16);
    const ref = layerNormRef(xv, n, w, b, { sx, so, dataBits: 16, outBits: 16 });
    assert.ok(ref.maxD > 2n ** 53n, `D = ${ref.maxD}`);
    assert.deepEqual(
      Array.from(y.dataSync(), (v) => v * so),
      ref.out,
    );
  });

  test('EmbeddingInt: codes of the current weight at its scale', () => {
    manualSeed(9);
    const m = new nn.Sequential(new nn.Embedding(30, 6));
    linger.quantModule(m.at(0), { parameterBits: 6 });
    linger.init(m, { quantModules: ['Embedding'] });
    m.eval();
    assert.throws(() => m(ids([2, 3], 30)), { name: 'NotCalibratedError', message: /running_o = 0/ });
    linger.calibrate(m, [ids([2, 3], 30)]);
    m.eval();
    const w = m.at(0).stateDict().weight.dataSync();
    const sw = dyn(maxAbsOf(w), 6);
    const idx = ids([4, 7], 30, 11);
    const y = m(idx) as Tensor;
    assert.equal(y.quantScale, sw);
    const got = Array.from(y.dataSync(), (v) => v * sw);
    const want = Array.from(idx.dataSync()).flatMap((r) => Array.from({ length: 6 }, (_, j) => code(w[r * 6 + j], sw, 6)));
    assert.deepEqual(got, want);
  });

  test('BmmInt: float operands quantized at the eval scales; an inner dimension past the 2^24 bound stays exact', () => {
    const bm = new nn.BmmInt({ dataBits: 8, parameterBits: 8, outBits: 8 });
    const shape = [2, 3, 2048, 4];
    const mk = (s: number[], seed: number) =>
      tensor(
        Float32Array.from({ length: s.reduce((a, v) => a * v, 1) }, (_, i) => (((i * seed) % 255) - 127) / 100),
        s,
      );
    const x = mk([2, 3, 2048], 37),
      y = mk([2, 2048, 4], 91);
    tidy(() => {
      bm(x, y);
    }); // training: statistics
    bm.eval();
    const z = bm(x, y) as Tensor;
    const sx = evs(buf(bm, 'running_x'), 8),
      sy = evs(buf(bm, 'running_y'), 8),
      so = evs(buf(bm, 'running_o'), 8);
    assert.ok(2048 * 127 * 127 > 2 ** 24);
    assert.equal(z.quantScale, so);
    assert.deepEqual(
      Array.from(z.dataSync(), (v) => v * so),
      bmmRef(x.dataSync(), y.dataSync(), shape, { sx, sy, so, bits: 8 }),
    );
  });

  test('the whole model (Embedding → LayerNorm → Linear, bmm) equals the reference chain', () => {
    const m = traced(10);
    linger.init(m, asked);
    const opt = new optim.SGD(m.parameters(), { lr: 0.05 });
    for (let i = 0; i < 4; i++)
      opt.step(() => {
        const y = m(ids([4, 5], 20, 3 + 2 * i)) as Tensor;
        return y.mul(y).mean();
      });
    linger.calibrate(
      m,
      Array.from({ length: 10 }, (_, i) => ids([4, 5], 20, 3 + i)),
    );
    m.eval();
    const idx = ids([2, 5], 20, 13);
    // the scale_* buffers hold the eval scales only where an export records them
    const out = withRecordedScales(() => m(idx) as Tensor);
    const sd = m.stateDict();
    const v = (k: string) => sd[k].dataSync();
    // embedding: codes at s_w
    const we = v('emb.weight');
    const se = dyn(maxAbsOf(we), 8);
    const e = Array.from(idx.dataSync()).flatMap((r) => Array.from({ length: 8 }, (_, j) => code(we[r * 8 + j], se) / se));
    // layer norm on the embedding codes (IQTensor: its scale is s_w)
    const so = sd['ln.scale_o'].item();
    assert.equal(sd['ln.scale_x'].item(), se);
    const h = layerNormRef(e, 8, v('ln.weight'), v('ln.bias'), { sx: se, so, dataBits: 8, outBits: 8 }).out.map((q) => q / so);
    // proj: LinearInt on h's codes
    const pw = v('inner.proj.weight'),
      pb = v('inner.proj.bias');
    const spw = dyn(maxAbsOf(pw), 8),
      spo = sd['inner.proj.scale_o'].item();
    assert.equal(sd['inner.proj.scale_x'].item(), so);
    const proj: number[] = [];
    for (let r = 0; r < 10; r++)
      for (let o = 0; o < 8; o++) {
        let acc = BigInt(Math.floor(f32(f32(pb[o] * so * spw) + 0.5)));
        for (let i = 0; i < 8; i++) acc += BigInt(Math.round(h[r * 8 + i] * so) * code(pw[o * 8 + i], spw));
        proj.push(shiftRef(acc, Math.log2(spo) - Math.log2(so) - Math.log2(spw), 8) / spo);
      }
    // bmm 0: proj [2,5,8] × hᵀ [2,8,5]; bmm 1: a [2,5,5] × h [2,5,8]
    const hT = Array.from({ length: 2 * 8 * 5 }, (_, i) => {
      const t = Math.floor(i / 40),
        c = Math.floor((i % 40) / 5),
        j = i % 5;
      return h[(t * 5 + j) * 8 + c];
    });
    const s0 = { sx: spo, sy: so, so: sd['inner._linger_round_tensor_function_bmm_0.scale_o'].item(), bits: 8 };
    const a = bmmRef(proj, hT, [2, 5, 8, 5], s0, true, true).map((q) => q / s0.so);
    const s1 = { sx: s0.so, sy: so, so: sd['_linger_round_tensor_function_bmm_0.scale_o'].item(), bits: 8 };
    const want = bmmRef(a, h, [2, 5, 5, 8], s1, true, true);
    assert.equal(out.quantScale, s1.so);
    assert.deepEqual(
      Array.from(out.dataSync(), (q) => q * s1.so),
      want,
    );
  });
});
