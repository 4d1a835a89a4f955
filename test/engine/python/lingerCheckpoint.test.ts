// A `.pt` trained with the real linger, paired with its PyTorch model file (docs/python-models.md,
// "Checkpoints from real linger"; issue 22, item 3): test/fixtures/python/linger_net/*.pt were
// saved by linger 1.1.1 from test/fixtures/python/linger_net.py (scripts/golden/make_linger_pt_fixtures.py).
// The engine builds the model from the .py file in Debian's PyTorch, replays the stage's transforms,
// loads the state strict and then prints, evaluates, exports and compares it as linger would.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../../src/engine/backend/tf';
import { initBackend } from '../../../src/engine/backend/select';
import { checkpointModel } from '../../../src/engine/services/checkpointModel';
import { prepareModel } from '../../../src/engine/services/exportModel';
import { exportAndVerify } from '../../../src/engine/host/main';
import { runExport } from '../../../src/engine/cli/export';
import { readCheckpointInfo, save } from '../../../src/engine/state/checkpoint';
import { compareCheckpoints } from '../../../src/engine/state/compare';
import { Tensor } from '../../../src/engine/tensor';

const ROOT = path.join(__dirname, '..', '..', '..');
const PYTHON = process.env.LINGER_PYTHON ?? '/usr/bin/python3';
const FIX = path.join(ROOT, 'test', 'fixtures', 'python');
const NET = path.join(FIX, 'linger_net.py');
const PT = (stage: string) => path.join(FIX, 'linger_net', `${stage}.pt`);
const GOLDEN = JSON.parse(fs.readFileSync(path.join(FIX, 'linger_net.linger.json'), 'utf8')) as {
  linger: string;
  x_eval: { shape: number[]; data: number[] };
  eval: { scale: number; codes: number[] };
  traced_print: string;
  fixed_print: string;
  keys: Record<string, string[]>;
};
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const skip = hasTorch ? false : `${PYTHON} cannot import torch (apt install python3-torch): the linger .pt pairing tests skip`;
if (skip) console.log(`# skipped: ${skip}`);
const python = { python: PYTHON };
// the real linger, for the live check: $LINGER_SRC, or the reference tarball beside the repository
const LINGER = !!process.env.LINGER_SRC || fs.existsSync(path.join(ROOT, '..', 'shared', 'reference', 'linger-v1.1.1.tar.gz'));

test("the stage of each linger .pt from its keys alone, and the keys are linger's", () => {
  for (const stage of ['float', 'traced', 'fixed']) {
    const info = readCheckpointInfo(PT(stage));
    assert.equal(info.metadata.stage, stage);
    assert.deepEqual(
      info.tensors.map((t) => t.name),
      GOLDEN.keys[stage],
    );
  }
});

describe(`a .pt from linger ${GOLDEN.linger}, paired with its Python model file`, { skip }, () => {
  test('traced and fixed: the model loads strict and prints exactly what linger printed; Reveal lines point at self.<name> =', async () => {
    const traced = await checkpointModel(PT('traced'), NET, python);
    assert.equal(traced.tree.stage, 'traced');
    assert.equal(traced.tree.text, GOLDEN.traced_print);
    assert.ok(traced.graph, 'the traced graph');
    const fixed = await checkpointModel(PT('fixed'), NET, python);
    assert.equal(fixed.tree.stage, 'fixed');
    assert.equal(fixed.tree.text, GOLDEN.fixed_print);
    assert.match(fixed.notes.join('\n'), /no module tree: applying trace → init with default settings/);
    const lines = fs.readFileSync(NET, 'utf8').split('\n');
    for (const name of ['conv1', 'bn2', 'fc']) assert.match(lines[fixed.definitions[name]], new RegExp(`self\\.${name} = nn\\.`), name);
    const float = await checkpointModel(PT('float'), NET, python);
    assert.equal(float.tree.stage, 'float');
    assert.equal(float.graph, undefined);
  });

  test("fixed: the engine's eval of linger's weights gives linger's int8 output codes, bit for bit", async () => {
    await initBackend();
    const p = await prepareModel(NET, PT('fixed'), python);
    p.model.eval();
    const codes = tf.tidy(() => {
      const y = p.model.forward(new Tensor(tf.tensor(GOLDEN.x_eval.data, GOLDEN.x_eval.shape))) as Tensor;
      return Array.from(y.dataSync(), (v) => Math.round(v * GOLDEN.eval.scale));
    });
    assert.equal(codes.length, GOLDEN.eval.codes.length);
    assert.deepEqual(codes, GOLDEN.eval.codes);
  });

  test('export: the fixed .pt to qdq (checked in onnxruntime) and thinker ONNX, as the engine process and `linger export` do', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-ptexport-'));
    const qdq = await exportAndVerify({
      checkpoint: PT('fixed'),
      modelFile: NET,
      python,
      dialect: 'qdq',
      output: path.join(dir, 'fixed.onnx'),
    });
    assert.equal(qdq.stage, 'fixed');
    assert.ok(qdq.verification.ok, qdq.verification.summary);
    const out: string[] = [];
    const code = await runExport(
      [NET, '--checkpoint', PT('fixed'), '--dialect', 'thinker', '--python', PYTHON, '-o', path.join(dir, 'fixed.thinker.onnx')],
      (s) => out.push(s),
    );
    assert.equal(code, 0, out.join('\n'));
    assert.match(out.join('\n'), /exported linger_net\.py \(fixed stage, .*dialect thinker/);
    assert.ok(fs.statSync(path.join(dir, 'fixed.thinker.onnx')).size > 0);
  });

  test('the other way: the engine saves the model as .pt, and real linger loads it strict and evaluates it to the same codes', async (t) => {
    if (!LINGER) return t.skip(`no linger reference (set LINGER_SRC, or put ../shared/reference/linger-v1.1.1.tar.gz beside the repo)`);
    const p = await prepareModel(NET, PT('fixed'), python);
    const ours = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'linger-ptback-')), 'ours.pt');
    await save(p.model, ours);
    const r = spawnSync(PYTHON, [path.join(ROOT, 'scripts', 'golden', 'make_linger_pt_fixtures.py'), '--check', ours], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const back = JSON.parse(r.stdout.trim().split('\n').pop()!) as { scale: number; codes: number[] };
    assert.equal(back.scale, GOLDEN.eval.scale);
    assert.deepEqual(back.codes, GOLDEN.eval.codes);
  });

  test('compare: linger’s fixed .pt against the same state saved by the engine (safetensors) — the same keys, no value moved', async () => {
    const p = await prepareModel(NET, PT('fixed'), python);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'linger-ptcompare-')), 'fixed.safetensors');
    await save(p.model, file);
    const r = await compareCheckpoints(PT('fixed'), file);
    assert.deepEqual(r.stages, ['fixed', 'fixed']);
    assert.deepEqual([r.added, r.removed, r.reshaped, r.moved], [[], [], [], []]);
    assert.ok(
      r.changed.every((c) => c.maxAbs === 0),
      JSON.stringify(r.changed.filter((c) => c.maxAbs !== 0)),
    );
  });
});

test('linger export: --class, --input-shape and --python are refused for a model file that is not Python (exit 2)', async () => {
  const err: string[] = [];
  const code = await runExport(
    [path.join(ROOT, 'test', 'extension', 'workspace', 'models', 'modelB.ts'), '--class', 'X', '-o', '/tmp/never.onnx'],
    () => undefined,
    (s) => err.push(s),
  );
  assert.equal(code, 2);
  assert.match(err.join('\n'), /--class, --input-shape and --python are for Python model files \(\.py\)/);
});
