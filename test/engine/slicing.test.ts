// Slicing (torch.narrow, torch.select / x[:, i]): values, gradients, errors, the scale an Int
// layer's output carries, and ONNX export (Slice) of a GRU classifier reading its last step.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { F, initBackend, linger, manualSeed, nn, optim, randn, tensor, Tensor } from '../../src/engine/index';
import { tf } from '../../src/engine/backend/tf';
import { exportOnnx } from '../../src/engine/onnx/index';
import { diff, runSession, session, tempDir } from './onnx/ort';

before(async () => {
  await initBackend();
});
const dir = tempDir('slicing');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('narrow and select', () => {
  test('values as PyTorch slices them; the gradient lands in the slice; out-of-range is an error naming the sizes', () => {
    const x = tensor(
      Float32Array.from({ length: 24 }, (_, i) => i),
      [2, 3, 4],
    );
    assert.deepEqual(Array.from(x.narrow(2, 1, 2).dataSync()), [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22]);
    assert.deepEqual(x.narrow(1, -1, 1).shape, [2, 1, 4]);
    const last = x.select(1, -1);
    assert.deepEqual(last.shape, [2, 4]);
    assert.deepEqual(Array.from(last.dataSync()), [8, 9, 10, 11, 20, 21, 22, 23]);
    assert.deepEqual(Array.from(x.select(0, 1).select(0, 0).dataSync()), [12, 13, 14, 15]);
    // a permuted tensor slices in its logical order
    assert.deepEqual(Array.from(x.transpose(1, 2).select(2, 0).dataSync()), [0, 1, 2, 3, 12, 13, 14, 15]);
    const p = new nn.Parameter(
      tf.variable(
        tf.tensor3d(
          Array.from({ length: 24 }, (_, i) => i / 10),
          [2, 3, 4],
        ),
      ),
    );
    const g = tf.grad((v: tf.Tensor) => new Tensor(v).select(1, 2).sum().raw)(p.raw);
    const gd = Array.from(g.dataSync());
    assert.deepEqual(
      gd,
      Array.from({ length: 24 }, (_, i) => (Math.floor(i / 4) % 3 === 2 ? 1 : 0)),
    );
    assert.throws(() => x.narrow(1, 2, 2), /narrow: start 2 and length 2 are out of range for dimension 1 of size 3/);
    assert.throws(() => x.select(2, 4), /out of range for dimension 2 of size 4/);
  });

  test("an Int layer's output keeps its scale through select, so the next Int layer reads its codes", () => {
    manualSeed(2);
    const l = new nn.Linear(4, 6);
    const m = new nn.Sequential(l);
    linger.init(m, { dummyInput: randn([2, 3, 4]) });
    m.train();
    const y = m(randn([2, 3, 4])) as Tensor;
    assert.ok(y.quantScale !== undefined);
    assert.equal(y.select(1, -1).quantScale, y.quantScale);
    assert.equal(y.narrow(2, 0, 3).quantScale, y.quantScale);
  });
});

class LastStep extends nn.Module {
  gru = new nn.GRU(5, 6, { batchFirst: true });
  fc = new nn.Linear(6, 3);
  forward(x: Tensor): Tensor {
    const [out] = this.gru(x) as [Tensor, Tensor];
    return this.fc(out.select(1, -1));
  }
}

describe('ONNX export of a classifier reading the last step, out[:, -1]', () => {
  test('float within 1e-4 and fixed (qdq) bit-exact in onnxruntime, at another batch size too', async () => {
    manualSeed(3);
    const m = new LastStep();
    m.eval();
    const floatFile = path.join(dir, 'last-float.onnx');
    await exportOnnx(m, randn([1, 4, 5]), floatFile);
    const x = randn([3, 4, 5]);
    const fd = diff(await runSession(await session(floatFile), x), m(x).dataSync());
    assert.ok(fd.maxAbs <= 1e-4, `float: max |Δ| ${fd.maxAbs}`);

    linger.traceLayers(m, m, randn([1, 4, 5]));
    linger.init(m);
    m.train();
    const opt = new optim.SGD(m.parameters(), { lr: 0.01 });
    for (let i = 0; i < 30; i++) {
      const b = randn([4, 4, 5]);
      opt.step(() => F.crossEntropy(m(b), tensor(Int32Array.from([0, 1, 2, 0]), [4], 'int32')));
    }
    m.eval();
    const fixedFile = path.join(dir, 'last-fixed.onnx');
    await exportOnnx(m, randn([1, 4, 5]), fixedFile);
    const want = m(x).dataSync();
    const qd = diff(await runSession(await session(fixedFile), x), want);
    assert.equal(qd.equalFraction, 1, `qdq: ${qd.equalFraction * qd.n}/${qd.n} equal, max |Δ| ${qd.maxAbs}`);
    assert.ok(new Set(want).size > 3, 'the logits are not constant');
  });
});
