// ONNX export at every stage (SPEC §7): float/traced within 1e-4 of the engine in onnxruntime;
// the fixed stage's 'qdq' dialect bit-exact with the engine's integer eval under onnxruntime's
// default session options and every graph optimization level; the 'thinker' dialect's structure.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { data, DemoCNN, F, initBackend, linger, manualSeed, nn, optim, rand, randn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { buildOnnxModel, exportOnnx } from '../../../src/engine/onnx/index';
import { onnx } from '../../../src/engine/onnx/proto';
import * as ort from 'onnxruntime-node';
import { diff, runSession, session, tempDir } from './ort';
import { ModelB } from '../seedModels';

before(async () => {
  await initBackend();
});
const dir = tempDir('export');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;

function quiet<T>(fn: () => T): T {
  const orig = process.emitWarning;
  process.emitWarning = (() => undefined) as typeof process.emitWarning;
  try {
    return fn();
  } finally {
    process.emitWarning = orig;
  }
}
function evalOut(m: nn.Module, x: Tensor): Float32Array {
  m.eval();
  return tidy(() => m(x) as Tensor).dataSync() as Float32Array;
}
/** Float parity: the engine and onnxruntime (default options) within 1e-4, at a batch other than the dummy's. */
async function assertFloatParity(m: nn.Module, dummy: Tensor, x: Tensor, name: string): Promise<void> {
  const file = path.join(dir, `${name}.onnx`);
  assert.equal(await exportOnnx(m, dummy, file), path.resolve(file));
  const want = evalOut(m, x);
  const got = await runSession(await session(file), x);
  const d = diff(want, got);
  assert.ok(d.maxAbs <= 1e-4, `${name}: max |engine − onnxruntime| = ${d.maxAbs}`);
}
/** Fixed parity: bit for bit, default session options and each optimization level. */
async function assertFixedParity(m: nn.Module, dummy: Tensor, xs: Tensor[], name: string): Promise<void> {
  const file = path.join(dir, `${name}.onnx`);
  await exportOnnx(m, dummy, file);
  for (const level of [undefined, ...LEVELS]) {
    const s = await session(file, level);
    for (const x of xs) {
      const d = diff(evalOut(m, x), await runSession(s, x));
      assert.equal(
        d.equalFraction,
        1,
        `${name} (${level ?? 'default options'}): ${(d.equalFraction * 100).toFixed(3)}% equal, max diff ${d.maxAbs}`,
      );
    }
  }
}
function calibrated<T extends nn.Module>(m: T, shape: number[], batches = 3): T {
  linger.calibrate(
    m,
    Array.from({ length: batches }, () => randn(shape)),
  );
  return m;
}

/** A residual model: ConvBN stem, a basic block with a skip add, average pool, a concat branch. */
class ResidualNet extends nn.Module {
  stem = new nn.Conv2d(1, 8, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(8);
  relu = new nn.ReLU();
  conv1 = new nn.Conv2d(8, 8, 3, { padding: 1 });
  bn1 = new nn.BatchNorm2d(8);
  relu1 = new nn.ReLU();
  conv2 = new nn.Conv2d(8, 8, 3, { padding: 1 });
  bn2 = new nn.BatchNorm2d(8);
  relu2 = new nn.ReLU();
  pool = new nn.AvgPool2d(2);
  branch = new nn.Conv2d(8, 4, 1);
  fc = new nn.Linear(12 * 7 * 7, 10);
  forward(x: Tensor): Tensor {
    const s = this.relu(this.bn(this.stem(x)));
    let y = this.relu1(this.bn1(this.conv1(s)));
    y = this.relu2(this.bn2(this.conv2(y)).add(s));
    y = this.pool(y);
    return this.fc(F.cat([y, this.branch(y)], 1).flatten(1));
  }
}

/** Grouped conv, a grouped transposed conv, Sigmoid, a permute and a softmax. */
class Mixed extends nn.Module {
  conv = new nn.Conv2d(4, 8, 3, { padding: 1, groups: 2 });
  bn = new nn.BatchNorm2d(8);
  up = new nn.ConvTranspose2d(8, 4, 3, { stride: 2, padding: 1, outputPadding: 1, groups: 2 });
  act = new nn.Sigmoid();
  pool = new nn.MaxPool2d(2, { stride: 2, padding: 1 });
  gap = new nn.AdaptiveAvgPool2d(1);
  fc = new nn.Linear(4, 3);
  forward(x: Tensor): Tensor {
    let y = F.relu6(this.bn(this.conv(x)));
    y = this.act(this.up(y)).mul(2).sub(0.5);
    y = this.pool(y).permute(0, 2, 3, 1).permute(0, 3, 1, 2);
    return F.softmax(this.fc(this.gap(y).flatten(1)), 1);
  }
}

/** Functional ops on parameters, reductions, clamp, pow, matmul with a constant made in forward. */
class Functional extends nn.Module {
  conv = new nn.Conv2d(3, 4, 3);
  fc = new nn.Linear(4, 2);
  forward(x: Tensor): Tensor {
    let y = F.conv2d(x, this.conv.weight, this.conv.bias, { padding: 1, stride: 2 });
    y = y.clamp(-0.5, 0.5).pow(2).add(y.sigmoid());
    const m = y.mean([2, 3]);
    return F.linear(m, this.fc.weight, this.fc.bias)
      .matmul(
        tensor([
          [1, 2],
          [0, 1],
        ]),
      )
      .sum(1, true);
  }
}

class Conv1dNet extends nn.Module {
  conv = new nn.Conv1d(4, 6, 3, { padding: 1 });
  bn = new nn.BatchNorm1d(6);
  relu = new nn.ReLU();
  fc = new nn.Linear(60, 5);
  forward(x: Tensor): Tensor {
    return this.fc(this.relu(this.bn(this.conv(x))).flatten(1));
  }
}

describe('float and traced stages: within 1e-4 of the engine in onnxruntime', () => {
  test('demo CNN, float → traced → normalized, dynamic batch', async () => {
    manualSeed(11);
    const m = new DemoCNN();
    calibrated(m, [16, 1, 28, 28]); // BN running statistics away from 0/1
    const x = rand([5, 1, 28, 28]);
    await assertFloatParity(m, randn([1, 1, 28, 28]), x, 'demo-float');
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    await assertFloatParity(m, randn([1, 1, 28, 28]), x, 'demo-traced');
    linger.normalizeLayers(m, { normalizeWeightValue: 0.25, normalizeOutputValue: 1 });
    await assertFloatParity(m, randn([1, 1, 28, 28]), x, 'demo-normalized');
    // the clamps are there: Clip nodes, and the fused conv exported as one folded Conv
    const g = buildOnnxModel(m, randn([1, 1, 28, 28])).graph!;
    assert.ok(g.node!.filter((n) => n.opType === 'Clip').length >= 4);
    assert.equal(g.node!.filter((n) => n.opType === 'BatchNormalization').length, 0);
    assert.deepEqual(g.input![0].type!.tensorType!.shape!.dim![0].dimParam, 'batch');
  });

  test("a residual model, the seed's Model B, grouped/transposed convs, functional ops, Conv1d", async () => {
    manualSeed(12);
    const r = calibrated(new ResidualNet(), [8, 1, 14, 14]);
    await assertFloatParity(r, randn([2, 1, 14, 14]), randn([3, 1, 14, 14]), 'residual-float');
    const b = calibrated(new ModelB(), [4, 10, 5, 5]);
    await assertFloatParity(b, randn([1, 10, 5, 5]), randn([3, 10, 5, 5]), 'modelb-float');
    linger.traceLayers(b, b, randn([1, 10, 5, 5]));
    linger.normalizeLayers(b);
    await assertFloatParity(b, randn([1, 10, 5, 5]), randn([3, 10, 5, 5]), 'modelb-traced');
    const mx = calibrated(new Mixed(), [4, 4, 6, 6]);
    await assertFloatParity(mx, randn([2, 4, 6, 6]), randn([3, 4, 6, 6]), 'mixed-float');
    linger.traceLayers(mx, mx, randn([2, 4, 6, 6]));
    await assertFloatParity(mx, randn([2, 4, 6, 6]), randn([3, 4, 6, 6]), 'mixed-traced');
    await assertFloatParity(new Functional(), randn([2, 3, 8, 8]).mul(3), randn([3, 3, 8, 8]), 'functional-float');
    const c1 = calibrated(new Conv1dNet(), [4, 4, 10]);
    await assertFloatParity(c1, randn([2, 4, 10]), randn([3, 4, 10]), 'conv1d-float');
    linger.traceLayers(c1, c1, randn([2, 4, 10]));
    await assertFloatParity(c1, randn([2, 4, 10]), randn([3, 4, 10]), 'conv1d-traced');
  });
});

describe("fixed stage, 'qdq' dialect: bit for bit with the engine's integer eval", () => {
  test('demo CNN after a short QAT on Fashion-MNIST: 100% of the full test set (10,000 images)', async (t) => {
    const { train, test: testSet } = data.fashionMnist();
    manualSeed(21);
    const m = new DemoCNN();
    const loader = new data.DataLoader(train, { batchSize: 64, shuffle: true, seed: 3 });
    const opt = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
    const steps = (n: number) => {
      let i = 0;
      for (const b of loader) {
        opt.step(() => F.crossEntropy(m(b.x), b.y));
        b.x.dispose();
        b.y.dispose();
        if (++i >= n) break;
      }
    };
    steps(20); // float
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.normalizeLayers(m);
    steps(5); // traced fine-tune
    linger.init(m);
    steps(10); // fixed-point QAT
    const file = path.join(dir, 'demo-fixed.onnx');
    await exportOnnx(m, randn([1, 1, 28, 28]), file);
    const s = await session(file); // onnxruntime's default session options
    const others = await Promise.all((['disabled', 'all'] as const).map((l) => session(file, l)));
    m.eval();
    let equal = 0,
      total = 0,
      equalOthers = 0,
      totalOthers = 0,
      correct = 0,
      batch = 0;
    for (const b of new data.DataLoader(testSet, { batchSize: 1000 })) {
      const want = evalOut(m, b.x);
      const got = await runSession(s, b.x);
      const d = diff(want, got);
      equal += d.equalFraction * d.n;
      total += d.n;
      // other optimization levels on the first two batches (the default is the one that matters)
      if (batch++ < 2) {
        for (const o of others) {
          const e = diff(want, await runSession(o, b.x));
          equalOthers += e.equalFraction * e.n;
          totalOthers += e.n;
        }
      }
      const labels = b.y.dataSync();
      for (let i = 0; i < labels.length; i++) {
        const row = got.subarray(i * 10, i * 10 + 10);
        if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
      }
      b.x.dispose();
      b.y.dispose();
    }
    assert.equal(total, 10000 * 10);
    assert.equal(equal, total, `default options: ${equal}/${total} output elements equal`);
    assert.equal(equalOthers, totalOthers, `optimizations disabled / all: ${equalOthers}/${totalOthers} output elements equal`);
    assert.ok(correct / 10000 > 0.5, `the exported fixed model classifies (accuracy ${correct / 10000})`);
    t.diagnostic(
      `equal output elements: ${equal}/${total} (default options), ${equalOthers}/${totalOthers} (disabled + all, first 2,000 images); onnxruntime accuracy ${(correct / 100).toFixed(2)}%`,
    );
  });

  test('a residual model with iqAdd, iqCat and an average pool (traced, normalized, fixed)', async () => {
    manualSeed(22);
    const m = new ResidualNet();
    linger.traceLayers(m, m, randn([1, 1, 14, 14]));
    linger.normalizeLayers(m);
    linger.init(m);
    calibrated(m, [8, 1, 14, 14], 4);
    const types = new Set(m.modules().map((x) => x.typeName()));
    for (const t of ['iqAddLayer', 'iqCatLayer', 'AvgPool2dInt', 'Conv2dInt', 'LinearInt']) assert.ok(types.has(t), `the model has ${t}`);
    await assertFixedParity(m, randn([1, 1, 14, 14]), [randn([6, 1, 14, 14]), rand([6, 1, 14, 14], -3, 3)], 'residual-fixed');
  });

  test('torch.flatten (F.flatten) drops the quantization before a Linear, as linger: the qdq export stays bit for bit', async () => {
    class Flat extends nn.Module {
      conv = new nn.Conv2d(1, 4, 3, { padding: 1 });
      relu = new nn.ReLU();
      fc = new nn.Linear(4 * 6 * 6, 5);
      forward(x: Tensor): Tensor {
        return this.fc(F.flatten(this.relu(this.conv(x)), 1));
      }
    }
    manualSeed(24);
    const m = new Flat();
    linger.traceLayers(m, m, randn([1, 1, 6, 6]));
    linger.init(m);
    calibrated(m, [8, 1, 6, 6], 4);
    // the Linear quantizes its input itself: its running_x is its own statistic, not 127/scale of the conv's output
    assert.notEqual((m.fc as nn.LinearInt).stateDict().running_x.item(), 127 / (m.conv as nn.Conv2dInt).stateDict().scale_o.item());
    await assertFixedParity(m, randn([1, 1, 6, 6]), [randn([6, 1, 6, 6]), rand([6, 1, 6, 6], -3, 3)], 'flatten-fixed');
  });

  test('Model B (a float op between Int layers), BatchNormInt, Conv1dInt, grouped and transposed Int convs', async () => {
    manualSeed(23);
    const b = new ModelB();
    linger.traceLayers(b, b, randn([1, 10, 5, 5]));
    linger.init(b);
    calibrated(b, [4, 10, 5, 5]);
    await assertFixedParity(b, randn([1, 10, 5, 5]), [randn([5, 10, 5, 5])], 'modelb-fixed');

    const bn = new nn.Sequential(
      new nn.Conv2d(3, 6, 3, { groups: 3 }),
      new nn.ReLU(),
      new nn.BatchNorm2d(6),
      new nn.ConvTranspose2d(6, 4, 2, { stride: 2, groups: 2 }),
    );
    linger.traceLayers(bn, bn, randn([1, 3, 8, 8]), { fuseBn: false });
    quiet(() => linger.init(bn));
    calibrated(bn, [4, 3, 8, 8]);
    assert.ok(bn.modules().some((x) => x.typeName() === 'BatchNormInt'));
    await assertFixedParity(bn, randn([1, 3, 8, 8]), [randn([3, 3, 8, 8])], 'bn-fixed');

    const c1 = new Conv1dNet();
    linger.traceLayers(c1, c1, randn([1, 4, 10]));
    linger.init(c1);
    calibrated(c1, [4, 4, 10]);
    await assertFixedParity(c1, randn([1, 4, 10]), [randn([3, 4, 10])], 'conv1d-fixed');
  });

  test('accumulators beyond 2^24: ConvInteger, MatMulInteger and a split ConvTranspose stay exact', async () => {
    manualSeed(24);
    const cases: [string, nn.Module, number[], string][] = [
      ['wide-conv', new nn.Sequential(new nn.Conv2d(512, 4, 3, { padding: 1 })), [2, 512, 4, 4], 'ConvInteger'],
      ['wide-linear', new nn.Sequential(new nn.Linear(4096, 8)), [3, 4096], 'MatMulInteger'],
      ['wide-transpose', new nn.Sequential(new nn.ConvTranspose2d(512, 4, 3, { stride: 2 })), [2, 512, 3, 3], 'Slice'],
    ];
    for (const [name, m, shape, op] of cases) {
      quiet(() => linger.init(m));
      // inputs near full scale so the accumulators really are large
      linger.calibrate(m, [rand(shape, -1, 1), rand(shape, -1, 1)]);
      const ops = buildOnnxModel(m, randn([1, ...shape.slice(1)])).graph!.node!.map((n) => n.opType);
      assert.ok(ops.includes(op), `${name} uses ${op} (ops: ${[...new Set(ops)].join(', ')})`);
      await assertFixedParity(m, randn([1, ...shape.slice(1)]), [rand(shape, -1, 1), randn(shape)], name);
    }
  });

  test('no QuantizeLinear/DequantizeLinear for onnxruntime to fuse; standard domain only', () => {
    manualSeed(25);
    const m = new DemoCNN();
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.init(m);
    calibrated(m, [8, 1, 28, 28]);
    const model = buildOnnxModel(m, randn([1, 1, 28, 28]));
    assert.deepEqual(
      model.opsetImport!.map((o) => o.domain),
      [''],
    );
    const ops = new Set(model.graph!.node!.map((n) => n.opType));
    assert.ok(!ops.has('QuantizeLinear') && !ops.has('DequantizeLinear'));
    assert.ok(model.graph!.node!.every((n) => !n.domain));
  });

  test("onnxruntime's full optimization keeps every rounding step (it may re-layout the convs, which stay exact)", async () => {
    manualSeed(26);
    const m = new ResidualNet();
    linger.traceLayers(m, m, randn([1, 1, 14, 14]));
    linger.init(m);
    calibrated(m, [8, 1, 14, 14]);
    const file = path.join(dir, 'residual-opt.onnx');
    const optimized = path.join(dir, 'residual-opt.all.onnx');
    await exportOnnx(m, randn([1, 1, 14, 14]), file);
    await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized, logSeverityLevel: 3 });
    const count = (f: string, op: string) => onnx.ModelProto.decode(fs.readFileSync(f)).graph!.node!.filter((n) => n.opType === op).length;
    for (const op of ['Floor', 'Round']) assert.equal(count(optimized, op), count(file, op), `${op} nodes survive`);
    const after = onnx.ModelProto.decode(fs.readFileSync(optimized)).graph!.node!.map((n) => n.opType ?? '');
    assert.ok(
      !after.some((o) => /QLinear|QuantizeLinear|DequantizeLinear|Integer/.test(o)),
      `no quantized kernels: ${[...new Set(after)].join(', ')}`,
    );
  });
});

describe("fixed stage, 'thinker' dialect", () => {
  test('demo CNN: Quant at the input, Conv2dInt/LinearInt with linger attributes, int8 weights, int32 biases, Dequant at the output', async () => {
    manualSeed(31);
    const m = new DemoCNN();
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.normalizeLayers(m);
    linger.init(m);
    calibrated(m, [8, 1, 28, 28]);
    const file = path.join(dir, 'demo-thinker.onnx');
    await exportOnnx(m, randn([1, 1, 28, 28]), file, { dialect: 'thinker' });
    const model = onnx.ModelProto.decode(fs.readFileSync(file));
    const g = model.graph!;
    assert.ok(model.opsetImport!.some((o) => o.domain === 'thinker'));
    const nodes = g.node!;
    const attrs = (n: onnx.INodeProto) => Object.fromEntries(n.attribute!.map((a) => [a.name!, a]));
    // float input → Quant → … → Dequant → float output
    assert.equal(nodes[0].domain, 'thinker');
    assert.equal(nodes[0].opType, 'Quant');
    assert.deepEqual(nodes[0].input, [g.input![0].name]);
    const last = nodes[nodes.length - 1];
    assert.equal(last.opType, 'Dequant');
    assert.deepEqual(last.output, [g.output![0].name]);
    const q = attrs(nodes[0]);
    assert.equal(q.scale_x.f, (m.conv1 as nn.Conv2dInt).scale_x.item());
    assert.equal(Number(q.data_bits.i), 8);
    assert.equal(new TextDecoder().decode(q.platform_quant.s!), 'luna_quant');
    const seq = nodes.map((n) => `${n.domain ? n.domain + '::' : ''}${n.opType}`);
    assert.deepEqual(seq, [
      'thinker::Quant',
      'thinker::Conv2dInt',
      'Relu',
      'MaxPool',
      'thinker::Conv2dInt',
      'Relu',
      'MaxPool',
      'Flatten',
      'thinker::LinearInt',
      'Relu',
      'thinker::LinearInt',
      'thinker::Dequant',
    ]);
    const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
    for (const n of nodes.filter((x) => x.opType === 'Conv2dInt' || x.opType === 'LinearInt')) {
      const a = attrs(n);
      for (const k of ['scale_x', 'scale_w', 'scale_o']) assert.equal(a[k].type, 1, `${n.name} ${k} is a float`);
      for (const k of ['data_bits', 'parameter_bits', 'o_bits']) assert.equal(Number(a[k].i), 8);
      assert.equal(new TextDecoder().decode(a.platform_quant.s!), 'luna_quant');
      // linger writes castor_mode on Conv2dInt only
      if (n.opType === 'Conv2dInt') assert.equal(new TextDecoder().decode(a.castor_mode.s!), 'luna');
      else assert.equal(a.castor_mode, undefined, `${n.name} has no castor_mode`);
      const w = inits.get(n.input![1])!,
        b = inits.get(n.input![2])!;
      assert.equal(w.dataType, 3, 'int8 weight');
      assert.equal(b.dataType, 6, 'int32 bias');
      if (n.opType === 'Conv2dInt') {
        for (const k of ['kernel_shape', 'strides', 'pads', 'dilations']) assert.ok(a[k].ints!.length > 0, `${k}`);
        assert.deepEqual(a.pads.ints!.map(Number), [1, 1, 1, 1]);
        assert.equal(Number(a.group.i), 1);
        assert.deepEqual(w.dims!.map(Number), n.name!.includes('conv1') ? [16, 1, 3, 3] : [32, 16, 3, 3]);
      }
      // the weight codes are the engine's: |q| ≤ 127 and scale_w from the recorded buffer
      const codes = new Int8Array(w.rawData!.buffer, w.rawData!.byteOffset, w.rawData!.length);
      assert.ok(
        codes.some((v) => Math.abs(v) > 32),
        'weights use the int8 range',
      );
    }
    const fc2 = attrs(nodes.find((n) => n.name === '/fc2/LinearInt')!);
    assert.equal(fc2.scale_o.f, (m.fc2 as nn.LinearInt).scale_o.item());
    assert.equal(
      attrs(last).scale_o.f,
      fc2.scale_o.f,
      "Dequant at the output carries the last layer's output scale as scale_o (linger's name)",
    );
    assert.equal(attrs(last).scale_x, undefined);
    // static shapes: tpacker packs no symbolic dimension
    for (const v of [...g.input!, ...g.output!])
      assert.ok(
        v.type!.tensorType!.shape!.dim!.every((d) => d.dimValue !== undefined && !d.dimParam),
        `${v.name} is static`,
      );
  });
});

describe('export errors', () => {
  test('clear messages', async () => {
    manualSeed(41);
    const m = new DemoCNN();
    await assert.rejects(exportOnnx(m, randn([1, 1, 28, 28]), path.join(dir, 'x.onnx'), { opset: 11 }), {
      name: 'OnnxExportError',
      message: /opset 11 is not supported \(13 to 21\)/,
    });
    await assert.rejects(exportOnnx(m, randn([1, 1, 28, 28]), path.join(dir, 'x.onnx'), { dialect: 'thinker' }), {
      name: 'OnnxExportError',
      message: /thinker' dialect describes fixed-point layers; run linger.init/,
    });
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.init(m);
    await assert.rejects(exportOnnx(m, randn([1, 1, 28, 28]), path.join(dir, 'x.onnx')), {
      name: 'NotCalibratedError',
      message: /Conv2dInt at 'conv1': no data statistics yet/,
    });
    class Odd extends nn.Module {
      forward(x: Tensor): Tensor {
        return x.argmax(1).float();
      }
    }
    assert.throws(() => buildOnnxModel(new Odd(), randn([4, 5])), {
      name: 'OnnxExportError',
      message: /output 0 of the model is computed by an op this engine does not record/,
    });
    class WithConstant extends nn.Module {
      fc = new nn.Linear(3, 2);
      forward(x: Tensor): Tensor {
        return this.fc(x).add(tensor([1, 2]));
      }
    }
    assert.doesNotThrow(() => buildOnnxModel(new WithConstant(), randn([2, 3])), 'a constant made in forward is fine');
    assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp file left behind');
  });
});
