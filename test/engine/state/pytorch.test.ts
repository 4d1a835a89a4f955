// State dicts both ways with PyTorch (fixtures: scripts/golden/make_state_fixtures.py).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DemoCNN, initBackend, linger, stageOfDict, Tensor } from '../../../src/engine/index';
import { assertClose } from '../golden';
import { FIXTURE_SCRIPT, fromJson, JsonTensor, PYTHON, STATE_FIXTURES, torchUnavailable, writeEngineDemo } from './stateFixtures';

before(async () => {
  await initBackend();
});

interface TorchIo {
  keys: string[];
  x: JsonTensor;
  y: JsonTensor;
}
interface CheckResult {
  keys: string[];
  y: JsonTensor;
  max_abs_diff: number;
  within_tolerance: boolean;
}

function pythonCheck(checkpoint: string, io: string): CheckResult {
  const r = spawnSync(PYTHON, [FIXTURE_SCRIPT, '--check', checkpoint, io], { encoding: 'utf8' });
  assert.ok(r.status === 0 || r.status === 1, `the fixture script failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as CheckResult;
}

describe('PyTorch → engine', () => {
  test("PyTorch's DemoCNN state dict (safetensors, int64 num_batches_tracked) loads strict and gives PyTorch's eval outputs (1e-4)", async () => {
    const io = JSON.parse(fs.readFileSync(path.join(STATE_FIXTURES, 'torch_democnn.json'), 'utf8')) as TorchIo;
    const ck = await linger.loadCheckpoint(path.join(STATE_FIXTURES, 'torch_democnn.safetensors'));
    assert.deepEqual(Object.keys(ck.stateDict), io.keys, "PyTorch's key order is kept");
    assert.equal(stageOfDict(ck.stateDict), 'float', 'a plain safetensors file reads as float from its keys');
    assert.equal(ck.metadata.format, '', 'no linger metadata');
    assert.equal(ck.metadata.raw.format, 'pt');
    const nbt = ck.stateDict['bn1.num_batches_tracked'];
    assert.equal(nbt.dtype, 'int32', 'int64 kept as int32');
    assert.equal(nbt.item(), 3);
    const m = new DemoCNN();
    m.loadStateDict(ck.stateDict); // strict
    assert.equal(m.bn2.num_batches_tracked!.item(), 3);
    m.eval();
    const y = m(fromJson(io.x)) as Tensor;
    assertClose(y.dataSync(), y.shape, io.y, "DemoCNN with PyTorch's weights");
  });
});

describe('engine → PyTorch', () => {
  test('the committed engine-written float checkpoint still loads here and gives its recorded outputs', async () => {
    const io = JSON.parse(fs.readFileSync(path.join(STATE_FIXTURES, 'engine_democnn_float.json'), 'utf8')) as {
      x: JsonTensor;
      y: JsonTensor;
    };
    const ck = await linger.loadCheckpoint(path.join(STATE_FIXTURES, 'engine_democnn_float.safetensors'));
    assert.equal(ck.metadata.format, 'linger-studio/1');
    assert.equal(ck.metadata.stage, 'float');
    const m = new DemoCNN();
    m.loadStateDict(ck.stateDict);
    m.eval();
    const y = m(fromJson(io.x)) as Tensor;
    assertClose(y.dataSync(), y.shape, io.y, 'DemoCNN from the committed checkpoint');
  });

  test("a float checkpoint the engine writes now loads strict into PyTorch's DemoCNN with the same outputs (1e-4)", async (t) => {
    const why = torchUnavailable();
    if (why) {
      t.skip(`PyTorch not available: ${why}`);
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-torch-'));
    try {
      const { checkpoint, io, y } = await writeEngineDemo(dir, 'democnn', 11);
      const r = pythonCheck(checkpoint, io);
      assert.ok(r.within_tolerance, `PyTorch differs from the engine by up to ${r.max_abs_diff}`);
      assert.ok(r.keys.includes('bn2.num_batches_tracked'));
      assertClose(y.dataSync(), y.shape, r.y, "engine vs PyTorch on the engine's checkpoint");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the committed engine checkpoint also passes the PyTorch check', (t) => {
    const why = torchUnavailable();
    if (why) {
      t.skip(`PyTorch not available: ${why}`);
      return;
    }
    const r = pythonCheck(
      path.join(STATE_FIXTURES, 'engine_democnn_float.safetensors'),
      path.join(STATE_FIXTURES, 'engine_democnn_float.json'),
    );
    assert.ok(r.within_tolerance, `max |diff| ${r.max_abs_diff}`);
  });
});
