// The fixed stage (SPEC §5, §6): scales, rounding, integer-exact eval, iqAdd, stage loads.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DemoCNN, F, initBackend, linger, manualSeed, nn, optim, rand, randn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { evalScale, fakeQuant, floorLog2, quantizeCodes, requantize, trainScale, updatedRunning } from '../../../src/engine/quant/qvalue';
import { warningsDuring } from '../warnings';
import { withRecordedScales } from '../../../src/engine/linger/ops/base';

before(async () => {
  await initBackend();
});

const labels = (n: number) =>
  tensor(
    Int32Array.from({ length: n }, (_, i) => (i * 3) % 10),
    [n],
    'int32',
  );
/** A DemoCNN through the whole pipeline, trained a few QAT steps on random data. */
function fixedDemo(seed: number, steps = 3): DemoCNN {
  manualSeed(seed);
  const m = new DemoCNN();
  linger.traceLayers(m, m, randn([1, 1, 28, 28]));
  linger.normalizeLayers(m);
  linger.init(m);
  const opt = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
  for (let i = 0; i < steps; i++) {
    const x = rand([16, 1, 28, 28]);
    opt.step(() => F.crossEntropy(m(x), labels(16)));
    x.dispose();
  }
  return m;
}

describe('QValue scales and rounding (hand-computed)', () => {
  test('power-of-two scales', () => {
    assert.equal(trainScale(0.9, 8), 128); // 127/0.9 = 141.1 → 2^7
    assert.equal(trainScale(1, 8), 64); // 127 → 2^6
    assert.equal(trainScale(127 / 64, 8), 64); // exactly 2^6: floor keeps it
    assert.equal(trainScale(3, 4), 2); // B = 7: 7/3 = 2.33 → 2^1
    assert.equal(trainScale(0, 8), 256); // all-zero tensor: 2^bits
    assert.equal(evalScale(127 / 64, 8), 64);
    assert.equal(evalScale(1.4, 8), 128); // log2(127/1.4) = 6.503 → 7
    assert.equal(evalScale(1.5, 8), 64); // log2(84.7) = 6.40 → 6
    assert.equal(floorLog2(8), 3);
    assert.equal(floorLog2(7.999999), 2);
    assert.equal(updatedRunning(0, 64, 8), Math.fround((0.1 * 127) / 64)); // float32, as linger's ScalerBuffer
  });

  test('codes: floor(x·s + 0.5) rounds half up, clamps to [−B−1, B]', () => {
    const x = tf.tensor([2.5, -2.5, 0.49, 200, -200, -127.5, 126.6]);
    assert.deepEqual(Array.from(quantizeCodes(x, 1, 8).dataSync()), [3, -2, 0, 127, -128, -127, 127]);
    assert.deepEqual(Array.from(quantizeCodes(tf.tensor([0.3, -0.3]), 4, 4).dataSync()), [1, -1]);
  });

  test('fake quantization: straight-through inside the range, zero where clamped', () => {
    const v = tf.variable(tf.tensor([0.5, 1.0, 3.0, -3.0]));
    const g = tf.grads((a: tf.Tensor) => tf.sum(fakeQuant(a, 64, 8)))([v])[0];
    assert.deepEqual(Array.from(g.dataSync()), [1, 1, 0, 0]); // 3·64 = 192 > 127
    assert.deepEqual(Array.from(fakeQuant(v, 64, 8).dataSync()), [0.5, 1, 127 / 64, -2]);
  });

  test('requantization by shifting, exact beyond 2^24', () => {
    const acc = tf.tensor([1000, -1000, 24, -24, 2 ** 26 + 3, 5], [6], 'int32');
    assert.deepEqual(Array.from(requantize(acc, -4, 8).dataSync()), [63, -62, 2, -1, 127, 0]); // (1000+8)>>4 = 63; (−1000+8)>>4 = −62
    assert.deepEqual(Array.from(requantize(tf.tensor([100, 3, -5], [3], 'int32'), 1, 8).dataSync()), [127, 6, -10]);
    const big = tf.tensor([2 ** 28 + 2 ** 20 + 1], [1], 'int32'); // not a float32 integer; shifts exactly
    assert.deepEqual(Array.from(requantize(big, -22, 8).dataSync()), [64]); // 2^28/2^22 = 64, + 2^20/2^22 = .25 → 64
  });
});

describe('init and the Int layers', () => {
  test('the pipeline replaces layers (fused convs fold their BN) and keeps a stable key layout', () => {
    const m = fixedDemo(1, 0);
    assert.deepEqual(Object.fromEntries([...m.namedModules()].filter(([p]) => p).map(([p, x]) => [p, x.typeName()])), {
      conv1: 'Conv2dInt',
      bn1: 'EmptyBatchNorm',
      relu1: 'ReLU',
      pool1: 'MaxPool2d',
      conv2: 'Conv2dInt',
      bn2: 'EmptyBatchNorm',
      relu2: 'ReLU',
      pool2: 'MaxPool2d',
      flatten: 'Flatten',
      fc1: 'LinearInt',
      relu3: 'ReLU',
      fc2: 'LinearInt',
    });
    assert.deepEqual(
      Object.keys(m.stateDict()).filter((k) => k.startsWith('conv1.')),
      [
        'conv1.weight',
        'conv1.bias',
        'conv1.running_x',
        'conv1.running_w',
        'conv1.running_o',
        'conv1.scale_x',
        'conv1.scale_w',
        'conv1.scale_o',
      ],
    );
    assert.equal(m.stage(), 'fixed');
    assert.equal((m.conv1 as nn.Conv2dInt).aheadRelu, true);
    assert.equal((m.fc2 as nn.LinearInt).aheadRelu, false);
  });

  test('eval before any statistics names the layer; calibrate collects them', () => {
    const m = fixedDemo(2, 0);
    m.eval();
    assert.throws(() => m(rand([2, 1, 28, 28])), {
      name: 'NotCalibratedError',
      message:
        "Conv2dInt at 'conv1': no data statistics yet (running_x = 0): train in the fixed stage or run linger.calibrate(model, batches) before eval or export",
    });
    const before = m.stateDict()['conv1.weight'].dataSync().slice();
    assert.equal(linger.calibrate(m, [rand([8, 1, 28, 28]), rand([8, 1, 28, 28])]), 2);
    assert.equal(m.training, false, 'calibrate restores the mode');
    assert.deepEqual(m.stateDict()['conv1.weight'].dataSync(), before, 'calibrate changes no weight');
    assert.ok(m.stateDict()['conv1.running_x'].item() > 0);
    const y = tidy(() => m(rand([2, 1, 28, 28])) as Tensor);
    assert.deepEqual(y.shape, [2, 10]);
  });

  test('transform order: init twice, trace or normalize after init are errors', () => {
    const m = fixedDemo(3, 0);
    assert.throws(() => linger.init(m), { message: /already initialized for fixed point; init runs once/ });
    assert.throws(() => linger.traceLayers(m, m, randn([1, 1, 28, 28])), { message: /linger.traceLayers after linger.init/ });
    assert.throws(() => linger.normalizeLayers(m), { message: /linger.normalizeLayers after linger.init/ });
  });

  test('ahead-ReLU takes the output scale from the positive range only', () => {
    const make = (ahead: boolean) => {
      manualSeed(9);
      const m = new nn.Sequential(new nn.Conv2d(2, 3, 1, { bias: false }));
      (m.at(0) as { aheadRelu?: boolean }).aheadRelu = ahead;
      linger.init(m);
      m.at(0).loadStateDict({ weight: tensor([1, 0, 0, 1, -1, -1], [3, 2, 1, 1]) }, { strict: false });
      return m;
    };
    // outputs: ch0 = a ∈ [0, 0.5], ch1 = b ∈ [0, 0.5], ch2 = −(a+b) ∈ [−1, 0]
    const x = tensor(
      Float32Array.from({ length: 2 * 2 * 4 }, (_, i) => (i % 4) / 8),
      [2, 2, 2, 2],
    );
    const scales = [false, true].map((ahead) => {
      const m = make(ahead);
      // training leaves scale_o alone (linger): the output carries the scale
      return tidy(() => (m(x) as Tensor).quantScale!);
    });
    assert.deepEqual(scales, [trainScale(0.75, 8), trainScale(0.375, 8)]); // max|y| vs max(y, 0)
    assert.ok(scales[1] > scales[0]);
  });

  test('disableQuant keeps a layer in float; quantModule sets its bits; a Softmax stays float with a warning naming it', () => {
    class M extends nn.Module {
      a = new nn.Linear(4, 4);
      b = new nn.Linear(4, 4);
      c = new nn.Linear(4, 2);
      act = new nn.Softmax(1); // (an nn.Sigmoid has a fixed-point version now: iqSigmoid, see iqOps.test.ts)
      forward(x: Tensor): Tensor {
        return this.act(this.c(this.b(this.a(x))));
      }
    }
    const m = new M();
    linger.disableQuant(m.b);
    linger.quantModule(m.c, { parameterBits: 4, dataBits: 6 });
    const w = warningsDuring(() => linger.init(m, { dummyInput: randn([2, 4]) }));
    assert.equal(m.a.typeName(), 'LinearInt');
    assert.equal(m.b.typeName(), 'Linear');
    assert.equal((m.c as nn.LinearInt).parameterBits, 4);
    assert.equal((m.c as nn.LinearInt).dataBits, 6);
    assert.deepEqual(
      w.map((x) => x.code),
      ['LINGER_FLOAT_LEFT'],
    );
    assert.match(w[0].message, /no fixed-point version of act \(Softmax\); left in float/);
    assert.throws(() => linger.quantModule(m.a, { outBits: 1 }), { message: /outBits must be an integer from 2 to 16, got 1/ });
  });
});

// ---- integer reference: plain JS integer arithmetic, written independently of the engine ----------
const f32 = Math.fround;
const code = (v: number, s: number, bits = 8) =>
  Math.min(2 ** (bits - 1) - 1, Math.max(-(2 ** (bits - 1)), Math.floor(f32(f32(v * s) + 0.5))));
/** ⌊acc·2^k + 1/2⌋ clamped, for integer acc: the chip's rounding shift. */
function shift(acc: number, k: number, bits = 8): number {
  const q = k >= 0 ? acc * 2 ** k : Math.floor((acc + 2 ** (-k - 1)) / 2 ** -k);
  return Math.min(2 ** (bits - 1) - 1, Math.max(-(2 ** (bits - 1)), q));
}
function scalesOf(m: nn.Module, p: string) {
  const sd = m.stateDict();
  return {
    sx: sd[`${p}.scale_x`].item(),
    sw: sd[`${p}.scale_w`].item(),
    so: sd[`${p}.scale_o`].item(),
    w: sd[`${p}.weight`].dataSync(),
    b: sd[`${p}.bias`].dataSync(),
  };
}
/** conv2d 3×3, pad 1, stride 1 on codes [C][H][W] (NCHW, one image). */
function convRef(
  q: number[][][],
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  s: { sx: number; sw: number; so: number },
  cout: number,
): number[][][] {
  const cin = q.length,
    h = q[0].length,
    wd = q[0][0].length;
  const qw = Array.from(w, (v: number) => code(v, s.sw));
  const k = Math.log2(s.so) - Math.log2(s.sx) - Math.log2(s.sw);
  return Array.from({ length: cout }, (_, o) =>
    Array.from({ length: h }, (_, y) =>
      Array.from({ length: wd }, (_, x) => {
        let acc = Math.floor(f32(f32(b[o] * s.sx * s.sw) + 0.5));
        for (let c = 0; c < cin; c++)
          for (let i = 0; i < 3; i++)
            for (let j = 0; j < 3; j++) {
              const yy = y + i - 1,
                xx = x + j - 1;
              if (yy >= 0 && yy < h && xx >= 0 && xx < wd) acc += q[c][yy][xx] * qw[((o * cin + c) * 3 + i) * 3 + j];
            }
        return shift(acc, k);
      }),
    ),
  );
}
const reluPool = (q: number[][][]) =>
  q.map((ch) =>
    Array.from({ length: ch.length / 2 }, (_, y) =>
      Array.from({ length: ch[0].length / 2 }, (_, x) =>
        Math.max(0, ch[2 * y][2 * x], ch[2 * y][2 * x + 1], ch[2 * y + 1][2 * x], ch[2 * y + 1][2 * x + 1]),
      ),
    ),
  );
function linearRef(
  q: number[],
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  s: { sx: number; sw: number; so: number },
  out: number,
): number[] {
  const k = Math.log2(s.so) - Math.log2(s.sx) - Math.log2(s.sw);
  return Array.from({ length: out }, (_, o) => {
    let acc = Math.floor(f32(f32(b[o] * s.sx * s.sw) + 0.5));
    for (let i = 0; i < q.length; i++) acc += q[i] * code(w[o * q.length + i], s.sw);
    return shift(acc, k);
  });
}

describe('eval is integer-exact', () => {
  test('the demo CNN equals an independent integer reference, bit for bit', () => {
    const m = fixedDemo(4, 4);
    m.eval();
    const n = 3;
    const x = rand([n, 1, 28, 28]);
    // the scale_* buffers hold the eval scales only where an export records them
    const y = withRecordedScales(() => m(x) as Tensor);
    const c1 = scalesOf(m, 'conv1'),
      c2 = scalesOf(m, 'conv2'),
      l1 = scalesOf(m, 'fc1'),
      l2 = scalesOf(m, 'fc2');
    assert.equal(c2.sx, c1.so, "conv2 takes conv1's codes with their scale (IQTensor)");
    assert.equal(l1.sx, c2.so);
    assert.equal(y.quantScale, l2.so);
    const xs = x.dataSync();
    const got = Array.from(y.dataSync(), (v) => v * l2.so);
    for (let i = 0; i < n; i++) {
      const img = [Array.from({ length: 28 }, (_, r) => Array.from({ length: 28 }, (_, c) => code(xs[i * 784 + r * 28 + c], c1.sx)))];
      const a1 = reluPool(convRef(img, c1.w, c1.b, c1, 16));
      const a2 = reluPool(convRef(a1, c2.w, c2.b, c2, 32));
      const flat = a2.flat(2);
      const h1 = linearRef(flat, l1.w, l1.b, l1, 128).map((v) => Math.max(0, v));
      const out = linearRef(h1, l2.w, l2.b, l2, 10);
      assert.deepEqual(got.slice(i * 10, i * 10 + 10), out, `image ${i}`);
    }
  });

  test('a Linear whose accumulator passes 2^24 is split and stays exact', () => {
    const inF = 4096;
    const lin = new nn.Sequential(new nn.Linear(inF, 3));
    linger.init(lin);
    // weights at the largest code everywhere: Σ|q_w|·128 = 4096·127·128 ≈ 2^26
    const w = new Float32Array(3 * inF).map((_, i) => (i % 7 === 0 ? -1 : 1));
    lin.at(0).loadStateDict({ weight: tensor(w, [3, inF]), bias: tensor([0.5, -0.25, 0]) }, { strict: false });
    const x = tensor(
      Float32Array.from({ length: 2 * inF }, (_, i) => ((i * 37) % 255) / 256 - 0.49),
      [2, inF],
    );
    linger.calibrate(lin, [x]);
    lin.eval();
    const y = withRecordedScales(() => lin(x) as Tensor);
    const s = scalesOf(lin, '0');
    const xs = x.dataSync();
    for (let r = 0; r < 2; r++) {
      const q = Array.from(xs.subarray(r * inF, (r + 1) * inF), (v) => code(v, s.sx));
      const want = linearRef(q, w, Float32Array.from([0.5, -0.25, 0]), s, 3);
      assert.deepEqual(
        Array.from(y.dataSync().subarray(r * 3, r * 3 + 3), (v) => v * s.so),
        want,
      );
    }
    assert.ok(4096 * 127 * 128 > 2 ** 24);
  });
});

describe('iqAdd on a residual block', () => {
  class Res extends nn.Module {
    conv = new nn.Conv2d(3, 4, 3, { padding: 1 });
    bn = new nn.BatchNorm2d(4);
    relu = new nn.ReLU();
    conv2 = new nn.Conv2d(4, 4, 3, { padding: 1 });
    head = new nn.Linear(4 * 6 * 6, 3);
    forward(x: Tensor): Tensor {
      const a = this.relu(this.bn(this.conv(x)));
      const b = this.conv2(a);
      return this.head(a.add(b).flatten(1));
    }
  }

  test('init makes the residual add an IQAdd; training and eval run; eval equals the iqAdd formula', () => {
    manualSeed(11);
    const m = new Res();
    linger.traceLayers(m, m, randn([1, 3, 6, 6]));
    linger.init(m);
    // as in linger: the add's layer is the root's child from its first call, named by the root's counter
    assert.ok(!m.toString().includes('iqAddLayer'));
    const opt = new optim.SGD(m.parameters(), { lr: 0.01 });
    for (let i = 0; i < 3; i++) opt.step(() => F.crossEntropy(m(rand([8, 3, 6, 6])) as Tensor, labels(8)));
    assert.match(m.toString(), /\n {2}\(_linger_round_tensor_iqadd__default_index_0\): iqAddLayer\(\)\n\)$/);
    assert.deepEqual(
      Object.keys(m.stateDict()).filter((k) => k.startsWith('_linger_round_tensor_iqadd__default_index_0.')),
      ['_linger_round_tensor_iqadd__default_index_0.scale_o', '_linger_round_tensor_iqadd__default_index_0.running_o'],
    );
    m.eval();
    // capture the add's operands and result inside the IQAdd layer's call (keep(): they outlive the
    // root call, which keeps only what it returns)
    const add = m.getSubmodule('_linger_round_tensor_iqadd__default_index_0') as nn.IQAdd;
    let seen: { x: Tensor; y: Tensor; z: Tensor } | undefined;
    const orig = add.forward.bind(add);
    add.forward = (x: Tensor, y: Tensor) => {
      const z = orig(x, y);
      seen = { x: x.keep(), y: y.keep(), z: z.keep() };
      return z;
    };
    const out = m(rand([2, 3, 6, 6])) as Tensor;
    assert.ok(seen && out.quantScale !== undefined);
    const { x, y, z } = seen;
    const sx = x.quantScale!,
      sy = y.quantScale!,
      sz = z.quantScale!;
    assert.equal(sz, Math.min(evalScale(add.stateDict().running_o.item(), 8), sx, sy));
    const xv = x.dataSync(),
      yv = y.dataSync(),
      zv = z.dataSync();
    for (let i = 0; i < zv.length; i++) {
      const qx = Math.round(xv[i] * sx),
        qy = Math.round(yv[i] * sy);
      const want = Math.min(127, Math.max(-128, Math.floor((qx * sz) / sx + 0.5) + Math.floor((qy * sz) / sy + 0.5)));
      assert.equal(zv[i] * sz, want, `element ${i}`);
    }
  });

  test("torch.flatten (F.flatten) of a quantized tensor is a plain tensor; Tensor.flatten keeps the scale (linger's IQTensor.flatten)", () => {
    const q = new Tensor(tf.tensor([0.5, -0.25, 1, 0], [1, 2, 2]), null, 4);
    assert.equal(q.flatten(1).quantScale, 4);
    assert.equal(new nn.Flatten().forward(q).quantScale, 4);
    const f = F.flatten(q, 1);
    assert.equal(f.quantScale, undefined);
    assert.deepEqual([...f.shape], [1, 4]);
    assert.deepEqual(Array.from(f.dataSync()), [0.5, -0.25, 1, 0]);
  });

  test("a dict of our older layout (the root list linger_iq, six buffers per IQAdd) loads strict under linger's names, said once", () => {
    manualSeed(12);
    const a = new Res();
    linger.traceLayers(a, a, randn([1, 3, 6, 6]));
    linger.init(a);
    tidy(() => {
      a(rand([8, 3, 6, 6]));
    });
    const old: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(a.stateDict()))
      old[
        k.startsWith('_linger_round_tensor_iqadd__default_index_0.')
          ? `linger_iq.0.${k.slice('_linger_round_tensor_iqadd__default_index_0.'.length)}`
          : k
      ] = v as Tensor;
    for (const k of ['running_x', 'running_w', 'scale_x', 'scale_w']) old[`linger_iq.0.${k}`] = tensor([0], [1]);
    const load = () => {
      const b = new Res();
      linger.traceLayers(b, b, randn([1, 3, 6, 6]));
      linger.init(b);
      b.loadStateDict(old);
      return b;
    };
    const warned: string[] = [];
    const warn = console.warn;
    console.warn = (msg: string) => {
      warned.push(msg);
    };
    let b: Res, c: Res;
    try {
      b = load();
      c = load();
    } finally {
      console.warn = warn;
    }
    assert.equal(warned.length, 1, 'said once');
    assert.match(
      warned[0],
      /root lists \(linger_iq\.0\.\w+ → _linger_round_tensor_iqadd__default_index_0\.\w+\), an earlier layout of ours/,
    );
    for (const x of [b, c]) {
      assert.deepEqual(Object.keys(x.stateDict()), Object.keys(a.stateDict()));
      assert.equal(
        x.stateDict()['_linger_round_tensor_iqadd__default_index_0.running_o'].item(),
        a.stateDict()['_linger_round_tensor_iqadd__default_index_0.running_o'].item(),
      );
    }
    // a failed strict load leaves no op layer behind
    const d = new Res();
    linger.traceLayers(d, d, randn([1, 3, 6, 6]));
    linger.init(d);
    const bad = { ...a.stateDict() } as Record<string, Tensor>;
    delete bad['conv2.running_x'];
    assert.throws(() => d.loadStateDict(bad), /missing keys: conv2\.running_x/);
    assert.ok(!Object.keys(d.stateDict()).some((k) => k.startsWith('_linger_round_tensor_iqadd__default_index_0.')));
  });
});

describe('state dicts across stages (SPEC §6)', () => {
  function trainedFloat(seed: number): DemoCNN {
    manualSeed(seed);
    const f = new DemoCNN();
    tidy(() => {
      f(rand([16, 1, 28, 28]));
    }); // non-trivial BN running statistics
    return f;
  }
  function fixedModel(): DemoCNN {
    const m = new DemoCNN();
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.normalizeLayers(m, { normalizeWeightValue: null, normalizeBiasValue: null, normalizeOutputValue: null });
    linger.init(m);
    return m;
  }

  test('a float dict and a traced dict load strict into a fixed model, folding BN with the running statistics', () => {
    const f = trainedFloat(21);
    const traced = new DemoCNN();
    linger.traceLayers(traced, traced, randn([1, 1, 28, 28]));
    linger.normalizeLayers(traced, { normalizeWeightValue: null, normalizeBiasValue: null, normalizeOutputValue: null });
    traced.loadStateDict(f.stateDict());
    const fromFloat = fixedModel();
    fromFloat.loadStateDict(f.stateDict());
    const fromTraced = fixedModel();
    fromTraced.loadStateDict(traced.stateDict());
    // the fold, by hand: W' = W·γ/√(var+ε) per output channel
    const sd = f.stateDict();
    const g = sd['bn1.weight'].dataSync(),
      v = sd['bn1.running_var'].dataSync(),
      w = sd['conv1.weight'].dataSync();
    const folded = fromFloat.stateDict()['conv1.weight'].dataSync();
    for (let i = 0; i < w.length; i++) {
      const o = Math.floor(i / 9);
      assert.ok(Math.abs(folded[i] - (w[i] * g[o]) / Math.sqrt(v[o] + 1e-5)) < 1e-6);
    }
    assert.deepEqual(fromTraced.stateDict()['conv2.bias'].dataSync(), fromFloat.stateDict()['conv2.bias'].dataSync());
    assert.equal(fromFloat.stateDict()['conv1.running_x'].item(), 0, 'quantizer statistics start empty');
    // and the fixed model computes what the float model computes, to quantization error
    linger.calibrate(fromFloat, [rand([32, 1, 28, 28])]);
    fromFloat.eval();
    f.eval();
    const x = rand([8, 1, 28, 28]);
    const a = (f(x) as Tensor).dataSync(),
      b = (fromFloat(x) as Tensor).dataSync();
    const err = Math.max(...Array.from(a, (u, i) => Math.abs(u - b[i])));
    assert.ok(err < 0.25, `max |float − fixed| = ${err}`);
  });

  test('fixed dicts round-trip through a checkpoint; later-stage dicts into earlier models are refused', async () => {
    const m = fixedDemo(22, 2);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-fixed-'));
    try {
      const file = await linger.save(m, path.join(dir, 'fixed.safetensors'), { metrics: { accuracy: 0.5 } });
      const ck = await linger.loadCheckpoint(file);
      assert.equal(ck.metadata.stage, 'fixed');
      assert.equal(ck.metadata.format, 'linger-studio/1');
      assert.equal(ck.metadata.model, 'DemoCNN');
      assert.deepEqual(ck.metadata.metrics, { accuracy: 0.5 });
      const again = fixedModel();
      again.loadStateDict(ck.stateDict);
      for (const k of ['conv1.weight', 'fc1.running_o', 'fc2.scale_o']) {
        assert.deepEqual(again.stateDict()[k].dataSync(), m.stateDict()[k].dataSync(), k);
      }
      assert.throws(() => new DemoCNN().loadStateDict(ck.stateDict), {
        message: /cannot load a fixed-stage state dict into a float-stage model/,
      });
      const traced = new DemoCNN();
      linger.traceLayers(traced, traced, randn([1, 1, 28, 28]));
      assert.throws(() => traced.loadStateDict(ck.stateDict), {
        message: /cannot load a fixed-stage state dict into a traced-stage model/,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('quantization report', () => {
  test('one row per Int layer with scales, ranges and SQNR', () => {
    const m = fixedDemo(23, 3);
    // the running statistics start at 0 and move 10% a batch: settle them first
    linger.calibrate(
      m,
      Array.from({ length: 30 }, () => rand([8, 1, 28, 28])),
    );
    const rows = linger.quantReport(m, rand([8, 1, 28, 28]));
    assert.deepEqual(
      rows.map((r) => r.path),
      ['conv1', 'conv2', 'fc1', 'fc2'],
    );
    for (const r of rows) {
      assert.ok(Number.isInteger(Math.log2(r.scaleX)) && Number.isInteger(Math.log2(r.scaleO)), 'power-of-two scales');
      assert.ok(r.sqnrDb! > 10, `${r.path}: SQNR ${r.sqnrDb} dB`);
      assert.ok(r.weightRange![0] < r.weightRange![1]);
    }
    assert.match(linger.formatQuantReport(rows), /^layer\s+type\s+bits x\/w\/o\s+scale_x/);
  });
});
