import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DemoCNN, initBackend, manualSeed, nn, randn, tensor, Tensor, zeros } from '../../src/engine/index';
import { stageOfDict } from '../../src/engine/state/stateDict';
import { ModelA, ModelB } from './seedModels';

const reprs = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'reprs.json'), 'utf8')) as Record<string, string>;

before(async () => {
  await initBackend();
});

describe('printing matches PyTorch (fixtures from scripts/golden/make_reprs.py)', () => {
  const cases: Record<string, () => nn.Module> = {
    ModelB: () => new ModelB(),
    DemoCNN: () => new DemoCNN(),
    conv2d_nobias_dil: () => new nn.Conv2d(3, 8, [3, 5], { stride: 2, padding: [1, 2], dilation: [2, 1], bias: false }),
    conv2d_same: () => new nn.Conv2d(4, 4, 3, { padding: 'same' }),
    conv1d: () => new nn.Conv1d(4, 6, 3, { stride: 2, padding: 1, groups: 2 }),
    convT_plain: () => new nn.ConvTranspose2d(4, 2, 3),
    bn1d_custom: () => new nn.BatchNorm1d(7, { eps: 1e-3, momentum: 0.01, affine: false, trackRunningStats: false }),
    bn2d_none_momentum: () => new nn.BatchNorm2d(3, { momentum: null }),
    linear_nobias: () => new nn.Linear(5, 3, { bias: false }),
    relu6: () => new nn.ReLU6(),
    relu_inplace: () => new nn.ReLU(true),
    sigmoid: () => new nn.Sigmoid(),
    tanh: () => new nn.Tanh(),
    maxpool_full: () => new nn.MaxPool2d([3, 3], { stride: 2, padding: 1, ceilMode: true }),
    avgpool: () => new nn.AvgPool2d(3, { stride: 1, padding: 1 }),
    adaptive: () => new nn.AdaptiveAvgPool2d([2, 3]),
    flatten: () => new nn.Flatten(),
    dropout: () => new nn.Dropout(0.25),
    identity: () => new nn.Identity(),
    softmax: () => new nn.Softmax(1),
    sequential: () => new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.ReLU(), new nn.Sequential(new nn.Flatten(), new nn.Linear(2, 2))),
    modulelist: () => new nn.ModuleList([new nn.ReLU(), new nn.Linear(2, 3)]),
  };
  for (const [name, make] of Object.entries(cases)) {
    test(name, () => assert.equal(make().toString(), reprs[name]));
  }
  test("the seed's Model A (a 64.5M-parameter Linear)", () => {
    assert.equal(new ModelA().toString(), reprs.ModelA);
  });
});

describe('module tree', () => {
  test('fields register in definition order; state-dict keys are PyTorch paths', () => {
    const m = new DemoCNN();
    assert.deepEqual(
      [...m.namedModules()].map(([p]) => p),
      ['', 'conv1', 'bn1', 'relu1', 'pool1', 'conv2', 'bn2', 'relu2', 'pool2', 'flatten', 'fc1', 'relu3', 'fc2'],
    );
    assert.deepEqual(Object.keys(m.stateDict()).slice(0, 8), [
      'conv1.weight',
      'conv1.bias',
      'bn1.weight',
      'bn1.bias',
      'bn1.running_mean',
      'bn1.running_var',
      'bn1.num_batches_tracked',
      'conv2.weight',
    ]);
    assert.equal(m.parameters().length, 12);
    assert.equal(m.buffers().length, 6);
    assert.deepEqual(m.stateDict()['conv1.weight'].shape, [16, 1, 3, 3]);
    assert.deepEqual(m.stateDict()['fc1.weight'].shape, [128, 1568]);
    assert.equal(stageOfDict(m.stateDict()), 'float');
    assert.ok(!Object.keys(m.stateDict()).includes('stage'), 'the stage is not a key');
  });

  test('train() and eval() reach every module', () => {
    const m = new DemoCNN();
    m.eval();
    assert.ok(m.modules().every((x) => !x.training));
    m.train();
    assert.ok(m.modules().every((x) => x.training));
  });

  test("default initialization is seedable and in PyTorch's bounds", () => {
    manualSeed(7);
    const a = new nn.Linear(100, 10).weight.dataSync();
    manualSeed(7);
    const b = new nn.Linear(100, 10).weight.dataSync();
    assert.deepEqual(a, b);
    const bound = 1 / Math.sqrt(100);
    assert.ok(a.every((v) => Math.abs(v) <= bound));
    assert.ok(Math.max(...a) > 0.8 * bound, 'uniform over the whole range');
  });
});

describe('wrong input shapes name the module path', () => {
  test("Model A with the seed's [1, 10, 10, 10] dummy input fails at 'fc'", () => {
    const m = new ModelA();
    assert.throws(
      () => m(randn([1, 10, 10, 10])),
      (e: Error) => {
        assert.match(e.message, /^Linear at 'fc': expected input \[\*, 645160\] \(in_features=645160\), got \[1, 29160\]$/);
        return true;
      },
    );
  });
  test('nested: the path of a conv inside a Sequential', () => {
    class Net extends nn.Module {
      features = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU());
      forward(x: Tensor): Tensor {
        return this.features(x);
      }
    }
    assert.throws(() => new Net()(randn([2, 1, 8, 8])), {
      message: "Conv2d at 'features.0': expected input [N, 3, *, *] (in_channels=3), got [2, 1, 8, 8]",
    });
  });
  test('rank and spatial-size errors', () => {
    assert.throws(() => new nn.BatchNorm2d(3)(randn([2, 3])), {
      message: 'BatchNorm2d at the root module: expected a 4-d input, got shape [2, 3]',
    });
    assert.throws(() => new nn.Conv2d(1, 1, 5)(randn([1, 1, 3, 3])), { message: /smaller than the \(dilated\) kernel 5×5/ });
  });
  test('Model A runs on [1, 10, 50, 50] (254×254 after the transpose)', () => {
    const m = new ModelA();
    const y = m(randn([1, 10, 50, 50])) as Tensor;
    assert.deepEqual(y.shape, [1, 100]);
  });
});

describe('loadStateDict', () => {
  test('round trip, strict', () => {
    manualSeed(1);
    const a = new DemoCNN();
    manualSeed(2);
    const b = new DemoCNN();
    b.loadStateDict(a.stateDict());
    assert.deepEqual(b.stateDict()['conv2.weight'].dataSync(), a.stateDict()['conv2.weight'].dataSync());
    assert.deepEqual(b.stateDict()['fc1.weight'].dataSync(), a.stateDict()['fc1.weight'].dataSync());
  });

  test('strict failure lists every problem and changes nothing', () => {
    const m = new DemoCNN();
    const before = m.stateDict()['conv1.weight'].dataSync().slice();
    const sd: Record<string, Tensor> = { ...m.stateDict() };
    sd['conv1.weight'] = zeros([16, 1, 3, 3]); // valid, would be applied
    delete sd['fc2.bias'];
    sd['fc1.weight'] = zeros([3, 3]);
    sd['extra.weight'] = zeros([1]);
    assert.throws(
      () => m.loadStateDict(sd),
      (e: Error) => {
        assert.match(e.message, /nothing was changed/);
        assert.match(e.message, /missing keys: fc2\.bias/);
        assert.match(e.message, /unexpected keys: extra\.weight/);
        assert.match(e.message, /fc1\.weight: checkpoint has \[3, 3\], model has \[128, 1568\]/);
        return true;
      },
    );
    assert.deepEqual(m.stateDict()['conv1.weight'].dataSync(), before);
  });

  test('non-strict loads what matches and reports the rest', () => {
    const m = new nn.Linear(2, 2);
    const r = m.loadStateDict(
      {
        weight: tensor([
          [1, 2],
          [3, 4],
        ]),
        other: zeros([1]),
      },
      { strict: false },
    );
    assert.deepEqual(r, { missingKeys: ['bias'], unexpectedKeys: ['other'] });
    assert.deepEqual(Array.from(m.weight.dataSync()), [1, 2, 3, 4]);
  });

  test("PyTorch's int64 num_batches_tracked arrives as a number and is kept as int32", () => {
    const bn = new nn.BatchNorm2d(2);
    bn.loadStateDict({
      weight: tensor([1, 1]),
      bias: tensor([0, 0]),
      running_mean: tensor([0.5, -0.5]),
      running_var: tensor([2, 3]),
      num_batches_tracked: tensor([7], [], 'float32'),
    });
    assert.equal(bn.num_batches_tracked!.dtype, 'int32');
    assert.equal(bn.num_batches_tracked!.item(), 7);
  });
});
