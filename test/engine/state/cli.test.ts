// `linger inspect` and `linger export` (issue 5), run through their run functions; and the model
// rebuilt from a model file + checkpoint, at every stage, computing exactly what was saved.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DemoCNN, F, initBackend, linger, manualSeed, nn, optim, rand, randn, Stage, Tensor, tensor } from '../../../src/engine/index';
import { runInspect } from '../../../src/engine/cli/inspect';
import { InspectResult } from '../../../src/engine/services/inspect';
import { runExport } from '../../../src/engine/cli/export';
import { prepareModel } from '../../../src/engine/services/exportModel';
import { ROOT, STATE_FIXTURES, trainedDemo } from './stateFixtures';
import { onnx } from '../../../src/engine/onnx/proto';

before(async () => {
  await initBackend();
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-cli-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

async function run(fn: (a: string[], o: (s: string) => void, e: (s: string) => void) => Promise<number>, args: string[]) {
  const out: string[] = [],
    err: string[] = [];
  const code = await fn(
    args,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const MODEL_FILE = path.join(dir, 'democnn.ts');
fs.writeFileSync(
  MODEL_FILE,
  `import { DemoCNN } from 'linger-studio';
export const inputShape = [1, 1, 28, 28];
export function createModel() { return new DemoCNN(); }
`,
);

/** A DemoCNN at a stage, trained a little (fixed: calibrated), optionally with non-default settings. */
function demoAt(stage: Stage, seed: number, custom = false): DemoCNN {
  const m = trainedDemo(seed);
  if (stage === 'float') return m;
  linger.traceLayers(m, m, randn([1, 1, 28, 28]), custom ? { aheadLinearRelu: true } : {});
  if (custom) linger.disableNormalize(m.fc2);
  linger.normalizeLayers(m, custom ? { normalizeWeightValue: 0.5, normalizeBiasValue: 0.25, normalizeOutputValue: 4 } : {});
  if (stage === 'fixed') {
    if (custom) {
      linger.quantModule(m.fc1, { dataBits: 6, parameterBits: 7, outBits: 8 });
      linger.disableQuant(m.fc2);
    }
    linger.init(m);
    manualSeed(seed);
    linger.calibrate(
      m,
      Array.from({ length: 4 }, () => rand([8, 1, 28, 28])),
    );
  }
  return m;
}

function evalOut(m: nn.Module): Float32Array {
  manualSeed(77);
  const x = rand([4, 1, 28, 28]);
  m.eval();
  return (m(x) as Tensor).dataSync() as Float32Array;
}

describe('linger inspect', () => {
  test('metadata and a tensor table (name, dtype, shape, min, max, mean)', async () => {
    const m = demoAt('fixed', 1);
    const file = await linger.save(m, path.join(dir, 'fixed.safetensors'), { metrics: { accuracy: 0.9 }, parent: 'float.safetensors' });
    const r = await run(runInspect, [file]);
    assert.equal(r.code, 0, r.err);
    for (const line of [
      /^\s+format\s+linger-studio\/1$/m,
      /^\s+stage\s+fixed$/m,
      /^\s+model\s+DemoCNN$/m,
      /^\s+metrics\s+accuracy=0\.9$/m,
      /^\s+parent\s+float\.safetensors$/m,
      /^\s+input shape\s+\[1, 1, 28, 28\]$/m,
      /^\s+transforms\s+trace → normalize → init$/m,
      /^\s+graph\s+12 nodes \(traced\)$/m,
      /^\s+conv1\s+Conv2dInt \(ahead ReLU\)\s+160\s+1, 16, kernel_size=\(3, 3\)/m,
      /^\s+name\s+dtype\s+shape\s+min\s+max\s+mean$/m,
      /^\s+conv1\.scale_o\s+F32\s+\[1\]\s+(\d+)\s+\1\s+\1$/m,
    ]) {
      assert.match(r.out, line);
    }
    const w = Array.from(m.stateDict()['fc1.weight'].dataSync());
    const min = w.reduce((a, b) => Math.min(a, b)),
      max = w.reduce((a, b) => Math.max(a, b));
    const row = r.out.split('\n').find((l) => /^\s+fc1\.weight\s/.test(l))!;
    const [, , shape, lo, hi] = row.trim().split(/\s{2,}/);
    assert.equal(shape, '[128, 1568]');
    assert.ok(Math.abs(Number(lo) - min) < 1e-4 && Math.abs(Number(hi) - max) < 1e-4, row);
  });

  test('--json: the same report as data, with the optimizer when saved', async () => {
    const m = trainedDemo(2);
    const opt = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.5 });
    opt.step(() => F.crossEntropy(m(rand([4, 1, 28, 28])) as Tensor, tensor([0, 1, 2, 3], [4], 'int32')));
    const file = await linger.save(m, path.join(dir, 'float-opt.safetensors'), { optimizer: opt, inputShape: [1, 1, 28, 28] });
    const r = await run(runInspect, [file, '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as InspectResult;
    assert.equal(j.metadata.stage, 'float');
    assert.equal(j.tensors.length, Object.keys(m.stateDict()).length);
    const bias = j.tensors.find((t) => t.name === 'fc2.bias')!;
    const b = Array.from(m.stateDict()['fc2.bias'].dataSync());
    assert.deepEqual([bias.dtype, bias.shape, bias.min, bias.max, bias.nonFinite], ['F32', [10], Math.min(...b), Math.max(...b), 0]);
    assert.ok(Math.abs(bias.mean! - b.reduce((p, q) => p + q, 0) / b.length) < 1e-6, 'the mean');
    assert.equal(j.tensors.find((t) => t.name === 'bn1.num_batches_tracked')!.dtype, 'I32');
    assert.equal(j.optimizer!.type, 'SGD');
    assert.equal(j.optimizer!.tensors.length, m.parameters().length);
    assert.equal(j.values, 206922 + 4 * 16 + 4 * 32 + 2, 'parameters, BN statistics and counters');
  });

  test('a plain safetensors file from PyTorch: stage inferred, int64 shown as I64', async () => {
    const r = await run(runInspect, [path.join(STATE_FIXTURES, 'torch_democnn.safetensors')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^\s+format\s+\(plain safetensors: no linger metadata\)$/m);
    assert.match(r.out, /^\s+stage\s+float \(inferred from the tensor names\)$/m);
    assert.match(r.out, /^\s+format\s+pt$/m, 'other metadata is shown too');
    assert.match(r.out, /^\s+bn1\.num_batches_tracked\s+I64\s+\[\]\s+3\s+3\s+3$/m);
  });

  test('a bad file exits 1 naming it; usage errors exit 2', async () => {
    const bad = path.join(dir, 'bad.safetensors');
    const good = fs.readFileSync(path.join(STATE_FIXTURES, 'engine_democnn_float.safetensors'));
    fs.writeFileSync(bad, good.subarray(0, good.length - 10));
    const r = await run(runInspect, [bad]);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(
        `^linger inspect: ${bad.replace(/[.]/g, '\\.')}: tensor 'fc2\\.bias': data_offsets \\[\\d+, \\d+\\] run past the \\d+ data bytes \\(truncated file\\?\\)$`,
      ),
    );
    assert.equal(r.out, '');
    const none = await run(runInspect, []);
    assert.equal(none.code, 2);
    assert.match(none.err, /expected one checkpoint file, got 0/);
    assert.match(none.err, /usage: linger inspect <checkpoint\.safetensors> \[--json\]/);
    assert.equal((await run(runInspect, ['a', 'b'])).code, 2);
    const opt = await run(runInspect, [bad, '--frobnicate']);
    assert.equal(opt.code, 2);
    assert.match(opt.err, /Unknown option '--frobnicate'/);
    assert.equal((await run(runInspect, [path.join(dir, 'absent.safetensors')])).code, 1);
  });
});

describe('a model file + a checkpoint: the stage decides the transforms, then the state loads strict', () => {
  for (const stage of ['float', 'traced', 'fixed'] as Stage[]) {
    for (const custom of [false, true]) {
      if (stage === 'float' && custom) continue;
      test(`${stage}${custom ? ' with non-default settings (no ahead-ReLU on fc1, clamps, excluded and per-layer-bits layers)' : ''}: computes exactly what was saved`, async () => {
        const src = demoAt(stage, 10, custom);
        const file = await linger.save(src, path.join(dir, `${stage}${custom ? '-custom' : ''}.safetensors`));
        const p = await prepareModel(MODEL_FILE, file);
        assert.equal(p.model.stage(), stage);
        assert.equal(p.model.toString(), src.toString(), 'the same layers and settings');
        assert.deepEqual(p.notes, []);
        assert.deepEqual(evalOut(p.model), evalOut(src));
      });
    }
  }

  test('without recorded transforms (an older checkpoint), the stage and the module tree decide', async () => {
    const src = demoAt('fixed', 12);
    const file = await linger.save(src, path.join(dir, 'old.safetensors'));
    // drop linger.transforms, as written before it existed
    const buf = fs.readFileSync(file);
    const hlen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + hlen).toString()) as { __metadata__: Record<string, string> };
    delete header.__metadata__['linger.transforms'];
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeFileSync(file, Buffer.concat([len, json, buf.subarray(8 + hlen)]));
    const p = await prepareModel(MODEL_FILE, file);
    assert.deepEqual(p.notes, [`${file} does not record its transforms; from its stage: trace → normalize → init`]);
    assert.deepEqual(evalOut(p.model), evalOut(src));
  });
});

describe('linger export', () => {
  test('usage errors exit 2 with the usage', async () => {
    const cases: [string[], RegExp][] = [
      [[MODEL_FILE], /the output file is missing \(-o out\.onnx\)/],
      [['-o', 'x.onnx'], /expected one model file \(or none with a --checkpoint of a built-in model\), got 0/],
      [[MODEL_FILE, '-o', 'x.onnx', '--batch', '0'], /--batch expects a positive integer, got '0'/],
      [[MODEL_FILE, '-o', 'x.onnx', '--dialect', 'tflite'], /--dialect must be qdq or thinker, got 'tflite'/],
      [[MODEL_FILE, '-o', 'x.onnx', '--opset', '9'], /Unknown option '--opset'/],
    ];
    for (const [args, msg] of cases) {
      const r = await run(runExport, args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, msg);
      assert.match(r.err, /usage: linger export \[<model file>\]/);
    }
  });

  test('an unusable model file or checkpoint exits 1 with the reason, before any export', async () => {
    const out = path.join(dir, 'never.onnx');
    const missing = await run(runExport, [path.join(dir, 'nope.ts'), '-o', out]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^linger export: .*nope\.ts: no such file$/);
    // a fixed checkpoint saved right after init: no quantizer statistics to export with
    const raw = trainedDemo(3);
    linger.traceLayers(raw, raw, randn([1, 1, 28, 28]));
    linger.init(raw);
    const empty = await linger.save(raw, path.join(dir, 'uncalibrated.safetensors'));
    const r = await run(runExport, [MODEL_FILE, '--checkpoint', empty, '-o', out]);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /uncalibrated\.safetensors: the quantizer statistics are empty \(running_o = 0\) in conv1, conv2, fc1, fc2; train in the fixed stage or run linger\.calibrate\(model, batches\) before saving, then export$/,
    );
    // a checkpoint of another model
    const other = await linger.save(new nn.Sequential(new nn.Linear(3, 3)), path.join(dir, 'other.safetensors'));
    const mismatch = await run(runExport, [MODEL_FILE, '-c', other, '-o', out]);
    assert.equal(mismatch.code, 1);
    assert.match(
      mismatch.err,
      /the model of .*democnn\.ts \(after no transforms\) does not match .*other\.safetensors: error loading state dict into DemoCNN \(nothing was changed\):\n\s+missing keys: conv1\.weight/,
    );
    // a corrupt checkpoint
    const bad = path.join(dir, 'corrupt.safetensors');
    fs.writeFileSync(bad, 'not a checkpoint at all');
    const corrupt = await run(runExport, [MODEL_FILE, '-c', bad, '-o', out]);
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.err, /corrupt\.safetensors: header length \d+ exceeds the 104857600-byte limit/);
    assert.ok(!fs.existsSync(out));
  });

  const exporterPresent = fs.existsSync(path.join(ROOT, 'src', 'engine', 'onnx', 'export', 'index.ts'));
  for (const [stage, dialect] of [
    ['float', 'qdq'],
    ['traced', 'qdq'],
    ['fixed', 'qdq'],
    ['fixed', 'thinker'],
  ] as [Stage, string][]) {
    test(`exports a ${stage} checkpoint (${dialect})`, async (t) => {
      if (!exporterPresent) {
        t.skip('src/engine/onnx/export.ts does not exist yet: ONNX export is built separately');
        return;
      }
      const ck = await linger.save(demoAt(stage, 20), path.join(dir, `${stage}-x.safetensors`));
      const out = path.join(dir, `${stage}-${dialect}.onnx`);
      const r = await run(runExport, [MODEL_FILE, '--checkpoint', ck, '--dialect', dialect, '-o', out]);
      assert.equal(r.code, 0, r.err);
      assert.match(
        r.out,
        new RegExp(`^exported democnn\\.ts \\(${stage} stage, .*, dialect ${dialect}, batch 1\\) to ${out.replace(/[.]/g, '\\.')}$`),
      );
      assert.ok(fs.statSync(out).size > 1000);
    });
  }
  test('a checkpoint of a built-in model needs no model file; --batch sets the static batch of a thinker export', async () => {
    const ck = await linger.save(demoAt('fixed', 20), path.join(dir, 'builtin-fixed.safetensors'));
    const out = path.join(dir, 'builtin-thinker.onnx');
    const r = await run(runExport, ['--checkpoint', ck, '--dialect', 'thinker', '--batch', '3', '-o', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^exported DemoCNN \(fixed stage, .*, dialect thinker, batch 3\) to /);
    const g = onnx.ModelProto.decode(fs.readFileSync(out)).graph!;
    assert.deepEqual(
      g.input![0].type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue)),
      [3, 1, 28, 28],
      'static: tpacker packs no symbolic batch',
    );
    const other = await linger.save(new nn.Sequential(new nn.Linear(3, 3)), path.join(dir, 'other-builtin.safetensors'));
    const e = await run(runExport, ['--checkpoint', other, '-o', out]);
    assert.equal(e.code, 1);
    assert.match(
      e.err,
      /other-builtin\.safetensors was saved from a Sequential: choose the model file that builds it \(built-in models need none: DemoCNN, DemoGRU\)/,
    );
  });
  test('exports the float model of a model file without a checkpoint', async (t) => {
    if (!exporterPresent) {
      t.skip('src/engine/onnx/export.ts does not exist yet');
      return;
    }
    const out = path.join(dir, 'plain.onnx');
    const r = await run(runExport, [MODEL_FILE, '-o', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\(float stage, dialect qdq, batch 1\)/);
    assert.ok(fs.existsSync(out));
  });
});
