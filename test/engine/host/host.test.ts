// What the engine process answers the extension (src/engine/host/main.ts): checkpoint summaries,
// ONNX export verified against the engine, checkpoint comparison, model-file traces.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DemoCNN, DemoGRU, F, initBackend, linger, manualSeed, optim, rand, randn, tensor, Tensor } from '../../../src/engine/index';
import { checkpointSummary, exportAndVerify, importOnnxModel, runDemoAsJob, traceModelFile } from '../../../src/engine/host/main';
import { compareCheckpoints } from '../../../src/engine/state/compare';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-host-'));
const files: Record<string, string> = {};

before(async () => {
  await initBackend();
  manualSeed(5);
  const m = new DemoCNN();
  const opt = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
  const step = () =>
    opt.step(() =>
      F.crossEntropy(
        m(rand([16, 1, 28, 28])) as Tensor,
        tensor(
          Int32Array.from({ length: 16 }, (_, i) => i % 10),
          [16],
          'int32',
        ),
      ),
    );
  step();
  files.float = await linger.save(m, path.join(dir, 'exp', 'float.safetensors'), { metrics: { accuracy: 0.5 } });
  linger.traceLayers(m, m, randn([1, 1, 28, 28]));
  linger.normalizeLayers(m);
  files.traced = await linger.save(m, path.join(dir, 'exp', 'traced.safetensors'), { metrics: { accuracy: 0.6 }, parent: files.float });
  linger.init(m);
  linger.calibrate(m, [rand([16, 1, 28, 28])]);
  step();
  files.fixed = await linger.save(m, path.join(dir, 'exp', 'fixed.safetensors'), { metrics: { accuracy: 0.7 }, parent: files.traced });
});

describe('engine process requests', () => {
  test('checkpointSummary: stage, metrics, parent, sizes, module tree from the header', () => {
    const s = checkpointSummary(files.fixed);
    assert.equal(s.stage, 'fixed');
    assert.equal(s.linger, true);
    assert.deepEqual(s.metrics, { accuracy: 0.7 });
    assert.equal(s.parent, files.traced);
    assert.equal(s.model, 'DemoCNN');
    assert.equal(s.size, fs.statSync(files.fixed).size);
    assert.deepEqual(
      s.moduleTree!.filter((e) => e.bits).map((e) => e.path),
      ['conv1', 'conv2', 'fc1', 'fc2'],
    );
  });

  test('export + verify: float within 1e-4, qdq 100% bit-exact in onnxruntime, thinker structure; the built-in DemoCNN needs no model file', async () => {
    const f = await exportAndVerify({ checkpoint: files.float, dialect: 'qdq' });
    assert.equal(f.file, path.join(dir, 'exp', 'float.onnx'));
    assert.equal(f.verification.method, 'onnxruntime');
    assert.ok(f.verification.ok && f.verification.maxAbs! <= 1e-4, f.verification.summary);
    const q = await exportAndVerify({ checkpoint: files.fixed, dialect: 'qdq' });
    assert.equal(q.file, path.join(dir, 'exp', 'fixed.qdq.onnx'));
    assert.equal(q.verification.equalFraction, 1);
    assert.equal(q.verification.summary, 'qdq: 100% of 40 outputs bit-exact in onnxruntime');
    const t = await exportAndVerify({ checkpoint: files.fixed, dialect: 'thinker' });
    assert.equal(t.verification.method, 'structure');
    assert.ok(t.verification.ok, t.verification.summary);
    assert.match(t.verification.summary, /^thinker: structure checked \(12 nodes, 6 in linger's thinker domain/);
  });

  test('export of a checkpoint from an unknown model asks for its model file', async () => {
    class Tiny extends DemoCNN {}
    const file = await linger.save(new Tiny(), path.join(dir, 'tiny', 'float.safetensors'));
    await assert.rejects(
      exportAndVerify({ checkpoint: file, dialect: 'qdq' }),
      /float\.safetensors was saved from a Tiny: choose the model file that builds it/,
    );
  });

  test('compare float → traced: the fused pairs moved under convN.conv / convN.bn; metrics', async () => {
    const r = await compareCheckpoints(files.float, files.traced);
    assert.deepEqual(r.stages, ['float', 'traced']);
    const moved = new Map(r.moved.map((m) => [m.from, m]));
    assert.deepEqual(moved.get('conv1.weight'), { from: 'conv1.weight', to: 'conv1.conv.weight', maxAbs: 0 });
    assert.equal(moved.get('conv1.bias')!.to, 'conv1.conv.bias');
    assert.equal(moved.get('bn1.bias')!.to, 'conv1.bn.bias');
    assert.equal(moved.get('bn1.running_mean')!.to, 'conv1.bn.running_mean');
    assert.equal(r.moved.length, 14, "both convs' weight and bias, both BNs' weight, bias, running stats, num_batches_tracked");
    assert.deepEqual(r.metrics, [{ name: 'accuracy', a: 0.5, b: 0.6 }]);
    assert.ok(r.changed.find((c) => c.key === 'fc2.weight')!.maxAbs === 0, 'no training between the two saves');
    assert.match(r.text, /conv1\.weight → conv1\.conv\.weight {2}0 \(equal\)/);
    assert.match(r.text, /accuracy +0\.50000 → +0\.60000 +Δ \+0\.10000/);
    const q = await compareCheckpoints(files.traced, files.fixed);
    assert.ok(
      q.added.some((k) => k.endsWith('scale_o')),
      'the fixed stage adds quantizer state',
    );
    assert.ok(
      q.changed.some((c) => c.maxAbs > 0),
      'a training step changed weights',
    );
  });

  test('traceModelFile: before and after trees and printouts, definitions for Reveal in Editor', async () => {
    const file = path.join(dir, 'model.ts');
    fs.writeFileSync(
      file,
      [
        "import { nn, Tensor } from 'linger-studio';",
        'class Net extends nn.Module {',
        '  conv = new nn.Conv2d(1, 4, 3);',
        '  bn = new nn.BatchNorm2d(4);',
        '  relu = new nn.ReLU();',
        '  forward(x: Tensor): Tensor { return this.relu(this.bn(this.conv(x))); }',
        '}',
        'export const inputShape = [1, 1, 8, 8];',
        'export function createModel() { return new Net(); }',
      ].join('\n'),
    );
    const r = await traceModelFile(file, {});
    assert.deepEqual(
      r.before.modules.map((e) => e.type),
      ['Net', 'Conv2d', 'BatchNorm2d', 'ReLU'],
    );
    assert.deepEqual(
      r.after.modules.map((e) => `${e.path}:${e.type}${e.aheadRelu ? '*' : ''}`),
      [':Net', 'conv:NormalizeConvBN2d*', 'conv.conv:Conv2d', 'conv.bn:BatchNorm2d', 'bn:EmptyBatchNorm', 'relu:ReLU'],
    );
    assert.match(r.after.text!, /^Net\(\n {2}\(conv\): NormalizeConvBN2d\(/);
    assert.deepEqual(r.definitions, { conv: 2, bn: 3, relu: 4 });
  });
});

describe('a sequence model file (Conv1d → BN → ReLU → GRU → Linear)', () => {
  test('its model tree before and after traceLayers, a traced checkpoint, and its float ONNX export verified in onnxruntime', async () => {
    const file = path.join(dir, 'gru.ts');
    fs.writeFileSync(
      file,
      [
        "import { nn, Tensor } from 'linger-studio';",
        'class SeqNet extends nn.Module {',
        '  conv = new nn.Conv1d(28, 16, 3, { padding: 1 });',
        '  bn = new nn.BatchNorm1d(16);',
        '  relu = new nn.ReLU();',
        '  gru = new nn.GRU(16, 32, { batchFirst: true });',
        '  fc = new nn.Linear(32, 10);',
        '  forward(x: Tensor): Tensor {',
        '    const [out] = this.gru(this.relu(this.bn(this.conv(x))).transpose(1, 2));',
        '    return this.fc(out.mean(1));',
        '  }',
        '}',
        'export const inputShape = [1, 28, 28];',
        'export function createModel() { return new SeqNet(); }',
      ].join('\n'),
    );
    const r = await traceModelFile(file, {});
    assert.deepEqual(
      r.before.modules.map((e) => e.type),
      ['SeqNet', 'Conv1d', 'BatchNorm1d', 'ReLU', 'GRU', 'Linear'],
    );
    assert.deepEqual(
      r.after.modules.map((e) => `${e.path}:${e.type}${e.aheadRelu ? '*' : ''}`),
      [
        ':SeqNet',
        'conv:NormalizeConvBN1d*',
        'conv.conv:Conv1d',
        'conv.bn:BatchNorm1d',
        'bn:EmptyBatchNorm',
        'relu:ReLU',
        'gru:GRU',
        'fc:Linear',
      ],
    );
    assert.match(r.after.text!, /\(gru\): GRU\(16, 32, batch_first=True\)/);
    assert.ok(r.graph, 'a graph for the Graph view');

    // a traced + normalized checkpoint of it, exported from the model file and checked in onnxruntime
    const { loadModelFile } = await import('../../../src/engine/modelFile');
    const m = (await loadModelFile(file)).createModel();
    linger.traceLayers(m, m, randn([1, 28, 28]));
    linger.normalizeLayers(m);
    const ckpt = await linger.save(m, path.join(dir, 'gru', 'traced.safetensors'));
    const summary = checkpointSummary(ckpt);
    assert.equal(summary.stage, 'traced');
    assert.ok(summary.moduleTree?.some((e) => e.type === 'GRU' && e.path === 'gru'));
    assert.ok(summary.graph, 'the traced graph is stored');
    const e = await exportAndVerify({ checkpoint: ckpt, modelFile: file, dialect: 'qdq' });
    assert.equal(e.verification.method, 'onnxruntime');
    assert.ok(e.verification.ok && e.verification.maxAbs! <= 1e-4, e.verification.summary);

    // the fixed stage: GRUInt in the tree and the checkpoint, exported as linger's thinker GRUInt
    linger.init(m);
    linger.calibrate(
      m,
      Array.from({ length: 4 }, () => randn([4, 28, 28])),
    );
    const fixed = await linger.save(m, path.join(dir, 'gru', 'fixed.safetensors'));
    const fs2 = checkpointSummary(fixed);
    assert.equal(fs2.stage, 'fixed');
    assert.ok(fs2.moduleTree?.some((x) => x.type === 'GRUInt' && x.path === 'gru'));
    const t = await exportAndVerify({ checkpoint: fixed, modelFile: file, dialect: 'thinker' });
    assert.equal(t.verification.method, 'structure');
    assert.ok(t.verification.ok, t.verification.summary);
    const q = await exportAndVerify({ checkpoint: fixed, modelFile: file, dialect: 'qdq' });
    assert.equal(q.verification.method, 'onnxruntime');
    assert.ok(q.verification.ok && q.verification.maxAbs === 0, q.verification.summary);
  });
});

describe('examples/sequence_gru.ts: the sequence demo as a model file', () => {
  test("builds the demo's GRU model: its keys load a DemoGRU checkpoint strict, and it traces like the demo", async () => {
    const file = path.resolve('examples', 'sequence_gru.ts');
    const r = await traceModelFile(file, {});
    assert.deepEqual(
      r.after!.modules.map((e) => `${e.path}:${e.type}`),
      [
        ':SequenceGRU',
        'conv:NormalizeConvBN1d',
        'conv.conv:Conv1d',
        'conv.bn:BatchNorm1d',
        'bn:EmptyBatchNorm',
        'relu:ReLU',
        'gru:GRU',
        'fc:Linear',
      ],
    );
    const { loadModelFile } = await import('../../../src/engine/modelFile');
    const m = (await loadModelFile(file)).createModel();
    manualSeed(1);
    const demo = new DemoGRU();
    m.loadStateDict(demo.stateDict());
    const x = rand([2, 1, 28, 28]);
    assert.deepEqual(Array.from((m(x) as Tensor).dataSync()), Array.from(demo(x).dataSync()));
  });
});

describe('a model file with int32 inputs (Embedding → GRU → Linear, exampleInput())', () => {
  test('traced, exported with linger export and by the engine process, verified in onnxruntime on its example', async () => {
    const file = path.join(dir, 'kws.ts');
    fs.writeFileSync(
      file,
      [
        "import { nn, tensor, Tensor } from 'linger-studio';",
        'class Kws extends nn.Module {',
        '  embed = new nn.Embedding(20, 8, { paddingIdx: 0 });',
        '  gru = new nn.GRU(8, 12, { batchFirst: true, bidirectional: true });',
        '  fc = new nn.Linear(24, 3);',
        '  forward(ids: Tensor): Tensor {',
        '    const [out] = this.gru(this.embed(ids));',
        '    return this.fc(out.mean(1));',
        '  }',
        '}',
        "// token ids, batch first: no inputShape needed, it is this tensor's",
        "export function exampleInput() { return tensor(Int32Array.from({ length: 2 * 6 }, (_, i) => (i * 7) % 20), [2, 6], 'int32'); }",
        'export function createModel() { return new Kws(); }',
      ].join('\n'),
    );
    const r = await traceModelFile(file, {});
    assert.deepEqual(r.inputShape, [2, 6]);
    assert.deepEqual(
      r.before.modules.map((e) => e.type),
      ['Kws', 'Embedding', 'GRU', 'Linear'],
    );
    assert.match(r.before.text!, /\(embed\): Embedding\(20, 8, padding_idx=0\)/);

    const e = await exportAndVerify({ modelFile: file, dialect: 'qdq' });
    assert.equal(e.verification.method, 'onnxruntime');
    assert.ok(e.verification.ok && e.verification.maxAbs! <= 1e-4, e.verification.summary);
    const { runExport } = await import('../../../src/engine/cli/export');
    const out = path.join(dir, 'kws-cli.onnx');
    const lines: string[] = [];
    assert.equal(await runExport([file, '-o', out], (l) => lines.push(l)), 0, lines.join('\n'));
    assert.ok(fs.statSync(out).size > 0);
  });
});

describe('ONNX import', () => {
  test('a PyTorch export of the demo CNN: imported, then traced (the preserve export keeps its BNs, which fuse)', async () => {
    const file = path.join(__dirname, '..', '..', 'fixtures', 'onnx', 'demo_cnn.preserve.onnx');
    const plain = await importOnnxModel(file);
    assert.equal(plain.before.label, 'demo_cnn.preserve.onnx');
    assert.equal(plain.after, undefined);
    assert.deepEqual(plain.inputShape.slice(1), [1, 28, 28]);
    const traced = await importOnnxModel(file, true);
    const types = (t: { modules: { path: string; type: string }[] }) => t.modules.filter((e) => e.path).map((e) => `${e.path}:${e.type}`);
    assert.ok(
      types(traced.before).includes('conv1:Conv2d') && types(traced.before).includes('bn1:BatchNorm2d'),
      types(traced.before).join(', '),
    );
    assert.ok(
      types(traced.after!).includes('conv1:NormalizeConvBN2d') && types(traced.after!).includes('bn1:EmptyBatchNorm'),
      types(traced.after!).join(', '),
    );
    assert.ok(traced.graph!.nodes.length > 5);
    await assert.rejects(importOnnxModel(path.join(dir, 'exp', 'float.safetensors')), /float\.safetensors/);
  });
});

describe('jobs on a worker thread', () => {
  test('the demo runs as a job: progress while it trains, checkpoints per stage', async () => {
    const seen: string[] = [];
    const r = await runDemoAsJob(
      { checkpointDir: path.join(dir, 'jobs'), experiment: 'quick', epochs: [1, 0, 1], limit: 12 },
      {
        onProgress: (p) => {
          if (!seen.includes(p.phase)) seen.push(p.phase);
        },
        onLog: () => {},
        cancelled: new Promise(() => {}),
      },
    );
    assert.deepEqual(
      r.stages.map((s) => s.stage),
      ['float', 'traced', 'fixed'],
    );
    for (const s of r.stages) assert.ok(fs.existsSync(s.checkpoint!));
    for (const phase of ['float epoch 1/1', 'evaluating float', 'QAT epoch 1/1', 'evaluating fixed'])
      assert.ok(seen.includes(phase), `${phase} in ${seen.join(', ')}`);
    assert.ok(seen.indexOf('float epoch 1/1') < seen.indexOf('QAT epoch 1/1'));
  });

  test('cancelling stops the job at its next step with a clear error; what was saved stays', async () => {
    let cancel!: () => void;
    const cancelled = new Promise<void>((r) => {
      cancel = r;
    });
    const t0 = Date.now();
    const job = runDemoAsJob(
      { checkpointDir: path.join(dir, 'jobs'), experiment: 'cancelled', epochs: [2, 1, 1], limit: 300 },
      {
        onProgress: (p) => {
          if (p.phase === 'float epoch 1/2' && p.step === 3) cancel();
        },
        onLog: () => {},
        cancelled,
      },
    );
    await assert.rejects(job, /the demo was cancelled \(checkpoints saved before that are kept\)/);
    assert.ok(Date.now() - t0 < 60_000);
    assert.ok(!fs.existsSync(path.join(dir, 'jobs', 'cancelled', 'float.safetensors')), 'stopped before the first save');
  });
});
