// Float LSTM/GRU/LayerNorm export (issue #12, item 3): ONNX's standard LSTM and GRU ops, one node per layer,
// every output (y, h_n, c_n) within 1e-4 of the engine in onnxruntime, for one-way, bidirectional,
// stacked, batch_first layers and given initial states; and inside a model with a classifier head.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { initBackend, linger, manualSeed, nn, randn, Tensor } from '../../../src/engine/index';
import { buildOnnxModel } from '../../../src/engine/onnx/export';
import { diff, tempDir } from './ort';

before(async () => {
  await initBackend();
});
const dir = tempDir('rnn');

/** Wraps a recurrent layer so that the exported graph has its outputs flat: y, h_n(, c_n). */
class Wrap extends nn.Module {
  constructor(
    readonly rnn: nn.LSTM | nn.GRU,
    readonly withState: boolean,
  ) {
    super();
  }
  forward(x: Tensor): Tensor[] {
    const n = this.rnn.numLayers * this.rnn.directions;
    const b = x.shape[this.rnn.batchFirst ? 0 : 1];
    if (this.rnn instanceof nn.LSTM) {
      const [y, [h, c]] = this.withState
        ? this.rnn(x, [randnLike([n, b, this.rnn.hiddenSize], 1), randnLike([n, b, this.rnn.hiddenSize], 2)])
        : this.rnn(x);
      return [y, h, c];
    }
    const [y, h] = this.withState ? this.rnn(x, randnLike([n, b, this.rnn.hiddenSize], 3)) : this.rnn(x);
    return [y, h];
  }
}
function randnLike(shape: number[], seed: number): Tensor {
  manualSeed(seed);
  return randn(shape);
}

/** Exports with `x` as the dummy input and compares every output on `run` (default: x itself). */
async function check(
  m: nn.Module,
  x: Tensor,
  name: string,
  o: { dynamicBatch?: boolean; run?: Tensor; opset?: number; op?: string } = {},
): Promise<void> {
  m.eval();
  const file = path.join(dir, `${name}.onnx`);
  const { encodeModel, writeFileAtomic } = await import('../../../src/engine/onnx/proto');
  const proto = buildOnnxModel(m, x, { dynamicBatch: o.dynamicBatch ?? false, ...(o.opset ? { opset: o.opset } : {}) });
  x = o.run ?? x;
  writeFileAtomic(file, encodeModel(proto));
  const ops = (proto.graph?.node ?? []).map((n) => n.opType);
  assert.ok(o.op ? ops.includes(o.op) : ops.includes('LSTM') || ops.includes('GRU'), `${name}: ${ops.join(' ')}`);
  const mine = ([] as Tensor[]).concat(m(x) as Tensor | Tensor[]);
  const s = await ort.InferenceSession.create(file);
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
  assert.equal(s.outputNames.length, mine.length, `${name}: outputs`);
  s.outputNames.forEach((k, i) => {
    assert.deepEqual([...out[k].dims], mine[i].shape, `${name}: output ${i} shape`);
    const d = diff(out[k].data as Float32Array, mine[i].dataSync());
    assert.ok(d.maxAbs <= 1e-4, `${name}: output ${i} max |Δ| ${d.maxAbs}`);
  });
}

describe('ONNX export of nn.LSTM, nn.GRU and nn.LayerNorm (float)', () => {
  const configs: [string, { numLayers?: number; bidirectional?: boolean; batchFirst?: boolean; bias?: boolean }, boolean][] = [
    ['one_way', {}, false],
    ['bidirectional_2layers_batchfirst', { numLayers: 2, bidirectional: true, batchFirst: true }, false],
    ['stacked_with_state', { numLayers: 2 }, true],
    ['no_bias_bidirectional', { bias: false, bidirectional: true }, true],
  ];
  for (const kind of ['LSTM', 'GRU'] as const) {
    for (const [name, opts, withState] of configs) {
      test(`${kind} ${name}: y, h_n${kind === 'LSTM' ? ', c_n' : ''} within 1e-4 in onnxruntime`, async () => {
        manualSeed(7);
        const rnn = kind === 'LSTM' ? new nn.LSTM(6, 5, opts) : new nn.GRU(6, 5, opts);
        const x = randn(opts.batchFirst ? [3, 7, 6] : [7, 3, 6]);
        await check(new Wrap(rnn, withState), x, `${kind}_${name}`);
      });
    }
  }

  test('a Conv1d → BN → ReLU → GRU → Linear classifier, float and traced + normalized', async () => {
    class Net extends nn.Module {
      conv = new nn.Conv1d(8, 12, 3, { padding: 1 });
      bn = new nn.BatchNorm1d(12);
      relu = new nn.ReLU();
      gru = new nn.GRU(12, 16, { batchFirst: true });
      fc = new nn.Linear(16, 4);
      forward(x: Tensor): Tensor {
        const h = this.relu(this.bn(this.conv(x)));
        const [out] = this.gru(h.transpose(1, 2));
        return this.fc(out.mean(1));
      }
    }
    manualSeed(3);
    const m = new Net();
    const x = randn([2, 8, 10]);
    await check(m, x, 'classifier_float');
    // exported with a symbolic batch (linger export's default), run on another batch size
    await check(m, x, 'classifier_dynamic', { dynamicBatch: true, run: randn([5, 8, 10]) });
    linger.traceLayers(m, m, randn([1, 8, 10]));
    linger.normalizeLayers(m);
    await check(m, x, 'classifier_traced');
  });

  test('nn.LayerNorm: decomposed at opset 13, LayerNormalization from opset 17; within 1e-4', async () => {
    class Net extends nn.Module {
      gru = new nn.GRU(6, 8, { batchFirst: true });
      norm = new nn.LayerNorm(8);
      plain = new nn.LayerNorm([5, 8], { elementwiseAffine: false });
      forward(x: Tensor): Tensor {
        const [out] = this.gru(x);
        return this.plain(this.norm(out));
      }
    }
    manualSeed(9);
    const m = new Net();
    // non-trivial affine parameters
    m.norm.weight!.assignLogical(randn([8]).mul(0.5).add(1));
    m.norm.bias!.assignLogical(randn([8]).mul(0.3));
    const x = randn([3, 5, 6]);
    await check(m, x, 'layernorm_opset13', { op: 'ReduceMean' });
    await check(m, x, 'layernorm_opset17', { opset: 17, op: 'LayerNormalization' });
  });
});
