// GRUInt / LSTMInt in the qdq dialect: the integer cell unrolled in standard ONNX reproduces the
// engine's integer eval bit for bit in onnxruntime, with its default session options and at every
// graph optimization level (docs/fixed-point.md).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DemoGRU, F, initBackend, linger, manualSeed, nn, optim, rand, randn, tensor, Tensor } from '../../../src/engine/index';
import { exportOnnx } from '../../../src/engine/onnx/index';
import { diff, OptLevel, runSession, session, tempDir } from './ort';

before(async () => {
  await initBackend();
});
const dir = tempDir('rnn-int');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

type Opts = { numLayers?: number; bidirectional?: boolean; batchFirst?: boolean };
/** A conv front end (so the recurrent layer gets a quantized input) and the layer; returns one of its results. */
class Front extends nn.Module {
  conv = new nn.Conv1d(4, 6, 3, { padding: 1 });
  rnn: nn.GRU | nn.LSTM;
  constructor(
    kind: 'GRU' | 'LSTM',
    opts: Opts,
    readonly which: 0 | 1 | 2,
  ) {
    super();
    this.rnn = kind === 'GRU' ? new nn.GRU(6, 5, opts) : new nn.LSTM(6, 5, opts);
  }
  forward(x: Tensor): Tensor {
    // x [B, 4, T] → conv → [B, 6, T] → [T, B, 6] (or [B, T, 6] batch first)
    const y = this.conv(x);
    const seq = this.rnn.batchFirst ? y.transpose(1, 2) : y.permute(2, 0, 1);
    const [out, st] = this.rnn(seq) as [Tensor, Tensor | [Tensor, Tensor]];
    if (this.which === 0) return out;
    return Array.isArray(st) ? st[this.which - 1] : st;
  }
}

function fixedModel(kind: 'GRU' | 'LSTM', opts: Opts, which: 0 | 1 | 2): Front {
  manualSeed(4);
  const m = new Front(kind, opts, which);
  linger.traceLayers(m, m, randn([2, 4, 7]));
  linger.init(m);
  const o = new optim.SGD(m.parameters(), { lr: 0.02 });
  for (let i = 0; i < 30; i++) {
    const x = randn([3, 4, 7]).mul(2);
    o.step(() => F.mseLoss(m(x), tensor(new Float32Array(m(x).size).fill(0.25), m(x).shape)));
  }
  m.eval();
  return m;
}

const LEVELS: (OptLevel | undefined)[] = [undefined, 'disabled', 'basic', 'extended', 'all'];

describe('GRUInt / LSTMInt: qdq export equals the engine bit for bit in onnxruntime', () => {
  for (const kind of ['GRU', 'LSTM'] as const) {
    for (const opts of [{}, { bidirectional: true, batchFirst: true }, { numLayers: 2 }] as Opts[]) {
      test(`${kind}Int ${JSON.stringify(opts)}: output, h_n${kind === 'LSTM' ? ', c_n' : ''}`, async () => {
        for (const which of (kind === 'LSTM' ? [0, 1, 2] : [0, 1]) as (0 | 1 | 2)[]) {
          const m = fixedModel(kind, opts, which);
          const file = path.join(dir, `${kind}-${JSON.stringify(opts).replace(/\W/g, '')}-${which}.onnx`);
          await exportOnnx(m, randn([2, 4, 7]), file);
          const x = randn([2, 4, 7]).mul(1.5);
          const want = m(x).dataSync();
          assert.ok(new Set(want).size > want.length / 4, 'the compared values are not trivial (zero, saturated or constant)');
          for (const level of LEVELS) {
            const got = await runSession(await session(file, level), x);
            const d = diff(got, want);
            assert.equal(
              d.equalFraction,
              1,
              `${kind} ${JSON.stringify(opts)} result ${which} at ${level ?? 'default'}: ${(d.equalFraction * d.n).toFixed(0)}/${d.n} equal, max |Δ| ${d.maxAbs}`,
            );
          }
        }
      });
    }
  }

  test('the sequence demo (DemoGRU) at the fixed stage: every logit equal, at another batch size too', async () => {
    manualSeed(0);
    const m = new DemoGRU();
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.normalizeLayers(m);
    linger.init(m);
    linger.calibrate(
      m,
      Array.from({ length: 20 }, () => rand([8, 1, 28, 28])),
    );
    m.eval();
    const file = path.join(dir, 'demo-gru.onnx');
    await exportOnnx(m, rand([1, 1, 28, 28]), file);
    const s = await session(file);
    for (const n of [1, 5]) {
      const x = rand([n, 1, 28, 28]);
      const d = diff(await runSession(s, x), m(x).dataSync());
      assert.equal(d.equalFraction, 1, `batch ${n}: ${(d.equalFraction * d.n).toFixed(0)}/${d.n} logits equal, max |Δ| ${d.maxAbs}`);
    }
  });
});
