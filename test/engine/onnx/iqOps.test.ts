// ONNX export of linger's element-wise iq ops (iqMul, iqSum, iqSigmoid, iqTanh, iqClamp, ReLU6Int):
// the 'qdq' dialect bit for bit with the engine's integer eval in onnxruntime (default options and
// every optimization level), the 'thinker' dialect with linger's op names and attributes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { F, initBackend, linger, manualSeed, nn, rand, randn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { buildOnnxModel, exportOnnx } from '../../../src/engine/onnx/index';
import { onnx } from '../../../src/engine/onnx/proto';
import { IQClamp, IQMul } from '../../../src/engine/linger/index';
import { diff, runSession, session, tempDir } from './ort';

before(async () => {
  await initBackend();
});
const dir = tempDir('iqops');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every iq op after Int layers: ReLU6, mul by a tensor and by numbers, sigmoid, tanh, clamp, sum. */
class Gate extends nn.Module {
  conv = new nn.Conv2d(3, 8, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(8);
  r6 = new nn.ReLU6();
  gate = new nn.Conv2d(8, 8, 1);
  act = new nn.Sigmoid();
  th = new nn.Tanh();
  head = new nn.Linear(8, 5);
  forward(x: Tensor): Tensor {
    const a = this.r6(this.bn(this.conv(x)));
    const g = this.gate(a);
    let y = a.mul(this.act(g)).add(this.th(g).mul(0.3));
    y = F.tanh(y)
      .mul(y.sigmoid())
      .mul(-1.7)
      .clamp(0, 127 / 32);
    const s = y.sum([2, 3]);
    const u = y.sum(1).sum(-1, true).flatten(1);
    return this.head(s.mul(0.25).add(u.mul(s.sum(1, true))));
  }
}

function fixedGate(seed: number): Gate {
  manualSeed(seed);
  const m = new Gate();
  linger.traceLayers(m, m, randn([1, 3, 8, 8]));
  linger.normalizeLayers(m);
  linger.init(m);
  linger.calibrate(
    m,
    Array.from({ length: 12 }, () => randn([8, 3, 8, 8])),
  );
  return m;
}

describe("iq ops, 'qdq' dialect", () => {
  test('bit for bit with the engine in onnxruntime: default options and every optimization level', async (t) => {
    const m = fixedGate(1);
    const types = m.modules().map((x) => x.typeName());
    for (const ty of ['ReLU6Int', 'iqMulLayer', 'iqSigmoidLayer', 'iqTanhLayer', 'iqClampLayer', 'iqSumLayer'])
      assert.ok(types.includes(ty), `the model has ${ty}`);
    const file = path.join(dir, 'gate-qdq.onnx');
    await exportOnnx(m, randn([1, 3, 8, 8]), file);
    const model = onnx.ModelProto.decode(fs.readFileSync(file));
    assert.deepEqual(
      model.opsetImport!.map((o) => o.domain),
      [''],
    );
    const ops = model.graph!.node!.map((n) => n.opType!);
    assert.equal(ops.filter((o) => o === 'Gather').length, 4, 'sigmoid/tanh as a table lookup (4 calls)');
    assert.equal(
      model.graph!.initializer!.filter((i) => /^linger_(sigmoid|tanh)_q11_to_q7/.test(i.name!)).length,
      2,
      'one table per activation, shared',
    );
    assert.ok(
      !ops.some((o) => /QuantizeLinear|DequantizeLinear|Sigmoid|Tanh/.test(o)),
      `no float activations or QDQ nodes: ${[...new Set(ops)].join(', ')}`,
    );
    m.eval();
    let equal = 0,
      total = 0;
    for (const level of [undefined, 'disabled', 'basic', 'extended', 'all'] as const) {
      const s = await session(file, level);
      for (const x of [randn([64, 3, 8, 8]), rand([32, 3, 8, 8], -3, 3), randn([1, 3, 8, 8]).mul(0.1)]) {
        const want = tidy(() => m(x) as Tensor).dataSync();
        const d = diff(want, await runSession(s, x));
        equal += d.equalFraction * d.n;
        total += d.n;
        assert.equal(
          d.equalFraction,
          1,
          `${level ?? 'default options'}: ${(d.equalFraction * 100).toFixed(2)}% equal, max diff ${d.maxAbs}`,
        );
        assert.ok(new Set(Array.from(want)).size > 3, 'outputs are not constant');
      }
    }
    t.diagnostic(`equal output elements: ${equal}/${total}`);
  });

  test('iqMul with y requantized (s_x·s_y < s_z) and iqClamp with min −8 stay exact', async () => {
    class Small extends nn.Module {
      a = new nn.Linear(6, 6);
      b = new nn.Linear(6, 6);
      forward(x: Tensor): Tensor {
        return this.a(x)
          .mul(this.b(x))
          .clamp(-8, 127 / 16);
      }
    }
    manualSeed(3);
    const m = new Small();
    linger.init(m, { dummyInput: randn([2, 6]) });
    linger.calibrate(
      m,
      Array.from({ length: 8 }, () => randn([16, 6])),
    );
    // linger's names: the root's iq calls in order (docs/fixed-point.md#conformance-with-linger-111)
    const [mul, cl] = [
      m.getSubmodule('_linger_round_tensor_iqmul__default_index_0') as IQMul,
      m.getSubmodule('_linger_round_tensor_iqclamp_1') as IQClamp,
    ];
    // a product statistic far below max|x|·max|y|: s_z = 2^round(log2(127/0.001)) = 2^17 > s_x·s_y
    mul.loadStateDict({ running_o: tensor([0.001]).reshape([]) }, { strict: false });
    m.eval();
    const x = randn([9, 6]);
    tidy(() => {
      m(x);
    });
    const sz = mul.stateDict().scale_o.item();
    const sx = (m.a as nn.LinearInt).stateDict().scale_o.item(),
      sy = (m.b as nn.LinearInt).stateDict().scale_o.item();
    assert.ok(sx * sy < sz, `the adjusted case: ${sx}·${sy} < ${sz}`);
    assert.equal(cl.min, -8);
    const file = path.join(dir, 'small-qdq.onnx');
    await exportOnnx(m, randn([1, 6]), file);
    for (const level of [undefined, 'all'] as const) {
      const d = diff(tidy(() => m(x) as Tensor).dataSync(), await runSession(await session(file, level), x));
      assert.equal(d.equalFraction, 1, `max diff ${d.maxAbs}`);
    }
  });
});

/** The Gate without what thinker v1.1.0 cannot run (ReLU6, iqClamp, iqSum): mul, sigmoid, tanh. */
class ThinkerGate extends nn.Module {
  conv = new nn.Conv2d(3, 8, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(8);
  relu = new nn.ReLU();
  gate = new nn.Conv2d(8, 8, 1);
  act = new nn.Sigmoid();
  th = new nn.Tanh();
  head = new nn.Linear(8 * 64, 5);
  forward(x: Tensor): Tensor {
    const a = this.relu(this.bn(this.conv(x)));
    const g = this.gate(a);
    const y = a.mul(this.act(g)).add(this.th(g).mul(0.3));
    return this.head(F.tanh(y).mul(y.sigmoid()).mul(-1.7).flatten(1));
  }
}

describe("iq ops, 'thinker' dialect", () => {
  test("linger's op names and attributes", () => {
    manualSeed(2);
    const m = new ThinkerGate();
    linger.traceLayers(m, m, randn([1, 3, 8, 8]));
    linger.normalizeLayers(m);
    linger.init(m);
    linger.calibrate(
      m,
      Array.from({ length: 12 }, () => randn([8, 3, 8, 8])),
    );
    const g = buildOnnxModel(m, randn([1, 3, 8, 8]), { dialect: 'thinker' }).graph!;
    const nodes = g.node!;
    const attrs = (n: onnx.INodeProto) => Object.fromEntries(n.attribute!.map((a) => [a.name!, a]));
    const names = (n: onnx.INodeProto) => n.attribute!.map((a) => a.name!).sort();
    const str = (a: onnx.IAttributeProto) => new TextDecoder().decode(a.s!);
    const of = (op: string) => nodes.filter((n) => n.opType === op);
    const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
    // iqMul: scale_x, scale_y, scale_o, platform_quant
    assert.equal(of('iqMul').length, 4);
    for (const n of of('iqMul')) {
      assert.equal(n.domain, 'thinker');
      assert.deepEqual(names(n), ['platform_quant', 'scale_o', 'scale_x', 'scale_y']);
      assert.equal(str(attrs(n).platform_quant), 'luna_quant');
    }
    // the number operand is an int8 scalar initializer
    const constMul = of('iqMul').find((n) => inits.has(n.input![1]))!;
    assert.equal(inits.get(constMul.input![1])!.dataType, 3);
    // Requant (8 → 16 bits at 256·s_x) before every iqSigmoid / iqTanh
    for (const op of ['iqSigmoid', 'iqTanh']) {
      assert.equal(of(op).length, 2);
      for (const n of of(op)) {
        const a = attrs(n);
        assert.deepEqual(names(n), ['castor_mode', 'platform_quant', 'scale_o', 'scale_x']);
        assert.equal(a.scale_o.f, 128);
        assert.equal(str(a.castor_mode), 'luna');
        const rq = nodes.find((x) => x.output![0] === n.input![0])!;
        assert.equal(rq.opType, 'Requant');
        const r = attrs(rq);
        assert.deepEqual(names(rq), ['data_bits', 'o_bits', 'scale_o', 'scale_x']);
        assert.equal(Number(r.data_bits.i), 8);
        assert.equal(Number(r.o_bits.i), 16);
        assert.equal(r.scale_o.f, 256 * r.scale_x.f!);
        assert.equal(a.scale_x.f, r.scale_o.f);
      }
    }
  });

  test('what thinker v1.1.0 cannot run is refused, naming the layer: ReLU6Int (a Clip), iqClamp, iqSum', () => {
    // the Gate's first such layer is its ReLU6
    assert.throws(() => buildOnnxModel(fixedGate(2), randn([1, 3, 8, 8]), { dialect: 'thinker' }), {
      name: 'OnnxExportError',
      message: /ReLU6Int at 'r6': thinker v1\.1\.0 cannot run this as exported: .*act_type 3/,
    });
    class Clamped extends nn.Module {
      conv = new nn.Conv2d(1, 2, 3);
      forward(x: Tensor): Tensor {
        return this.conv(x).clamp(0, 127 / 32);
      }
    }
    class Summed extends nn.Module {
      conv = new nn.Conv2d(1, 2, 3);
      forward(x: Tensor): Tensor {
        return this.conv(x).sum(1);
      }
    }
    for (const [M, msg] of [
      [Clamped, /iqClampLayer at '_linger_round_tensor_iqclamp_0': .*no iqClamp operator/],
      [Summed, /iqSumLayer at '_linger_round_tensor_iqsum__default_index_0': .*iqBinaryOperator/],
    ] as const) {
      const m = new M();
      linger.traceLayers(m, m, randn([1, 1, 5, 5]));
      linger.init(m);
      linger.calibrate(m, [randn([4, 1, 5, 5]), randn([4, 1, 5, 5])]);
      assert.throws(() => buildOnnxModel(m, randn([1, 1, 5, 5]), { dialect: 'thinker' }), { name: 'OnnxExportError', message: msg });
      assert.doesNotThrow(() => buildOnnxModel(m, randn([1, 1, 5, 5])), 'the qdq dialect exports it');
    }
  });
});
