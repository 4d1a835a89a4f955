// A PyTorch model file in the studio (services/pythonModel.ts, `linger trace`): the seed's models,
// built by Debian's PyTorch, traced by the engine, print exactly what the real linger 1.1.1's
// trace_layers prints (test/fixtures/python/seed_models.linger.json, made by
// scripts/golden/make_python_trace_fixtures.py); each failure on the Python side is named, with the
// line of the user's file and a way forward (issue 22, item 2).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PythonModelError, tracePythonModel } from '../../../src/engine/services/pythonModel';
import { runTrace } from '../../../src/engine/cli/trace';

const ROOT = path.join(__dirname, '..', '..', '..');
const PYTHON = process.env.LINGER_PYTHON ?? '/usr/bin/python3';
const SEED = path.join(ROOT, 'test', 'fixtures', 'python', 'seed_models.py');
const GOLDEN = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'python', 'seed_models.linger.json'), 'utf8')) as {
  linger: string;
  models: Record<string, { before: string; after: string }>;
};
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const skip = hasTorch ? false : `${PYTHON} cannot import torch (apt install python3-torch): the Python model tests skip`;
if (skip) console.log(`# skipped: ${skip}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-pymodel-'));
function write(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}
async function failure(p: Promise<unknown>): Promise<PythonModelError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PythonModelError, String(e));
    return e;
  }
  assert.fail('expected a PythonModelError');
}

describe("the seed's models, as real linger traces them", { skip }, () => {
  test(`Model B: before and after traceLayers equal PyTorch's and linger ${GOLDEN.linger}'s printouts; definitions point at self.<name> =`, async () => {
    const r = await tracePythonModel(SEED, { className: 'ModelB', inputShape: [1, 10, 5, 5], python: PYTHON });
    assert.equal(r.torchText, GOLDEN.models.ModelB.before);
    assert.equal(r.before.text, GOLDEN.models.ModelB.before);
    assert.equal(r.after.text, GOLDEN.models.ModelB.after);
    assert.deepEqual(r.classes, ['ModelA', 'ModelB']);
    const lines = fs.readFileSync(SEED, 'utf8').split('\n');
    for (const name of ['conv', 'bn1', 'fc']) assert.match(lines[r.definitions[name]], new RegExp(`self\\.${name} = nn\\.`), name);
    assert.deepEqual(
      r.after.modules.filter((m) => m.aheadRelu).map((m) => m.path),
      ['conv', 'conv1', 'conv2'],
      'ahead-ReLU on the three convs a ReLU follows (the seed: conv1 too, which no BN follows)',
    );
    assert.ok(r.graph, 'the traced graph, for the graph editor');
  });

  test('Model A (ConvTranspose2d, grouped Conv+BN, a 645,160-input Linear) through `linger trace`', async () => {
    const out: string[] = [];
    const code = await runTrace([SEED, '--class', 'ModelA', '--input-shape', '1,10,50,50', '--python', PYTHON], (s) => out.push(s));
    assert.equal(code, 0);
    assert.equal(
      out.join('\n'),
      `Before traceLayers:\n${GOLDEN.models.ModelA.before}\n\nAfter traceLayers:\n${GOLDEN.models.ModelA.after}`,
    );
  });
});

describe('what the Python side cannot do is named, with the line and a way forward', { skip }, () => {
  test('two classes and no create_model(): choose-class, listing them; no input shape: input-shape', async () => {
    const e = await failure(tracePythonModel(SEED, { python: PYTHON }));
    assert.equal(e.kind, 'choose-class');
    assert.deepEqual(e.classes, ['ModelA', 'ModelB']);
    assert.match(e.message, /defines 2 nn\.Module classes and no create_model\(\): ModelA, ModelB — name the class to build/);
    const e2 = await failure(tracePythonModel(SEED, { python: PYTHON, className: 'ModelB' }));
    assert.equal(e2.kind, 'input-shape');
    const e3 = await failure(tracePythonModel(SEED, { python: PYTHON, className: 'Nope', inputShape: [1, 10, 5, 5] }));
    assert.equal(e3.kind, 'choose-class');
    assert.match(e3.message, /no nn\.Module class 'Nope' in the file \(it defines ModelA, ModelB\)/);
  });

  test('create_model() and example_input() need no options; an error in the file names its line', async () => {
    const ok = write(
      'factory.py',
      'import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self, c):\n        super().__init__()\n        self.conv = nn.Conv2d(1, c, 3)\n        self.bn = nn.BatchNorm2d(c)\n    def forward(self, x):\n        return self.bn(self.conv(x))\nclass Other(nn.Module):\n    pass\ndef create_model():\n    return Net(4)\ndef example_input():\n    return torch.randn(2, 1, 8, 8)\n',
    );
    const r = await tracePythonModel(ok, { python: PYTHON });
    assert.equal(r.className, 'Net');
    assert.ok(r.exampleInput);
    assert.deepEqual(r.inputShape, [2, 1, 8, 8]);
    assert.deepEqual(
      r.after.modules.map((m) => `${m.path}:${m.type}`),
      [':Net', 'conv:NormalizeConvBN2d', 'conv.conv:Conv2d', 'conv.bn:BatchNorm2d', 'bn:EmptyBatchNorm'],
    );
    const broken = write('broken.py', 'import torch\nimport torch.nn as nn\n\nx = 1\nraise RuntimeError("no data folder here")\n');
    const e = await failure(tracePythonModel(broken, { python: PYTHON }));
    assert.equal(e.kind, 'import');
    assert.equal(e.frame?.line, 5);
    assert.match(e.message, /^broken\.py: RuntimeError: no data folder here \(at broken\.py:5 in <module>: raise RuntimeError/);
    const syntax = write('syntax.py', 'import torch\nclass Net(torch.nn.Module:\n    pass\n');
    assert.equal((await failure(tracePythonModel(syntax, { python: PYTHON }))).kind, 'import');
  });

  test('a forward that fails on the given shape: forward, at the line of the forward', async () => {
    const f = write(
      'shape.py',
      'import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(10, 2)\n    def forward(self, x):\n        return self.fc(x)\n',
    );
    const e = await failure(tracePythonModel(f, { python: PYTHON, inputShape: [1, 7] }));
    assert.equal(e.kind, 'forward');
    assert.equal(e.frame?.line, 7);
    assert.match(e.message, /forward on an input of shape \[\[1, 7\]\]/);
    assert.match(e.message, /check the input shape/);
  });

  test('no interpreter, and an interpreter without torch, are told apart', async () => {
    assert.equal((await failure(tracePythonModel(SEED, { python: path.join(tmp, 'no-such-python') }))).kind, 'no-python');
    // a torch that cannot be imported, shadowing the real one
    fs.mkdirSync(path.join(tmp, 'shadow', 'torch'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'shadow', 'torch', '__init__.py'), 'raise ImportError("no torch in this environment")\n');
    const saved = process.env.PYTHONPATH;
    process.env.PYTHONPATH = path.join(tmp, 'shadow');
    try {
      const e = await failure(tracePythonModel(SEED, { python: PYTHON, className: 'ModelB', inputShape: [1, 10, 5, 5] }));
      assert.equal(e.kind, 'no-torch');
      assert.match(e.message, /cannot import torch: no torch in this environment — install PyTorch for this interpreter/);
    } finally {
      if (saved === undefined) delete process.env.PYTHONPATH;
      else process.env.PYTHONPATH = saved;
    }
  });

  test('linger trace: usage errors exit 2 before any Python runs; a Python failure exits 1', async () => {
    const err: string[] = [];
    assert.equal(
      await runTrace(
        [SEED, '--input-shape', '1,x'],
        () => undefined,
        (s) => err.push(s),
      ),
      2,
    );
    assert.match(err.join('\n'), /--input-shape expects positive whole numbers/);
    assert.equal(
      await runTrace(
        [path.join(ROOT, 'test', 'extension', 'workspace', 'models', 'modelB.ts'), '--class', 'X'],
        () => undefined,
        (s) => err.push(s),
      ),
      2,
    );
    assert.match(err.join('\n'), /--class, --input-shape and --python are for Python model files/);
    assert.equal(
      await runTrace(
        [SEED, '--python', PYTHON],
        () => undefined,
        (s) => err.push(s),
      ),
      1,
    );
    assert.match(err.join('\n'), /linger trace: seed_models\.py: the file defines 2 nn\.Module classes/);
  });
});
