// SPEC §6, the full matrix: float/traced/fixed dict × float/traced/fixed model, through checkpoint
// files. A dict loads strict into a model at its own or a later stage; a later-stage dict into an
// earlier model is refused naming both stages; a refused or failed load changes nothing.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DemoCNN,
  initBackend,
  linger,
  manualSeed,
  nn,
  rand,
  randn,
  Stage,
  stageOfDict,
  StateDict,
  Tensor,
  tensor,
} from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { trainedDemo } from './stateFixtures';

before(async () => {
  await initBackend();
});

const STAGES: Stage[] = ['float', 'traced', 'fixed'];

/** A DemoCNN brought to a stage (seeded weights): traced = trace + normalize; fixed = those + init (+ calibrate). */
function modelAt(stage: Stage, seed: number, calibrate = true): DemoCNN {
  const m = trainedDemo(seed);
  if (stage === 'float') return m;
  linger.traceLayers(m, m, randn([1, 1, 28, 28]));
  linger.normalizeLayers(m);
  if (stage === 'fixed') {
    linger.init(m);
    if (calibrate) linger.calibrate(m, [rand([16, 1, 28, 28]), rand([16, 1, 28, 28])]);
  }
  return m;
}

/** Everything observable about a model's state: values of every entry, its structure and stage. */
function snapshot(m: nn.Module): { stage: Stage; repr: string; values: Record<string, number[]> } {
  return {
    stage: m.stage(),
    repr: m.toString(),
    values: Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, Array.from(t.dataSync())])),
  };
}
function dictValues(sd: StateDict): Record<string, number[]> {
  return Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, Array.from(t.dataSync())]));
}

const x = () => {
  manualSeed(123);
  return rand([4, 1, 28, 28]);
};
function evalOut(m: nn.Module): Float32Array {
  m.eval();
  const y = (m(x()) as Tensor).dataSync() as Float32Array;
  m.train();
  return y;
}

describe('stage compatibility: every dict stage × every model stage', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-matrix-'));
  const files = new Map<Stage, string>();
  const sources = new Map<Stage, DemoCNN>();
  before(async () => {
    for (const [i, s] of STAGES.entries()) {
      const m = modelAt(s, 40 + i);
      sources.set(s, m);
      files.set(s, await linger.save(m, path.join(dir, `${s}.safetensors`)));
    }
  });

  for (const from of STAGES) {
    for (const to of STAGES) {
      const allowed = STAGES.indexOf(from) <= STAGES.indexOf(to);
      test(`${from} dict → ${to} model: ${allowed ? 'loads strict' : 'refused, naming both stages; nothing changes'}`, async () => {
        const sd = await linger.load(files.get(from)!);
        assert.equal(stageOfDict(sd), from);
        const model = modelAt(to, 60, false); // as after init: no quantizer statistics yet
        const before = snapshot(model);
        const dictBefore = dictValues(sd);
        if (!allowed) {
          assert.throws(() => model.loadStateDict(sd), {
            message: new RegExp(`cannot load a ${from}-stage state dict into a ${to}-stage model`),
          });
          assert.deepEqual(snapshot(model), before, 'the model is unchanged');
          return;
        }
        const r = model.loadStateDict(sd); // strict
        assert.deepEqual(r, { missingKeys: [], unexpectedKeys: [] });
        assert.deepEqual(dictValues(sd), dictBefore, "the caller's dict is not consumed or changed");
        assert.equal(model.stage(), to, "loading never changes the model's stage");
        const src = sources.get(from)!;
        if (from === to) {
          assert.deepEqual(snapshot(model).values, snapshot(src).values, 'same stage: every value equal');
          assert.deepEqual(evalOut(model), evalOut(src));
        } else if (to === 'traced') {
          // float → traced: keys move into the fused layers; eval folds BN: the same function
          const a = evalOut(model),
            b = evalOut(src);
          const err = Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
          assert.ok(err < 1e-4, `float vs traced eval: max |diff| ${err}`);
        } else {
          // → fixed: BN folded into the conv with the running statistics; quantizer statistics start empty
          const conv = model.stateDict()['conv1.weight'].dataSync();
          const s = src.stateDict();
          const [w, g, v] =
            from === 'float'
              ? [s['conv1.weight'], s['bn1.weight'], s['bn1.running_var']]
              : [s['conv1.conv.weight'], s['conv1.bn.weight'], s['conv1.bn.running_var']];
          const wd = w.dataSync(),
            gd = g.dataSync(),
            vd = v.dataSync();
          for (let i = 0; i < wd.length; i++) {
            const o = Math.floor(i / 9);
            const folded = Math.max(-8, Math.min(8, (wd[i] * gd[o]) / Math.sqrt(vd[o] + 1e-5)));
            assert.ok(Math.abs(conv[i] - folded) < 1e-6, `conv1.weight[${i}] folded`);
          }
          assert.equal(model.stateDict()['conv1.running_o'].item(), 0, 'an earlier-stage dict brings no quantizer statistics');
          assert.deepEqual(Array.from(model.stateDict()['fc2.weight'].dataSync()), Array.from(s['fc2.weight'].dataSync()));
        }
      });
    }
  }

  test('a dict without a stage (built by hand) is read from its keys: quantizer buffers mean fixed', async () => {
    const fixed = await linger.load(files.get('fixed')!);
    const plain: Record<string, Tensor> = { ...fixed };
    assert.equal(stageOfDict(plain), 'fixed');
    const m = modelAt('traced', 61);
    const before = snapshot(m);
    assert.throws(() => m.loadStateDict(plain), { message: /cannot load a fixed-stage state dict into a traced-stage model/ });
    assert.deepEqual(snapshot(m), before);
    // a traced dict copied by hand reads as float: its fused keys do not exist in a float model
    const traced: Record<string, Tensor> = { ...(await linger.load(files.get('traced')!)) };
    const f = modelAt('float', 62);
    const fb = snapshot(f);
    assert.throws(() => f.loadStateDict(traced), /unexpected keys: conv1\.conv\.weight/);
    assert.deepEqual(snapshot(f), fb);
  });

  test('failed loads (missing, unexpected, mis-shaped keys) report everything at once and change nothing, at every stage', async () => {
    for (const stage of STAGES) {
      const sd = await linger.load(files.get(stage)!);
      const model = modelAt(stage, 63);
      const before = snapshot(model);
      const keys = Object.keys(sd);
      const broken: Record<string, Tensor> = {};
      for (const k of keys.slice(1)) broken[k] = sd[k];
      broken['fc2.weight'] = tensor(new Float32Array(20), [2, 10]);
      broken['extra.weight'] = tensor([1]);
      Object.defineProperty(broken, 'stage', { value: stage, enumerable: false });
      const tensorsBefore = tf.memory().numTensors;
      assert.throws(
        () => model.loadStateDict(broken),
        (e: Error) => {
          assert.match(e.message, /nothing was changed/);
          assert.match(e.message, new RegExp(`missing keys: ${keys[0].replace(/\./g, '\\.')}`));
          assert.match(e.message, /unexpected keys: extra\.weight/);
          assert.match(e.message, /shape mismatches: fc2\.weight: checkpoint has \[2, 10\], model has \[10, 128\]/);
          return true;
        },
        stage,
      );
      assert.deepEqual(snapshot(model), before, `${stage}: the model is unchanged`);
      assert.ok(tf.memory().numTensors <= tensorsBefore, `${stage}: a failed load leaves no tensors behind`);
    }
  });

  test('cleanup', () => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
