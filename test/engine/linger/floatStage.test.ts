// The float stage (SPEC §3, §4, §6): traceLayers, Conv+BN fusion, ahead-ReLU marks, normalizeLayers.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DemoCNN, F, initBackend, linger, manualSeed, nn, optim, randn, Tensor, tidy } from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { assertClose, FixtureDict, Fixture, loadCases, toStateDict, toTensor } from '../golden';
import { ModelA, ModelB } from '../seedModels';
import { warningsDuring } from '../warnings';

before(async () => {
  await initBackend();
});

function aheadFlags(m: nn.Module): string[] {
  return [...m.namedModules()].filter(([, x]) => (x as { aheadRelu?: boolean }).aheadRelu === true).map(([p]) => p);
}
function typesOf(m: nn.Module): Record<string, string> {
  return Object.fromEntries([...m.namedModules()].filter(([p]) => p).map(([p, x]) => [p, x.typeName()]));
}

describe("the seed's examples (SPEC §9)", () => {
  test("Model A after traceLayers prints exactly the seed's text", () => {
    class Model extends ModelA {}
    const model = new Model();
    linger.traceLayers(model, model, randn([1, 10, 50, 50]), { fuseBn: true });
    // SPEC §3.3's printout (shared with the extension test of the Model view)
    assert.equal(
      model.toString(),
      fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'seed', 'modelA-traced.txt'), 'utf8').trimEnd(),
    );
  });

  const table: [linger.TraceOptions, string[]][] = [
    [{}, ['conv', 'conv1', 'conv2']],
    [{ aheadBnRelu: false }, ['conv1']],
    [{ aheadConvRelu: false }, ['conv', 'conv2']],
    [{ aheadConvRelu: false, aheadBnRelu: false }, []],
    [{ fuseBn: false }, ['bn', 'conv1', 'bn1']],
  ];
  for (const [opts, flagged] of table) {
    test(`Model B ahead-ReLU flags with ${JSON.stringify(opts)}: ${flagged.join(', ') || 'none'}`, () => {
      const m = new ModelB();
      linger.traceLayers(m, m, randn([1, 10, 5, 5]), opts);
      assert.deepEqual(aheadFlags(m), flagged);
      const fused = opts.fuseBn !== false;
      assert.equal(m.conv.typeName(), fused ? 'NormalizeConvBN2d' : 'Conv2d');
      assert.equal(m.conv2.typeName(), fused ? 'NormalizeConvBN2d' : 'Conv2d');
      assert.equal(m.conv1.typeName(), 'Conv2d');
    });
  }
});

describe('conservative fusion (SPEC §3.1)', () => {
  test('a conv whose output also feeds a residual add is not fused', () => {
    class Res extends nn.Module {
      conv = new nn.Conv2d(4, 4, 3, { padding: 1 });
      bn = new nn.BatchNorm2d(4);
      conv2 = new nn.Conv2d(4, 4, 3, { padding: 1 });
      bn2 = new nn.BatchNorm2d(4);
      forward(x: Tensor): Tensor {
        const c = this.conv(x);
        const y = this.bn(c).add(c);
        return this.bn2(this.conv2(y));
      }
    }
    const m = new Res();
    linger.traceLayers(m, m, randn([2, 4, 6, 6]));
    assert.deepEqual(typesOf(m), {
      conv: 'Conv2d',
      bn: 'BatchNorm2d',
      conv2: 'NormalizeConvBN2d',
      'conv2.conv': 'Conv2d',
      'conv2.bn': 'BatchNorm2d',
      bn2: 'EmptyBatchNorm',
    });
  });

  test('conv → x − 1 → bn is not fused', () => {
    class M extends nn.Module {
      conv = new nn.Conv2d(3, 4, 3);
      bn = new nn.BatchNorm2d(4);
      forward(x: Tensor): Tensor {
        return this.bn(this.conv(x).sub(1));
      }
    }
    const m = new M();
    linger.traceLayers(m, m, randn([1, 3, 6, 6]));
    assert.deepEqual(typesOf(m), { conv: 'Conv2d', bn: 'BatchNorm2d' });
    const g = linger.graphOf(m)!;
    assert.deepEqual(
      g.nodes.map((n) => `${n.kind}:${n.target}`),
      ['module:conv', 'op:sub', 'module:bn'],
    );
    assert.deepEqual(g.nodes[1].inputs, [{ node: 0, output: 0 }, { constant: 1 }]);
    assert.deepEqual(JSON.parse(JSON.stringify(g)), g, 'the graph is plain data');
  });

  test('a BN module used twice, and a conv called twice, are not fused', () => {
    class Shared extends nn.Module {
      conv = new nn.Conv2d(4, 4, 1);
      conv2 = new nn.Conv2d(4, 4, 1);
      bn = new nn.BatchNorm2d(4);
      forward(x: Tensor): Tensor {
        return this.bn(this.conv2(this.bn(this.conv(x))));
      }
    }
    const m = new Shared();
    linger.traceLayers(m, m, randn([2, 4, 3, 3]));
    assert.deepEqual(typesOf(m), { conv: 'Conv2d', conv2: 'Conv2d', bn: 'BatchNorm2d' });
    class Twice extends nn.Module {
      conv = new nn.Conv2d(4, 4, 1);
      bn = new nn.BatchNorm2d(4);
      forward(x: Tensor): Tensor {
        return this.bn(this.conv(this.conv(x)));
      }
    }
    const t = new Twice();
    linger.traceLayers(t, t, randn([2, 4, 3, 3]));
    assert.deepEqual(typesOf(t), { conv: 'Conv2d', bn: 'BatchNorm2d' });
  });

  test('functional conv, affine=False BN, no running stats, channel mismatch: never fused', () => {
    class M extends nn.Module {
      w = new nn.Parameter(tf.randomNormal([3, 3, 2, 2]), [3, 2, 0, 1]);
      bn0 = new nn.BatchNorm2d(2);
      conv1 = new nn.Conv2d(2, 2, 1);
      bn1 = new nn.BatchNorm2d(2, { affine: false });
      conv2 = new nn.Conv2d(2, 2, 1);
      bn2 = new nn.BatchNorm2d(2, { trackRunningStats: false });
      forward(x: Tensor): Tensor {
        const y = this.bn0(F.conv2d(x, this.w));
        return this.bn2(this.conv2(this.bn1(this.conv1(y))));
      }
    }
    const m = new M();
    linger.traceLayers(m, m, randn([2, 2, 5, 5]));
    assert.deepEqual(typesOf(m), { bn0: 'BatchNorm2d', conv1: 'Conv2d', bn1: 'BatchNorm2d', conv2: 'Conv2d', bn2: 'BatchNorm2d' });
  });

  test('a sub-module trace fuses only inside it; ConvTranspose2d→BN and Conv1d→BN fuse too', () => {
    class Block extends nn.Module {
      up = new nn.ConvTranspose2d(3, 4, 2, { stride: 2 });
      bn = new nn.BatchNorm2d(4);
      forward(x: Tensor): Tensor {
        return this.bn(this.up(x));
      }
    }
    class Outer extends nn.Module {
      head = new nn.Sequential(new nn.Conv2d(3, 3, 1), new nn.BatchNorm2d(3));
      block = new Block();
      forward(x: Tensor): Tensor {
        return this.block(this.head(x));
      }
    }
    const m = new Outer();
    linger.traceLayers(m, m.block, randn([1, 3, 4, 4]));
    assert.equal(m.head.typeName(), 'Sequential');
    assert.equal((m.head as nn.Sequential).at(0).typeName(), 'Conv2d');
    assert.equal(m.block.up.typeName(), 'NormalizeConvTransposeBN2d');
    assert.equal(m.block.bn.typeName(), 'EmptyBatchNorm');
    const c1 = new nn.Sequential(new nn.Conv1d(2, 3, 3), new nn.BatchNorm1d(3), new nn.ReLU());
    linger.traceLayers(c1, c1, randn([2, 2, 8]));
    assert.deepEqual(typesOf(c1), { 0: 'NormalizeConvBN1d', '0.conv': 'Conv1d', '0.bn': 'BatchNorm1d', 1: 'EmptyBatchNorm', 2: 'ReLU' });
    assert.deepEqual(aheadFlags(c1), ['0']);
  });
});

describe('transform order and the load-order rule (SPEC §1, §6)', () => {
  test('traceLayers twice is an error; traceLayers after normalizeLayers warns', () => {
    const m = new ModelB();
    linger.traceLayers(m, m, randn([1, 10, 5, 5]));
    assert.throws(() => linger.traceLayers(m, m, randn([1, 10, 5, 5])), { message: /already traced; trace once/ });
    const n = new ModelB();
    linger.normalizeLayers(n);
    const w = warningsDuring(() => linger.traceLayers(n, n, randn([1, 10, 5, 5])));
    assert.deepEqual(
      w.map((x) => x.code),
      ['LINGER_STAGE_ORDER'],
    );
    assert.match(w[0].message, /put traceLayers first/);
  });

  test('a transform after a load warns LINGER_LOAD_ORDER, and the loaded weights are kept', () => {
    manualSeed(4);
    const src = new ModelB();
    const m = new ModelB();
    m.loadStateDict(src.stateDict());
    const w = warningsDuring(() => linger.traceLayers(m, m, randn([1, 10, 5, 5])));
    assert.deepEqual(
      w.map((x) => x.code),
      ['LINGER_LOAD_ORDER'],
    );
    assert.match(w[0].message, /load the state dict after the last transform/);
    assert.deepEqual((m.conv as unknown as nn.NormalizeConvBN2d).conv.weight.dataSync(), src.conv.weight.dataSync());
    const ok = new ModelB();
    linger.traceLayers(ok, ok, randn([1, 10, 5, 5]));
    assert.deepEqual(
      warningsDuring(() => ok.loadStateDict(src.stateDict())),
      [],
    );
  });
});

describe('state dicts across the float stage', () => {
  test('a float dict loads strict into a traced + normalized model (keys moved), and eval outputs agree', () => {
    manualSeed(5);
    const float = new DemoCNN();
    // give the BNs non-trivial running statistics
    float.train();
    tidy(() => {
      float(randn([16, 1, 28, 28]));
    });
    const traced = new DemoCNN();
    linger.traceLayers(traced, traced, randn([1, 1, 28, 28]));
    linger.normalizeLayers(traced, { normalizeWeightValue: null, normalizeBiasValue: null, normalizeOutputValue: null });
    assert.deepEqual(Object.keys(traced.stateDict()).slice(0, 7), [
      'conv1.conv.weight',
      'conv1.conv.bias',
      'conv1.bn.weight',
      'conv1.bn.bias',
      'conv1.bn.running_mean',
      'conv1.bn.running_var',
      'conv1.bn.num_batches_tracked',
    ]);
    assert.equal(traced.stage(), 'traced');
    traced.loadStateDict(float.stateDict());
    float.eval();
    traced.eval();
    const x = randn([4, 1, 28, 28]);
    const a = (float(x) as Tensor).dataSync();
    const b = (traced(x) as Tensor).dataSync();
    assertClose(b, [4, 10], { shape: [4, 10], data: Array.from(a) }, 'traced vs float eval output');
    // and a traced dict round-trips
    const again = new DemoCNN();
    linger.traceLayers(again, again, randn([1, 1, 28, 28]));
    again.loadStateDict(traced.stateDict());
    assert.deepEqual(again.stateDict()['conv2.bn.running_var'].dataSync(), traced.stateDict()['conv2.bn.running_var'].dataSync());
  });

  test('a traced dict into a float model is refused, naming both stages', () => {
    const traced = new DemoCNN();
    linger.traceLayers(traced, traced, randn([1, 1, 28, 28]));
    assert.throws(() => new DemoCNN().loadStateDict(traced.stateDict()), {
      message: /cannot load a traced-stage state dict into a float-stage model/,
    });
  });

  test('the transforms carry the weights: the same Parameter objects, so an optimizer made before keeps working', () => {
    manualSeed(6);
    const m = new DemoCNN();
    const params = m.parameters();
    const opt = new optim.SGD(params, { lr: 0.05, momentum: 0.9 });
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.normalizeLayers(m);
    assert.equal(m.parameters().length, params.length);
    assert.ok(m.parameters().every((p) => params.includes(p)));
    const x = randn([8, 1, 28, 28]);
    const y = toTensor({ shape: [8], data: [0, 1, 2, 3, 4, 5, 6, 7], dtype: 'int64' });
    const l0 = opt.step(() => F.crossEntropy(m(x), y));
    for (let i = 0; i < 5; i++) opt.step(() => F.crossEntropy(m(x), y));
    assert.ok(opt.step(() => F.crossEntropy(m(x), y)) < l0);
  });
});

describe('normalizeLayers (SPEC §4.2)', () => {
  test('replaces layers, prints the settings, honours disableNormalize', () => {
    const m = new ModelB();
    linger.traceLayers(m, m, randn([1, 10, 5, 5]), { fuseBn: false });
    linger.disableNormalize(m.fc);
    linger.normalizeLayers(m, { normalizeWeightValue: 8, normalizeBiasValue: null, normalizeOutputValue: 8 });
    assert.equal(
      m.conv1.toString(),
      'NormalizeConv2d(10, 10, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1),normalize_data:8,normalize_weight:8,normalize_bias:None,ahead_relu:True)',
    );
    assert.equal(
      m.bn.toString(),
      // linger 1.1.1's print: the clamps and mark only (docs/fixed-point.md#conformance-with-linger-111)
      'NormalizeBatchNorm2d(normalize_data:8,normalize_weight:8,normalize_bias:None,ahead_relu:True)',
    );
    assert.equal(m.fc.typeName(), 'Linear');
    assert.throws(() => linger.normalizeLayers(new ModelB(), { normalizeWeightValue: -1 }), {
      message: /normalizeWeight must be a positive number or null, got -1/,
    });
  });
});

// ---- numerics against PyTorch (scripts/golden/make_linger_fixtures.py) ---------------------------
interface LingerCase {
  name: string;
  kind: 'convbn' | 'normalize';
  conv?: string;
  bn?: string;
  layer?: string;
  args: number[];
  kwargs: Record<string, unknown>;
  clamps: { weight: number | null; bias: number | null; data: number | null };
  mode: 'train' | 'eval';
  state: FixtureDict;
  x: Fixture;
  g: Fixture;
  y: Fixture;
  grads: FixtureDict;
  state_after?: FixtureDict;
}
const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const opts = (kw: Record<string, unknown>) => Object.fromEntries(Object.entries(kw).map(([k, v]) => [camel(k), v]));

function build(c: LingerCase): nn.Module {
  const [a, b, k] = c.args;
  if (c.kind === 'convbn') {
    if (c.conv === 'Conv2d') return new nn.NormalizeConvBN2d(new nn.Conv2d(a, b, k, opts(c.kwargs)), new nn.BatchNorm2d(b));
    if (c.conv === 'Conv1d') return new nn.NormalizeConvBN1d(new nn.Conv1d(a, b, k, opts(c.kwargs)), new nn.BatchNorm1d(b));
    return new nn.NormalizeConvTransposeBN2d(new nn.ConvTranspose2d(a, b, k, opts(c.kwargs)), new nn.BatchNorm2d(b));
  }
  const s = { normalizeWeight: c.clamps.weight, normalizeBias: c.clamps.bias, normalizeData: c.clamps.data, aheadRelu: false };
  if (c.layer === 'Conv2d') return nn.NormalizeConv2d.from(new nn.Conv2d(a, b, k, opts(c.kwargs)), s);
  if (c.layer === 'ConvTranspose2d') return nn.NormalizeConvTranspose2d.from(new nn.ConvTranspose2d(a, b, k, opts(c.kwargs)), s);
  if (c.layer === 'Linear') return nn.NormalizeLinear.from(new nn.Linear(a, b, opts(c.kwargs)), s);
  return nn.NormalizeBatchNorm2d.from(new nn.BatchNorm2d(a, opts(c.kwargs)), s);
}

describe('numerics against PyTorch: NormalizeConvBN* (fused forward, unfused backward) and Normalize*', () => {
  for (const c of loadCases<LingerCase>('linger_float')) {
    test(c.name, () => {
      const m = build(c);
      if (m instanceof nn.NormalizeConvBN2d || m instanceof nn.NormalizeConvBN1d || m instanceof nn.NormalizeConvTransposeBN2d) {
        m.normalizeWeight = c.clamps.weight;
        m.normalizeBias = c.clamps.bias;
        m.normalizeData = c.clamps.data;
      }
      m.loadStateDict(toStateDict(c.state));
      m.train(c.mode === 'train');
      const xp = new nn.Parameter(tf.tensor(c.x.data, c.x.shape));
      const params = m.namedParameters();
      const g = tf.tensor(c.g.data, c.g.shape);
      const { value, grads } = tf.variableGrads(() => {
        const y = m(xp) as Tensor;
        assertClose(y.dataSync(), y.shape, c.y, 'output');
        return tf.sum(tf.mul(y.logical(), g)) as tf.Scalar;
      }, [xp.variable, ...params.map(([, p]) => p.variable)]);
      value.dispose();
      assertClose(new Tensor(grads[xp.variable.name], xp.perm).dataSync(), xp.shape, c.grads.x, 'grad x');
      for (const [k, p] of params) {
        const gr = grads[p.variable.name];
        assert.ok(gr, `no gradient for ${k}`);
        assertClose(new Tensor(gr, p.perm).dataSync(), p.shape, c.grads[k], `grad ${k}`);
      }
      for (const [k, e] of Object.entries(c.state_after ?? {})) {
        const t = m.stateDict()[k];
        if (e.dtype === 'int64') assert.deepEqual(Array.from(t.dataSync()), e.data, k);
        else assertClose(t.dataSync(), t.shape, e, k);
      }
    });
  }
});
