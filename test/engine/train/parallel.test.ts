// Data-parallel training (src/engine/parallel): N = 2 worker threads compute what one thread
// computes, at every stage of the demo CNN — the whole batch's BN statistics (SyncBatchNorm), the
// same quantizer scales, the same dropout masks — and a failing or interrupted run stops every thread.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../../src/engine/backend/tf';
import {
  data,
  DemoCNN,
  DemoGRU,
  F,
  fit,
  initBackend,
  InterruptedError,
  linger,
  manualSeed,
  nn,
  optim,
  rand,
  randn,
  tensor,
  Tensor,
} from '../../../src/engine/index';
import { setInterruptBuffer, requestInterrupt } from '../../../src/engine/interrupt';
import { loadModelFile } from '../../../src/engine/modelFile';
import { DataParallel } from '../../../src/engine/parallel/dataParallel';

before(async () => {
  await initBackend();
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-parallel-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

type Stage = 'float' | 'traced' | 'normalized' | 'fixed';
const STAGES: Stage[] = ['float', 'traced', 'normalized', 'fixed'];

function stageModel(stage: Stage): DemoCNN {
  manualSeed(0);
  const m = new DemoCNN();
  if (stage !== 'float') linger.traceLayers(m, m, randn([1, 1, 28, 28]));
  if (stage === 'normalized' || stage === 'fixed') linger.normalizeLayers(m);
  if (stage === 'fixed') linger.init(m);
  return m;
}

/** Random images; the second half 3× brighter, so the halves' own maxima would choose other scales. */
function batch(n: number, seed: number): { x: Tensor; y: Tensor } {
  manualSeed(seed);
  const x = rand([n, 1, 28, 28]).dataSync() as Float32Array;
  x.subarray((n >> 1) * 784).forEach((v, i, a) => {
    a[i] = 3 * v;
  });
  return {
    x: tensor(x, [n, 1, 28, 28]),
    y: tensor(
      Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % 10),
      [n],
      'int32',
    ),
  };
}

/** ‖a − b‖∞ / ‖b‖∞ (0 when both are 0). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0,
    m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
}

/** SGD that keeps the gradients it applied (the whole batch's, after the workers' reduction). */
class CapturingSGD extends optim.SGD {
  grads = new Map<number, Float32Array>();
  protected update(i: number, p: nn.Parameter, grad: tf.Tensor): void {
    this.grads.set(i, (grad.dataSync() as Float32Array).slice());
    super.update(i, p, grad);
  }
}

/**
 * One SGD step of `a` on one thread and of `b` (the same model) on 2 data-parallel threads, on
 * the same batch: the losses agree within 1e-5 and so does every gradient, relative to its own
 * max (a gradient that is rounding noise — max |g| below 1e-4 × the model's largest — relative to
 * the model's largest). `then` sees both models while the workers still run.
 */
function oneStepOnTwoThreads(a: nn.Module, b: nn.Module, x: Tensor, y: Tensor, label: string, then: () => void): void {
  const oa = new CapturingSGD(a.parameters(), { lr: 0.05, momentum: 0.9 });
  const ob = new CapturingSGD(b.parameters(), { lr: 0.05, momentum: 0.9 });
  const la = oa.step(() => F.crossEntropy(a(x), y));
  const dp = DataParallel.start(b, ob, { workers: 2, sample: { x, y }, maxRows: x.shape[0] });
  try {
    const lb = dp.step(x, y);
    assert.ok(Math.abs(la - lb) <= 1e-5 * Math.abs(la), `loss ${la} vs ${lb}`);
    assert.equal(oa.grads.size, ob.grads.size);
    const top = Math.max(...[...oa.grads.values()].map((g) => relDiff(g, new Float32Array(g.length))));
    for (const [i, g] of oa.grads) {
      const other = ob.grads.get(i)!;
      let d = 0,
        m = 0;
      for (let k = 0; k < g.length; k++) {
        d = Math.max(d, Math.abs(other[k] - g[k]));
        m = Math.max(m, Math.abs(g[k]));
      }
      const r = d / (m < 1e-4 * top ? top : m);
      assert.ok(
        r <= 1e-5,
        `${label}: gradient of parameter ${i} differs by ${r.toExponential(2)} (relative; its max |g| ${m.toExponential(2)})`,
      );
    }
    then();
  } finally {
    dp.close();
  }
}

const isQuantBuffer = (k: string) => /(^|\.)(scale_[xwo]|running_[xwo])$/.test(k);
const isBnStat = (k: string) => /running_(mean|var)$/.test(k);

describe('data-parallel training: N = 1 vs N = 2 from the same seed', () => {
  for (const stage of STAGES) {
    test(`${stage}: one step gives the same gradients, BN statistics and quantizer scales`, () => {
      const a = stageModel(stage),
        b = stageModel(stage);
      const { x, y } = batch(32, 1);
      // a conv bias before BN has a gradient of exactly 0 in exact arithmetic (BN removes the
      // mean): both runs return rounding noise, compared relative to the model's largest gradient
      oneStepOnTwoThreads(a, b, x, y, stage, () => {
        const sa = a.stateDict(),
          sb = b.stateDict();
        let bn = 0,
          scales = 0;
        for (const k of Object.keys(sa)) {
          if (isBnStat(k)) {
            bn++;
            const r = relDiff(sb[k].dataSync(), sa[k].dataSync());
            assert.ok(r <= 1e-5, `${stage}: ${k} differs by ${r.toExponential(2)}`);
          }
          if (/scale_[xwo]$/.test(k)) {
            scales++;
            assert.equal(sb[k].item(), sa[k].item(), `${stage}: ${k}`);
          }
        }
        assert.ok(stage === 'fixed' ? scales > 0 : bn > 0, 'the stage has the statistics compared');
      });
    });
  }

  for (const stage of STAGES) {
    test(`${stage}: 20 steps of fit agree within 1e-4, and the replicas hold identical state`, () => {
      const ds = (() => {
        manualSeed(5);
        const n = 20 * 32;
        const x = rand([n, 1, 28, 28]).dataSync() as Float32Array;
        // a few bright images: a batch's halves often differ in their maximum
        for (let i = 0; i < n; i += 29)
          x.subarray(i * 784, (i + 1) * 784).forEach((v, j, a) => {
            a[j] = 3 * v;
          });
        return data.fromArrays(
          x,
          Int32Array.from({ length: n }, (_, i) => (i * 3) % 10),
          [1, 28, 28],
        );
      })();
      const train = (m: DemoCNN, workers: number) => {
        const opt = new optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
        return fit(m, new data.DataLoader(ds, { batchSize: 32, shuffle: true, seed: 3 }), opt, { workers });
      };
      const a = stageModel(stage),
        b = stageModel(stage);
      const la = train(a, 1),
        lb = train(b, 2);
      assert.ok(Math.abs(la[0] - lb[0]) <= 1e-4 * la[0], `mean loss ${la[0]} vs ${lb[0]}`);
      const sa = a.stateDict(),
        sb = b.stateDict();
      for (const k of Object.keys(sa)) {
        const r = relDiff(sb[k].dataSync(), sa[k].dataSync());
        assert.ok(r <= 1e-4, `${stage}: ${k} differs by ${r.toExponential(2)} after 20 steps`);
      }

      // the replicas of one run: every parameter and buffer bit-identical to rank 0's
      const opt = new optim.SGD(b.parameters(), { lr: 0.02, momentum: 0.9 });
      const x0 = batch(32, 9);
      const dp = DataParallel.start(b, opt, { workers: 2, sample: x0, maxRows: 32 });
      try {
        for (let i = 0; i < 3; i++) dp.step(x0.x, x0.y);
        const [replica] = dp.replicaStates();
        const own = b.stateDict();
        assert.deepEqual(Object.keys(replica).sort(), Object.keys(own).sort());
        for (const [k, v] of Object.entries(replica)) {
          assert.deepEqual(Array.from(v.data), Array.from(own[k].dataSync()), `${stage}: the replica's ${k}`);
        }
        if (stage === 'fixed') {
          // the integer eval of the replica's state is the coordinator's, bit for bit
          const c = stageModel('fixed');
          c.loadStateDict(
            Object.fromEntries(Object.entries(replica).map(([k, v]) => [k, new Tensor(tf.tensor(v.data, v.shape, v.dtype as 'float32'))])),
          );
          b.eval();
          c.eval();
          const probe = batch(16, 4).x;
          assert.deepEqual(Array.from(c(probe).dataSync()), Array.from(b(probe).dataSync()));
          assert.ok(Object.keys(replica).some(isQuantBuffer));
        }
      } finally {
        dp.close();
      }
    });
  }
});

describe('data-parallel training of the sequence demo (DemoGRU): N = 1 vs N = 2', () => {
  const gruModel = (stage: 'float' | 'fixed') => {
    manualSeed(0);
    const m = new DemoGRU();
    if (stage === 'fixed') {
      linger.traceLayers(m, m, randn([1, 1, 28, 28]));
      linger.normalizeLayers(m);
      linger.init(m);
    }
    return m;
  };
  for (const stage of ['float', 'fixed'] as const) {
    test(`${stage}: one step gives the same gradients and the same GRUInt scales; 6 steps of fit agree within 1e-4`, () => {
      const a = gruModel(stage),
        b = gruModel(stage);
      const { x, y } = batch(16, 1);
      oneStepOnTwoThreads(a, b, x, y, stage, () => {
        const sa = a.stateDict(),
          sb = b.stateDict();
        const gruKeys = Object.keys(sa).filter((k) => /^gru\.(scale|running)_/.test(k));
        assert.equal(gruKeys.length > 0, stage === 'fixed');
        for (const k of gruKeys) assert.equal(sb[k].item(), sa[k].item(), `${stage}: ${k}`);
      });
      const ds = (() => {
        manualSeed(5);
        const n = 6 * 16;
        const xs = rand([n, 1, 28, 28]).dataSync() as Float32Array;
        for (let i = 0; i < n; i += 7)
          xs.subarray(i * 784, (i + 1) * 784).forEach((v, j, arr) => {
            arr[j] = 3 * v;
          });
        return data.fromArrays(
          xs,
          Int32Array.from({ length: n }, (_, i) => (i * 3) % 10),
          [1, 28, 28],
        );
      })();
      const c = gruModel(stage),
        d = gruModel(stage);
      const train = (m: DemoGRU, workers: number) =>
        fit(
          m,
          new data.DataLoader(ds, { batchSize: 16, shuffle: true, seed: 3 }),
          new optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9 }),
          { workers },
        );
      const lc = train(c, 1),
        ld = train(d, 2);
      assert.ok(Math.abs(lc[0] - ld[0]) <= 1e-4 * lc[0], `mean loss ${lc[0]} vs ${ld[0]}`);
      const sc = c.stateDict(),
        sd = d.stateDict();
      for (const k of Object.keys(sc)) {
        const r = relDiff(sd[k].dataSync(), sc[k].dataSync());
        assert.ok(r <= 1e-4, `${stage}: ${k} differs by ${r.toExponential(2)} after 6 steps`);
      }
    });
  }
});

describe('data-parallel training: models, notes and failures', () => {
  const MLP = `import { nn, Tensor } from 'linger-studio';
import { isMainThread } from 'node:worker_threads';
export class Mlp extends nn.Module {
  fc1 = new nn.Linear(16, 32);
  bn = new nn.BatchNorm1d(32);
  relu = new nn.ReLU();
  drop = new nn.Dropout(0.3);
  fc2 = new nn.Linear(32, 4);
  forward(x: Tensor): Tensor {
    if (process.env.LINGER_TEST_WORKER_THROWS && !isMainThread) throw new Error('boom in a worker');
    return this.fc2(this.drop(this.relu(this.bn(this.fc1(x)))));
  }
}
export const inputShape = [1, 16];
export function createModel() { return new Mlp(); }
`;
  const file = path.join(dir, 'mlp.ts');
  fs.writeFileSync(file, MLP);
  const mlpData = () => {
    manualSeed(11);
    const n = 96;
    return data.fromArrays(
      rand([n, 16]).dataSync() as Float32Array,
      Int32Array.from({ length: n }, (_, i) => i % 4),
      [16],
    );
  };

  test('a model file with BatchNorm1d and Dropout: the same masks and statistics on 2 threads as on 1', async () => {
    const mf = await loadModelFile(file);
    const run = (workers: number) => {
      manualSeed(2);
      const m = mf.createModel();
      const opt = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
      manualSeed(7); // the dropout masks come from here on
      fit(m, new data.DataLoader(mlpData(), { batchSize: 24, shuffle: true, seed: 1 }), opt, { workers, epochs: 2 });
      return m.stateDict();
    };
    const one = run(1),
      two = run(2);
    for (const k of Object.keys(one)) {
      const r = relDiff(two[k].dataSync(), one[k].dataSync());
      assert.ok(r <= 1e-4, `${k} differs by ${r.toExponential(2)}`);
    }
  });

  test('a standalone BatchNorm quantized to BatchNormInt: the same statistics and weights on 2 threads as on 1', async () => {
    const file2 = path.join(dir, 'bnint.ts');
    fs.writeFileSync(
      file2,
      `import { nn, Tensor } from 'linger-studio';
export class Net extends nn.Module {
  conv = new nn.Conv2d(1, 4, 3, { padding: 1 });
  relu = new nn.ReLU();
  bn = new nn.BatchNorm2d(4);
  flatten = new nn.Flatten();
  fc = new nn.Linear(4 * 8 * 8, 4);
  forward(x: Tensor): Tensor { return this.fc(this.flatten(this.bn(this.relu(this.conv(x))))); }
}
export const inputShape = [1, 1, 8, 8];
export function createModel() { return new Net(); }
`,
    );
    const mf = await loadModelFile(file2);
    manualSeed(4);
    const n = 64;
    const x = rand([n, 1, 8, 8]).dataSync() as Float32Array;
    x.subarray(32 * 64).forEach((v, i, a) => {
      a[i] = 3 * v;
    });
    const ds = data.fromArrays(
      x,
      Int32Array.from({ length: n }, (_, i) => i % 4),
      [1, 8, 8],
    );
    const run = (workers: number) => {
      manualSeed(2);
      const m = mf.createModel();
      linger.traceLayers(m, m, randn([1, 1, 8, 8]));
      linger.normalizeLayers(m);
      linger.init(m);
      assert.equal(m.getSubmodule('bn').typeName(), 'BatchNormInt');
      fit(m, new data.DataLoader(ds, { batchSize: 64 }), new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 }), {
        workers,
        epochs: 1,
      });
      return m.stateDict();
    };
    // one step (one batch of 64): parameters and statistics as one thread computes them
    const one = run(1),
      two = run(2);
    for (const k of Object.keys(one)) {
      const r = relDiff(two[k].dataSync(), one[k].dataSync());
      assert.ok(r <= 1e-5, `${k} differs by ${r.toExponential(2)}`);
    }
  });

  test('a model a worker cannot build trains on one thread and says so', () => {
    class Local extends nn.Module {
      fc = new nn.Linear(16, 4);
      forward(x: Tensor): Tensor {
        return this.fc(x);
      }
    }
    const m = new Local();
    const notes: string[] = [];
    const losses = fit(m, new data.DataLoader(mlpData(), { batchSize: 24 }), new optim.SGD(m.parameters(), { lr: 0.1 }), {
      workers: 2,
      onNote: (s) => notes.push(s),
    });
    assert.equal(losses.length, 1);
    assert.match(notes.join('\n'), /Local was not made by a model file.*one thread/);
  });

  test('a worker that throws stops the run with its error (no hang), and the next run works', async () => {
    const mf = await loadModelFile(file);
    const m = mf.createModel();
    const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
    process.env.LINGER_TEST_WORKER_THROWS = '1';
    try {
      assert.throws(() => fit(m, new data.DataLoader(mlpData(), { batchSize: 24 }), opt, { workers: 2 }), /worker 1: boom in a worker/);
    } finally {
      delete process.env.LINGER_TEST_WORKER_THROWS;
    }
    assert.equal(DataParallel.open, 0, 'every worker stopped');
    assert.equal(fit(m, new data.DataLoader(mlpData(), { batchSize: 24 }), opt, { workers: 2 }).length, 1);
  });

  test('an interrupt stops every thread at the next step; the model keeps what it learned', async () => {
    const mf = await loadModelFile(file);
    const m = mf.createModel();
    const flag = new SharedArrayBuffer(4);
    setInterruptBuffer(flag);
    try {
      let steps = 0;
      assert.throws(
        () =>
          fit(m, new data.DataLoader(mlpData(), { batchSize: 8 }), new optim.SGD(m.parameters(), { lr: 0.1 }), {
            workers: 2,
            onStep: () => {
              if (++steps === 3) requestInterrupt(flag);
            },
          }),
        InterruptedError,
      );
      assert.equal(steps, 3);
      assert.equal(DataParallel.open, 0, 'every worker stopped');
    } finally {
      setInterruptBuffer(undefined);
    }
  });
});
