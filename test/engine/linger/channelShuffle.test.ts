// linger's channel_shuffle, the op added as docs/architecture.md describes (one folder,
// linger/ops/channelShuffle/, and one line in linger/ops/index.ts): the float function against
// PyTorch's view/transpose/view, and the shared per-op checks (opChecker.ts) in the fixed stage.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, linger, manualSeed, nn, randn, tensor, Tensor } from '../../../src/engine/index';
import { buildOnnxModel } from '../../../src/engine/onnx/index';
import { checkOp } from './opChecker';

before(async () => {
  await initBackend();
});

/** conv → BN → ReLU → channel_shuffle(groups 2) → conv, so the shuffle sits between two Int layers. */
class Shuffler extends nn.Module {
  conv1 = new nn.Conv2d(2, 6, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(6);
  relu = new nn.ReLU();
  conv2 = new nn.Conv2d(6, 4, 1);
  forward(x: Tensor): Tensor {
    return this.conv2(linger.channelShuffle(this.relu(this.bn(this.conv1(x))), 3));
  }
}

describe('linger.channelShuffle in float', () => {
  test('is view(n, g, c/g, h, w) → transpose(1, 2) → view(n, c, h, w)', () => {
    const x = tensor(
      Array.from({ length: 2 * 6 * 2 * 1 }, (_, i) => i),
      [2, 6, 2, 1],
    );
    const y = linger.channelShuffle(x, 2).dataSync();
    // channels [0 1 2 | 3 4 5] interleave to [0 3 1 4 2 5] in each batch row
    const want: number[] = [];
    for (let n = 0; n < 2; n++) for (const c of [0, 3, 1, 4, 2, 5]) for (let h = 0; h < 2; h++) want.push((n * 6 + c) * 2 + h);
    assert.deepEqual(Array.from(y), want);
  });
  test("keeps a quantized tensor's scale and values", () => {
    const x = new Tensor(randn([1, 4, 3, 3]).raw, null, 16);
    const y = linger.channelShuffle(x, 2);
    assert.equal(y.quantScale, 16);
  });
  test('a group count that does not divide the channels is an error naming both', () => {
    assert.throws(() => linger.channelShuffle(randn([1, 6, 2, 2]), 4), /groups must be a positive integer dividing the 6 channels, got 4/);
  });
  test('exports as Reshape → Transpose → Reshape in float', () => {
    manualSeed(1);
    const m = new Shuffler();
    m.eval();
    const ops = buildOnnxModel(m, randn([1, 2, 5, 5])).graph!.node!.map((n) => n.opType);
    assert.deepEqual(ops.slice(ops.indexOf('Relu') + 1, ops.indexOf('Relu') + 4), ['Reshape', 'Transpose', 'Reshape']);
  });
  test("without init's `functions`, the thinker export keeps the layout ops on int8 codes", () => {
    manualSeed(2);
    const m = new Shuffler();
    linger.traceLayers(m, m, randn([1, 2, 5, 5]));
    linger.init(m);
    linger.calibrate(m, [randn([4, 2, 5, 5])]);
    m.eval();
    const ops = buildOnnxModel(m, randn([1, 2, 5, 5]), { dialect: 'thinker' }).graph!.node!.map((n) => n.opType);
    assert.ok(!ops.includes('ShuffleChannel') && ops.includes('Transpose'), ops.join(', '));
  });
  test('init refuses an unknown function name, listing the known ones', () => {
    assert.throws(() => linger.init(new Shuffler(), { functions: ['shuffle'] }), /unknown function 'shuffle' \(bmm, channel_shuffle\)/);
  });
});

describe('channel_shuffle in the fixed stage', () => {
  checkOp({
    name: 'channel_shuffle',
    model: () => {
      manualSeed(3);
      return new Shuffler();
    },
    input: (seed) => {
      manualSeed(100 + seed);
      return randn([2, 2, 5, 5]);
    },
    init: { functions: ['channel_shuffle'] },
    thinker: { opType: 'ShuffleChannel', attributes: ['groups'] },
  });
});
