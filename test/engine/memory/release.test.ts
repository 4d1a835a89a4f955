// Memory that behaves like PyTorch's (issue #13): module calls keep only what they return, dropped
// tensors are released, long loops hold memory flat, and memory() says what is in use.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import {
  collectGarbage,
  data,
  DemoCNN,
  F,
  initBackend,
  linger,
  manualSeed,
  memory,
  nn,
  optim,
  rand,
  randn,
  tensor,
  Tensor,
  tidy,
} from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';

before(async () => {
  await initBackend();
});

const live = () => tf.memory().numTensors;
const bytes = () => tf.memory().numBytes;

/** A DemoCNN at each stage of linger's pipeline (the fixed one calibrated, so that eval runs). */
function stages(): [string, () => nn.Module][] {
  const make = (upTo: number) => () => {
    manualSeed(0);
    const m = new DemoCNN();
    if (upTo >= 1) linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    if (upTo >= 2) linger.normalizeLayers(m);
    if (upTo >= 3) {
      linger.init(m);
      linger.calibrate(m, [rand([8, 1, 28, 28])]);
    }
    return m;
  };
  return [
    ['float', make(0)],
    ['traced', make(1)],
    ['normalized', make(2)],
    ['fixed', make(3)],
  ];
}

describe('a module call keeps only what it returns', () => {
  for (const [stage, make] of stages()) {
    test(`${stage}: one call leaves its output and nothing else, in train and eval`, () => {
      const m = make();
      const x = rand([16, 1, 28, 28]);
      for (const mode of ['train', 'eval'] as const) {
        m.train(mode === 'train');
        m(x); // first call: lazily made state (quantizer scales) is not an intermediate
        collectGarbage();
        const before = live();
        const y = m(x) as Tensor;
        assert.equal(live() - before, 1, `${stage}/${mode}: only the output survives the call`);
        assert.deepEqual(y.shape, [16, 10]);
        assert.ok(y.dataSync().every(Number.isFinite), 'the output is readable');
      }
    });
  }

  test('buffers a call updates stay valid (running statistics, num_batches_tracked, quantizer state)', () => {
    const changedBy = (m: nn.Module) => {
      m.train();
      const x = rand([16, 1, 28, 28]);
      const sd = () => Object.fromEntries(Object.entries(m.stateDict()).map(([k, v]) => [k, Array.from(v.dataSync())]));
      const a = sd();
      m(x);
      m(x);
      collectGarbage();
      const b = sd();
      return Object.keys(a).filter((k) => a[k].some((v, i) => v !== b[k][i]));
    };
    const float = changedBy(stages()[0][1]());
    assert.deepEqual(float.filter((k) => k.includes('running') || k.includes('num_batches')).sort(), [
      'bn1.num_batches_tracked',
      'bn1.running_mean',
      'bn1.running_var',
      'bn2.num_batches_tracked',
      'bn2.running_mean',
      'bn2.running_var',
    ]);
    const fixed = changedBy(stages()[3][1]());
    for (const k of ['conv1.running_x', 'conv1.running_o', 'fc2.running_o'])
      assert.ok(fixed.includes(k), `${k} updated: ${fixed.join(', ')}`);
  });

  test('nested modules, a sub-module called directly, and results in arrays and objects', () => {
    class Pair extends nn.Module {
      a = new nn.Linear(8, 4);
      b = new nn.Sequential(new nn.Linear(4, 4), new nn.ReLU());
      forward(x: Tensor): { h: Tensor; outs: Tensor[] } {
        const h = this.a(x) as Tensor;
        const o = this.b(h.mul(2)) as Tensor;
        return { h, outs: [o, o.sum()] };
      }
    }
    const m = new Pair();
    const x = randn([5, 8]);
    collectGarbage();
    let before = live();
    const r = m(x) as { h: Tensor; outs: Tensor[] };
    assert.equal(live() - before, 3, "h, o and the sum: the product h·2 and the inner layers' tensors are released");
    assert.deepEqual([r.h.shape, r.outs[0].shape, r.outs[1].shape], [[5, 4], [5, 4], []]);
    assert.ok(Number.isFinite(r.outs[1].item()));
    before = live();
    const inner = m.b(randn([5, 4])) as Tensor;
    assert.equal(live() - before, 2, 'the input made in the argument list and the output');
    assert.deepEqual(inner.shape, [5, 4]);
  });

  test('a module returning its input, and an input the caller made inside a tidy', () => {
    const id = new nn.Identity();
    const x = randn([3, 3]);
    assert.equal(id(x), x);
    assert.ok(!x.isDisposed, 'an input is never released by the call it went into');
    const n = tidy(() => (id(randn([2, 2])) as Tensor).sum().item());
    assert.ok(Number.isFinite(n));
  });

  test('keep() lets an intermediate captured inside forward outlive the call', () => {
    class Stash extends nn.Module {
      fc = new nn.Linear(4, 4);
      seen: { kept?: Tensor; plain?: Tensor } = {};
      forward(x: Tensor): Tensor {
        const h = this.fc(x) as Tensor;
        const a = h.relu();
        this.seen = { kept: a.keep(), plain: h.mul(3) };
        return a.sum();
      }
    }
    const m = new Stash();
    const out = m(randn([2, 4])) as Tensor;
    assert.ok(Math.abs(out.item() - m.seen.kept!.sum().item()) < 1e-5, 'the kept activation is readable after the call');
    assert.ok(m.seen.plain!.isDisposed, 'what was not kept nor returned is released');
    assert.throws(() => m.seen.plain!.dataSync(), /disposed/);
  });

  test('gradients through opt.step are unchanged: the loss falls on a fixed batch at every stage', () => {
    for (const [stage, make] of stages()) {
      const m = make();
      m.train();
      const opt = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
      manualSeed(3);
      const x = rand([16, 1, 28, 28]);
      const y = tensor(
        Int32Array.from({ length: 16 }, (_, i) => i % 10),
        [16],
        'int32',
      );
      const first = opt.step(() => F.crossEntropy(m(x) as Tensor, y));
      let last = first;
      for (let i = 0; i < 8; i++) last = opt.step(() => F.crossEntropy(m(x) as Tensor, y));
      assert.ok(last < first, `${stage}: ${first} → ${last}`);
    }
  });
});

describe('dropped tensors are released', () => {
  for (const [stage, make] of stages()) {
    test(`${stage}: 40 forward calls outside any tidy, outputs dropped, train and eval: back to the baseline`, () => {
      const m = make();
      const x = rand([64, 1, 28, 28]);
      for (const mode of ['train', 'eval'] as const) {
        m.train(mode === 'train');
        m(x);
        collectGarbage();
        const [t0, b0] = [live(), bytes()];
        for (let i = 0; i < 40; i++) m(x);
        assert.ok(live() - t0 <= 40, `${stage}/${mode}: at most the 40 outputs are alive before a collection (${live() - t0})`);
        collectGarbage();
        assert.ok(Math.abs(live() - t0) <= 2, `${stage}/${mode}: ${live() - t0} tensors above the baseline after a collection`);
        assert.ok(Math.abs(bytes() - b0) <= 1024, `${stage}/${mode}: ${bytes() - b0} bytes above the baseline`);
      }
    });
  }

  test('without the synchronous hook too: after V8 collects, the release follows on the next event-loop turn', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const m = new DemoCNN().eval();
    collectGarbage();
    const t0 = live();
    (() => {
      for (let i = 0; i < 20; i++) m(randn([4, 1, 28, 28]));
    })();
    assert.ok(live() >= t0 + 20, 'inputs and outputs are alive before anything is collected');
    gc();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(live() - t0 <= 2, `released by the finalizers: ${live() - t0} left`);
  });

  test('dispose() and tidy() keep working and are idempotent', () => {
    collectGarbage();
    const t0 = live();
    const a = randn([4, 4]);
    a.dispose();
    a.dispose();
    assert.ok(a.isDisposed);
    const b = randn([2, 3]);
    const v = b.permute(1, 0); // a view: the same storage
    v.dispose();
    b.dispose();
    let kept: Tensor | undefined;
    const r = tidy(() => {
      const inner = randn([3]);
      kept = inner.mul(2);
      return inner.add(1);
    });
    kept!.dispose(); // released by tidy already
    assert.equal(r.shape[0], 3);
    r.dispose();
    collectGarbage();
    assert.equal(live(), t0);
  });

  test('a dropped optimizer releases its state (momentum slots)', () => {
    const m = new DemoCNN();
    collectGarbage();
    const t0 = live();
    (() => {
      const opt = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
      opt.step(() => F.crossEntropy(m(rand([4, 1, 28, 28])) as Tensor, tensor([1, 2, 3, 4], [4], 'int32')));
    })();
    assert.equal(live() - t0, m.parameters().length, 'one momentum slot per parameter while the optimizer lives');
    collectGarbage();
    assert.equal(live(), t0, 'released with the optimizer');
  });

  test('parameters of a dropped model are released; optimizer state and a live model are not', () => {
    const keep = new DemoCNN();
    const opt = new optim.SGD(keep.parameters(), { lr: 0.1, momentum: 0.9 });
    opt.step(() => F.crossEntropy(keep(rand([4, 1, 28, 28])) as Tensor, tensor([1, 2, 3, 4], [4], 'int32')));
    collectGarbage();
    const t0 = live();
    (() => {
      new DemoCNN();
      new DemoCNN();
    })();
    assert.ok(live() > t0);
    collectGarbage();
    assert.equal(live(), t0, 'the two dropped models are gone');
    const state = opt.stateDict();
    const slots = Object.values(state.state).length;
    assert.equal(slots, keep.parameters().length);
    (() => {
      opt.stateDict();
    })();
    collectGarbage();
    assert.equal(live(), t0, 'views of the optimizer slots do not release the slots');
    // the optimizer still steps (its slots are intact)
    const loss = opt.step(() => F.crossEntropy(keep(rand([4, 1, 28, 28])) as Tensor, tensor([1, 2, 3, 4], [4], 'int32')));
    assert.ok(Number.isFinite(loss));
  });
});

describe('long runs hold memory flat', () => {
  test('1,000 steps of a hand-written DataLoader loop with nothing disposed', (t) => {
    manualSeed(0);
    const model = new DemoCNN();
    const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const { train } = data.fashionMnist({ limitPerClass: 200 });
    const counts: number[] = [],
      byteCounts: number[] = [],
      natural: number[] = [];
    // the floor (what is alive right after a full collection) at the end of warm-up and later
    const floors = new Map<number, number>();
    const checkpoints = new Set([200, 600, 999]);
    let step = 0;
    while (step < 1000) {
      for (const { x, y } of new data.DataLoader(train, { batchSize: 16, shuffle: true })) {
        const before = memory().collections;
        opt.step(() => F.crossEntropy(model(x) as Tensor, y));
        if (memory().collections > before) natural.push(step);
        counts.push(live());
        byteCounts.push(bytes());
        if (checkpoints.has(step)) {
          collectGarbage();
          floors.set(step, live());
        }
        if (++step >= 1000) break;
      }
    }
    const warm = 200;
    const slope = (floors.get(999)! - floors.get(200)!) / (999 - 200);
    const peak = Math.max(...counts.slice(warm)),
      low = Math.min(...counts.slice(warm));
    t.diagnostic(
      `floors ${[...floors].map(([s, n]) => `${n} at step ${s}`).join(', ')}: slope ${slope.toFixed(4)} tensors/step; ` +
        `full collections at safe points at steps [${natural.join(', ')}] (V8's own collections release the rest); between ${low} and ${peak} tensors, ` +
        `${(Math.max(...byteCounts.slice(warm)) / 2 ** 20).toFixed(1)} MiB at most`,
    );
    assert.equal(slope, 0, `the floor moved by ${slope} tensors/step`);
    assert.ok(peak - low <= 1100, `bounded between collections: ${low}..${peak}`);
  });

  test('100 eval calls at batch 1,000 on the fixed demo model complete, memory back at the baseline', () => {
    const m = stages()[3][1]();
    m.eval();
    const x = rand([1000, 1, 28, 28]);
    collectGarbage();
    const t0 = live();
    let last: Tensor | undefined;
    for (let i = 0; i < 100; i++) last = m(x) as Tensor;
    assert.deepEqual(last!.shape, [1000, 10]);
    // drop the last reference: the collection below must release what it held
    last = undefined; // eslint-disable-line no-useless-assignment
    collectGarbage();
    assert.ok(live() - t0 <= 1, `${live() - t0} tensors above the baseline`);
    const mem = memory();
    assert.ok(mem.wasmHeapBytes === undefined || mem.wasmHeapBytes < 2 ** 31, `wasm heap ${mem.wasmHeapBytes}`);
  });
});

describe('memory()', () => {
  test('reports tensors, bytes, the backend and the wasm heap', () => {
    collectGarbage();
    const a = memory();
    const t = zerosMiB(4);
    const b = memory();
    assert.equal(b.tensors - a.tensors, 1);
    assert.equal(b.bytes - a.bytes, 4 * 2 ** 20);
    assert.equal(b.backend, tf.getBackend());
    if (b.backend === 'wasm') assert.ok(b.wasmHeapBytes! >= b.bytes);
    assert.equal(typeof b.syncRelease, 'boolean');
    t.dispose();
    assert.equal(memory().bytes, a.bytes);
  });
});

function zerosMiB(n: number): Tensor {
  return new Tensor(tf.zeros([n * 2 ** 18]));
}
