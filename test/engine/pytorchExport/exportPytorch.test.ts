// `linger export-pytorch` (issue 24): DemoCNN and DemoGRU checkpoints become a PyTorch project whose
// model.py loads the weights strictly and reproduces the engine's float outputs within 1e-5, whose
// train.py trains on 2 processes (gloo, torchrun's environment variables, started through
// torch.multiprocessing.spawn: Debian's torchrun 1.13 fails at start here) and writes checkpoints
// that load back strictly into the engine; with real linger 1.1.1 (when extracted) the traced and
// fixed stages run and linger's eval is compared with the engine's integer eval on the same weights.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../../src/engine/backend/select';
import { manualSeed } from '../../../src/engine/random';
import { randn, tensor, Tensor } from '../../../src/engine/tensor';
import { Module } from '../../../src/engine/nn/module';
import { Linear } from '../../../src/engine/nn/linear';
import { maxPool2d } from '../../../src/engine/nn/functional';
import { save, loadCheckpoint, moduleTree, readCheckpointInfo } from '../../../src/engine/state/checkpoint';
import { normalizeLayers, traceLayers } from '../../../src/engine/linger/transforms';
import { prepareModel } from '../../../src/engine/services/exportModel';
import { DemoCNN } from '../../../src/engine/train/demoCnn';
import { DemoGRU } from '../../../src/engine/train/demoGru';
import { fashionMnist } from '../../../src/engine/train/data';
import { loadModelFile } from '../../../src/engine/modelFile';
import { runExportPytorch } from '../../../src/engine/cli/exportPytorch';
import { runExperiment } from '../../../src/engine/cli/experiment';
import { modelPy, PytorchExportError } from '../../../src/engine/export/pytorch/modelPy';

const PYTHON = process.env.LINGER_PYTHON ?? '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
const noTorch = hasTorch ? false : `${PYTHON} cannot import torch and numpy (apt install python3-torch): the PyTorch project tests skip`;
if (noTorch) console.log(`# skipped: ${noTorch}`);
const REFERENCE = path.join(__dirname, '..', '..', '..', '..', 'shared', 'reference');
const COMPAT = path.join(REFERENCE, 'linger');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-pytorch-export-'));
/** $LINGER_SRC, the extracted tree of the reference README, or the reference tarball extracted here. */
function lingerSrc(): string {
  if (process.env.LINGER_SRC) return process.env.LINGER_SRC;
  if (fs.existsSync('/tmp/ref/linger-v1.1.1/linger')) return '/tmp/ref/linger-v1.1.1';
  const tarball = path.join(REFERENCE, 'linger-v1.1.1.tar.gz');
  if (hasTorch && fs.existsSync(tarball)) spawnSync('tar', ['-xzf', tarball, '-C', tmp], { stdio: 'ignore' });
  return path.join(tmp, 'linger-v1.1.1');
}
const LINGER_SRC = lingerSrc();
const hasLinger =
  hasTorch && fs.existsSync(path.join(LINGER_SRC, 'linger', '__init__.py')) && fs.existsSync(path.join(COMPAT, 'linger_compat.py'));
const noLinger = hasLinger
  ? false
  : `real linger 1.1.1 is not at ${LINGER_SRC} and ../shared/reference has no linger-v1.1.1.tar.gz and linger/linger_compat.py (set LINGER_SRC): the linger stage test skips`;
if (noLinger) console.log(`# skipped: ${noLinger}`);

const LIMIT = 4; // images per class in data/: 40 training, 10 test images

function python(args: string[], env: Record<string, string> = {}, cwd = tmp): string {
  const r = spawnSync(PYTHON, args, { cwd, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', ...env }, timeout: 300_000 });
  assert.equal(r.status, 0, `${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A float checkpoint of a demo model whose BN statistics are no longer the initial ones. */
async function floatCheckpoint(model: Module, name: string): Promise<string> {
  model.train();
  for (let i = 0; i < 3; i++) model(randn([8, 1, 28, 28]).mul(0.5).add(0.3)).dispose();
  model.eval();
  const file = path.join(tmp, `${name}.safetensors`);
  await save(model, file, {
    metrics: { accuracy: 0.1, loss: 2.3 },
    inputShape: [1, 1, 28, 28],
    recipe: { dataset: 'fashion-mnist', limitPerClass: LIMIT, epochs: 1, lr: 0.05, batchSize: 16, momentum: 0.9, seed: 0 },
  });
  return file;
}

async function exportTo(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runExportPytorch(
    args,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The engine's outputs on x, and PyTorch's (model.py with weights.safetensors, and with weights.pt). */
function compareFloat(dir: string, model: Module, x: Tensor): { diff: number; ptEqual: boolean } {
  const xf = path.join(dir, 'x.f32');
  const ids = x.dtype === 'int32';
  fs.writeFileSync(xf, Buffer.from((x.dataSync() as Float32Array | Int32Array).buffer));
  const want = model(x).dataSync();
  const script = `
import json, sys
import numpy as np, torch
sys.path.insert(0, ${JSON.stringify(dir)})
import train, model
m = model.create_model(); m.load_state_dict(train.read_safetensors(${JSON.stringify(path.join(dir, 'weights.safetensors'))})[0], strict=True)
m2 = model.create_model(); m2.load_state_dict(torch.load(${JSON.stringify(path.join(dir, 'pt', 'weights.pt'))}), strict=True)
m.eval(); m2.eval()
x = torch.from_numpy(np.fromfile(${JSON.stringify(xf)}, dtype="${ids ? '<i4' : '<f4'}").reshape(${JSON.stringify(x.shape)}))${ids ? '.long()' : ''}
with torch.no_grad():
    y, y2 = m(x), m2(x)
print(json.dumps({"y": y.flatten().tolist(), "pt": bool(torch.equal(y, y2))}))
`;
  const r = JSON.parse(python(['-c', script]).trim().split('\n').pop()!) as { y: number[]; pt: boolean };
  assert.equal(r.y.length, want.length);
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(r.y[i] - want[i]));
  return { diff, ptEqual: r.pt };
}

before(async () => {
  await initBackend();
  manualSeed(24);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('model.py: the module tree and the recorded forward, or an error naming what is missing', () => {
  test('DemoGRU: the reshape, the transposes and the GRU’s last hidden state are written out', () => {
    const src = modelPy(new DemoGRU(), randn([2, 1, 28, 28]));
    assert.match(src, /self\.gru = nn\.GRU\(32, 64, batch_first=True\)/);
    assert.match(src, /reshape = x\.reshape\(-1, 28, 28\)/);
    assert.match(src, /gru_out, gru_h = self\.gru\(/);
    assert.match(src, /\.transpose\(1, 2\)/);
    assert.match(src, /gru_h\.reshape\(-1, 64\)/);
  });

  test('a layer with parameters and no PyTorch counterpart, and an op without one, are errors naming them', () => {
    class Odd extends Linear {}
    class Custom extends Module {
      inner = new Odd(4, 2);
      forward(x: Tensor): Tensor {
        return this.inner(x);
      }
    }
    assert.throws(
      () => modelPy(new Custom(), randn([1, 4])),
      (e: Error) => e instanceof PytorchExportError && /the layer 'inner' \(Odd\) has no PyTorch counterpart/.test(e.message),
    );
    class Pooled extends Module {
      fc = new Linear(16, 2);
      forward(x: Tensor): Tensor {
        return this.fc(maxPool2d(x, 2).flatten(1));
      }
    }
    assert.throws(
      () => modelPy(new Pooled(), randn([1, 1, 8, 8])),
      (e: Error) => e instanceof PytorchExportError && /the op 'max_pool2d' in forward has no PyTorch form/.test(e.message),
    );
  });
});

describe('linger export-pytorch of DemoCNN and DemoGRU checkpoints, run by Debian’s PyTorch', { skip: noTorch }, () => {
  for (const [name, make] of [
    ['DemoCNN', () => new DemoCNN()],
    ['DemoGRU', () => new DemoGRU()],
  ] as const) {
    test(`${name}: strict load both ways, float outputs within 1e-5, train.py on 2 gloo processes, the result back in the engine`, async () => {
      const model = make();
      const ck = await floatCheckpoint(model, name);
      const dir = path.join(tmp, `${name}-project`);
      const r = await exportTo([ck, '-o', dir, '--limit', String(LIMIT)]);
      assert.equal(r.code, 0, r.err);
      for (const f of ['model.py', 'train.py', 'recipe.json', 'README.md', 'weights.safetensors', 'pt/weights.pt', 'data/train_x.npy'])
        assert.ok(fs.existsSync(path.join(dir, f)), f);
      const recipe = JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8'));
      assert.equal(recipe.model, name);
      assert.equal(recipe.stage, 'float');
      assert.equal(recipe.stages.float.batchSize, 16, 'the recorded batch, not the default');
      assert.equal(recipe.stages.traced.lr, 0.01, "the demo's float-stage lr (lr / 5) where nothing was recorded");
      assert.equal(
        readCheckpointInfo(path.join(dir, 'weights.safetensors')).metadata.parent,
        ck,
        'the chain goes on from the studio checkpoint',
      );

      const x = randn([4, 1, 28, 28]);
      const { diff, ptEqual } = compareFloat(dir, model, x);
      console.log(`# ${name}: max |PyTorch − engine| on a float batch: ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `max difference ${diff}`);
      assert.ok(ptEqual, 'weights.pt gives the same outputs as weights.safetensors');

      // an existing project is not overwritten without --force
      assert.equal((await exportTo([ck, '-o', dir])).code, 1);

      const port = String(20000 + Math.floor(Math.random() * 20000));
      const log = python([
        path.join(dir, 'train.py'),
        '--spawn',
        '2',
        '--port',
        port,
        '--stages',
        'float',
        '--steps',
        '2',
        '--threads',
        '1',
        '--batch',
        '16',
      ]);
      assert.match(log, /float: 2 steps on 2 process\(es\)/);
      const back = path.join(dir, 'float.safetensors');
      const ckBack = await loadCheckpoint(back);
      assert.equal(ckBack.metadata.stage, 'float');
      assert.equal(ckBack.metadata.model, name);
      assert.equal(ckBack.metadata.parent, 'weights.safetensors');
      assert.equal(ckBack.metadata.recipe?.worldSize, 2);
      assert.equal(ckBack.metadata.recipe?.dataset, 'fashion-mnist', 'the data/ the export wrote');
      assert.equal(ckBack.metadata.recipe?.trainImages, 10 * LIMIT);
      const p = await prepareModel(undefined, back); // the built-in model, loaded strict
      assert.equal(p.model.stage(), 'float');
      const moved = Object.entries(ckBack.stateDict).some(([k, t]) => {
        const a = t.dataSync();
        const b = model.stateDict()[k].dataSync();
        return a.some((v, i) => v !== b[i]);
      });
      assert.ok(moved, 'two steps changed the weights');
      // the project folder in the experiment view: one chain, the exported weights → PyTorch's float stage
      const seen: string[] = [];
      assert.equal(await runExperiment([dir], (s) => seen.push(s)), 0);
      assert.match(seen.join('\n'), /2 checkpoint\(s\), 1 run\(s\)/);
    });
  }

  test('a model file: nested containers (Sequential, ModuleList, a block of its own), a residual add, a bidirectional LSTM, narrow and cat', async () => {
    const file = path.join(tmp, 'net.ts');
    fs.writeFileSync(
      file,
      `import { nn, F, Tensor } from 'linger-studio';
class Block extends nn.Module {
  conv = new nn.Conv2d(4, 4, 3, { padding: 1, bias: false });
  bn = new nn.BatchNorm2d(4);
  forward(x: Tensor): Tensor {
    return F.relu(this.bn(this.conv(x)).add(x));
  }
}
class Net extends nn.Module {
  stem = new nn.Sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }), new nn.ReLU());
  blocks = new nn.ModuleList([new Block(), new Block()]);
  pool = new nn.AdaptiveAvgPool2d(1);
  lstm = new nn.LSTM(4, 8, { batchFirst: true, bidirectional: true });
  head = new nn.Linear(16 + 4, 3);
  forward(x: Tensor): Tensor {
    let y = this.stem(x);
    for (const b of this.blocks) y = b(y);
    const seq = y.mean(2).transpose(1, 2);
    const [out] = this.lstm(seq);
    const last = out.narrow(1, 7, 1).reshape([-1, 16]);
    return this.head(F.cat([last, this.pool(y).flatten(1)], 1).clamp(-4, 4));
  }
}
export const inputShape = [1, 1, 8, 8];
export function createModel(): nn.Module {
  return new Net();
}
`,
    );
    const mf = await loadModelFile(file);
    const model = mf.createModel();
    model.train();
    for (let i = 0; i < 3; i++) model(randn([4, 1, 8, 8]).add(0.5)).dispose();
    model.eval();
    const ck = path.join(tmp, 'net.safetensors');
    await save(model, ck, { inputShape: [1, 1, 8, 8] });
    const dir = path.join(tmp, 'net-project');
    const r = await exportTo([file, '--checkpoint', ck, '-o', dir]);
    assert.equal(r.code, 0, r.err);
    assert.ok(!fs.existsSync(path.join(dir, 'data')), 'no demo data for a model of its own');
    const src = fs.readFileSync(path.join(dir, 'model.py'), 'utf8');
    assert.match(src, /self\.stem\.add_module\("0", nn\.Conv2d\(1, 4/);
    assert.match(src, /self\.blocks\[1\]\.bn = nn\.BatchNorm2d\(4/);
    assert.match(src, /lstm_out, \(lstm_h, lstm_c\) = self\.lstm\(/);
    assert.match(src, /torch\.cat\(\[/);
    const { diff } = compareFloat(dir, model, randn([3, 1, 8, 8]));
    console.log(`# a model file with containers and an LSTM: max |PyTorch − engine| ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max difference ${diff}`);
  });

  test('a model file of the other layers: grouped strided conv, ConvTranspose2d, the pools, ReLU6, Sigmoid, Tanh, Identity, Dropout, LayerNorm, Linear without bias, Softmax', async () => {
    const file = path.join(tmp, 'net2.ts');
    fs.writeFileSync(
      file,
      `import { nn, F, Tensor } from 'linger-studio';
class Net2 extends nn.Module {
  c1 = new nn.Conv2d(2, 6, 3, { stride: 2, padding: 1, groups: 2, dilation: 1 });
  up = new nn.ConvTranspose2d(6, 4, 2, { stride: 2 });
  ap = new nn.AvgPool2d(2);
  mp = new nn.MaxPool2d(3, { stride: 2, padding: 1 });
  r6 = new nn.ReLU6();
  sg = new nn.Sigmoid();
  th = new nn.Tanh();
  id = new nn.Identity();
  dr = new nn.Dropout(0.3);
  ln = new nn.LayerNorm([16]);
  fc = new nn.Linear(16, 5, { bias: false });
  sm = new nn.Softmax(1);
  forward(x: Tensor): Tensor {
    let y = this.r6(this.c1(x));
    y = this.up(y);
    y = this.mp(this.ap(y));
    y = this.sg(y).mul(this.th(y)).sub(0.25);
    y = this.dr(this.id(y)).flatten(1);
    return this.sm(this.fc(this.ln(y)));
  }
}
export const inputShape = [1, 2, 8, 8];
export function createModel(): nn.Module {
  return new Net2();
}
`,
    );
    const mf = await loadModelFile(file);
    const model = mf.createModel();
    model.eval();
    const ck = path.join(tmp, 'net2.safetensors');
    await save(model, ck, { inputShape: [1, 2, 8, 8] });
    const dir = path.join(tmp, 'net2-project');
    const r = await exportTo([file, '--checkpoint', ck, '-o', dir]);
    assert.equal(r.code, 0, r.err);
    const { diff } = compareFloat(dir, model, randn([3, 2, 8, 8]));
    console.log(`# a model file of the other layers: max |PyTorch − engine| ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max difference ${diff}`);
  });

  test('a model file of token ids (exampleInput int32): Embedding → bidirectional GRU → mean → Linear', async () => {
    const file = path.join(tmp, 'kws.ts');
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
        "export function exampleInput() { return tensor(Int32Array.from({ length: 2 * 6 }, (_, i) => (i * 7) % 20), [2, 6], 'int32'); }",
        'export function createModel() { return new Kws(); }',
      ].join('\n'),
    );
    const mf = await loadModelFile(file);
    const model = mf.createModel();
    model.eval();
    const ck = path.join(tmp, 'kws.safetensors');
    await save(model, ck, { inputShape: [2, 6], inputDtype: 'int32' });
    const dir = path.join(tmp, 'kws-project');
    const r = await exportTo([file, '--checkpoint', ck, '-o', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(fs.readFileSync(path.join(dir, 'model.py'), 'utf8'), /INPUT_DTYPE = torch\.long/);
    const x = tensor(
      Int32Array.from({ length: 4 * 6 }, (_, i) => (i * 5 + 3) % 20),
      [4, 6],
      'int32',
    );
    const { diff } = compareFloat(dir, model, x);
    console.log(`# a model file of token ids: max |PyTorch − engine| ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max difference ${diff}`);
  });

  test('usage errors exit 2; a checkpoint of a model the engine does not have built in exits 1 naming it', async () => {
    assert.equal((await exportTo([])).code, 2);
    assert.equal((await exportTo([path.join(tmp, 'x.safetensors')])).code, 2, 'no -o');
    assert.equal((await exportTo(['a.safetensors', '-o', tmp, '--data', '--no-data'])).code, 2);
    const lin = new Linear(4, 2);
    const f = path.join(tmp, 'lin.safetensors');
    await save(lin, f);
    const r = await exportTo([f, '-o', path.join(tmp, 'lin')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /saved from a Linear: give the model file that builds it/);
  });
});

describe('with real linger 1.1.1: the traced and fixed stages of train.py', { skip: noLinger || noTorch }, () => {
  test('DemoCNN traced (output clamp only: weight normalization needs linger’s compiled extension) → traced and fixed on 2 processes; linger’s eval equals the engine’s integer eval bit for bit', async () => {
    const model = new DemoCNN();
    model.train();
    for (let i = 0; i < 3; i++) model(randn([8, 1, 28, 28]).mul(0.5).add(0.3)).dispose();
    traceLayers(model, model, randn([1, 1, 28, 28]));
    const normalize = { normalizeWeightValue: null, normalizeBiasValue: null, normalizeOutputValue: 8 };
    normalizeLayers(model, normalize);
    const ck = path.join(tmp, 'traced.safetensors');
    await save(model, ck, {
      inputShape: [1, 1, 28, 28],
      recipe: { dataset: 'fashion-mnist', limitPerClass: LIMIT, epochs: 1, lr: 0.01, batchSize: 16, ...normalize },
    });
    const dir = path.join(tmp, 'linger-project');
    const r = await exportTo([ck, '-o', dir, '--limit', String(LIMIT)]);
    assert.equal(r.code, 0, r.err);
    const env = { PYTHONPATH: [LINGER_SRC, COMPAT].join(path.delimiter), LINGER_IMPORT: 'linger_compat' };
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const args = ['--spawn', '2', '--port', port, '--stages', 'traced,fixed', '--steps', '2', '--threads', '1', '--batch', '16'];
    const log = python([path.join(dir, 'train.py'), ...args], env);
    assert.match(log, /traced: 2 steps on 2 process\(es\)/);
    assert.match(log, /fixed: 2 steps on 2 process\(es\)/);
    const traced = await prepareModel(undefined, path.join(dir, 'traced.safetensors'));
    assert.equal(traced.model.stage(), 'traced');
    const fixed = path.join(dir, 'fixed.safetensors');
    const p = await prepareModel(undefined, fixed); // replayed trace → normalize → init, loaded strict
    assert.equal(p.model.stage(), 'fixed');
    // the checkpoint's module tree (module_tree.json, scales from linger's trained buffers): the studio replays its settings
    assert.deepEqual(p.notes, [], 'no note about default settings');
    const tree = readCheckpointInfo(fixed).metadata.moduleTree ?? [];
    const quantized = tree.filter((e) => e.bits);
    assert.ok(quantized.length >= 4, 'the Int layers are in the tree');
    const mine = new Map(moduleTree(p.model).map((e) => [e.path, e.scales]));
    for (const e of quantized) {
      assert.ok(e.scales?.o, `${e.path}: an output scale`);
      assert.equal(e.scales?.o, mine.get(e.path)?.o, `${e.path}: linger's running_o gives the engine's eval scale`);
      assert.equal(e.scales?.x, mine.get(e.path)?.x, `${e.path}: running_x`);
    }

    // the same test images through linger's eval and the engine's integer eval
    const test = fashionMnist({ limitPerClass: LIMIT }).test;
    const x = tensor(Array.from(test.x), [test.length, 1, 28, 28]);
    const xf = path.join(dir, 'test.f32');
    fs.writeFileSync(xf, Buffer.from(test.x.buffer, test.x.byteOffset, test.x.byteLength));
    const script = `
import json, sys
import numpy as np, torch
sys.path.insert(0, ${JSON.stringify(dir)})
import train, model
linger = train.import_linger()
m = train.to_stage(model.create_model(), "fixed", linger, torch.zeros(2, *model.INPUT_SHAPE))
m.load_state_dict(train.read_safetensors(${JSON.stringify(fixed)})[0], strict=True)
m.eval()
x = torch.from_numpy(np.fromfile(${JSON.stringify(xf)}, dtype="<f4").reshape(-1, *model.INPUT_SHAPE))
with torch.no_grad():
    print(json.dumps(m(x).flatten().tolist()))
`;
    const theirs = JSON.parse(python(['-c', script], env).trim().split('\n').pop()!) as number[];
    p.model.eval();
    const ours = p.model(x).dataSync();
    let diff = 0;
    let same = 0;
    for (let i = 0; i < ours.length; i++) {
      diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
      if (ours[i] === theirs[i]) same++;
    }
    console.log(
      `# fixed stage, linger 1.1.1 eval vs the engine's integer eval on ${test.length} test images: ${same}/${ours.length} outputs equal, max |difference| ${diff.toExponential(2)}`,
    );
    assert.equal(theirs.length, ours.length);
    assert.equal(same, ours.length, `linger's eval and the engine's integer eval differ by up to ${diff}`);
  });
});
