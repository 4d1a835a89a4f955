// PyTorch .pt checkpoints (docs/pt-checkpoints.md): the committed corpus (scripts/make_pt_fixtures.py,
// torch's version in test/fixtures/pt/fixtures.json) read exactly, malicious pickles refused by
// name with nothing run, and round trips both ways with Debian's PyTorch when it is installed.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, linger, stageOfDict, Tensor, tensor } from '../../../src/engine/index';
import { readCheckpointInfo } from '../../../src/engine/state/checkpoint';
import { CheckpointFormatError } from '../../../src/engine/state/safetensors';
import { PYTHON, ROOT, torchUnavailable } from './stateFixtures';

const PT = path.join(ROOT, 'test', 'fixtures', 'pt');
const record = JSON.parse(fs.readFileSync(path.join(PT, 'fixtures.json'), 'utf8')) as {
  torch: string;
  fixtures: Record<string, Record<string, { dtype: string; shape: number[]; data: number[] }>>;
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-pt-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

before(async () => {
  await initBackend();
});

async function assertFixture(name: string): Promise<Record<string, Tensor>> {
  const sd = await linger.load(path.join(PT, name));
  const want = record.fixtures[name];
  assert.deepEqual(Object.keys(sd), Object.keys(want), `${name}: the keys in torch's order`);
  for (const [k, w] of Object.entries(want)) {
    const t = sd[k];
    assert.deepEqual(t.shape, w.shape, `${name} ${k}: shape`);
    const int = !/float|bfloat/.test(w.dtype);
    assert.equal(t.dtype, int ? 'int32' : 'float32', `${name} ${k}: ${w.dtype} → ${int ? 'int32' : 'float32'}`);
    const got = Array.from(t.dataSync());
    // float64 is rounded to float32 once; the others are exact
    const expect = w.dtype === 'float64' ? Array.from(Float32Array.from(w.data)) : w.dtype === 'bool' ? w.data.map(Number) : w.data;
    assert.deepEqual(got, int ? expect : Array.from(Float32Array.from(expect)), `${name} ${k}: values`);
  }
  return sd;
}

describe('the committed corpus', () => {
  test(`made with torch ${record.torch}`, () => assert.match(record.torch, /^\d+\.\d+/));
  test('every dtype torch writes, converted to float32 or int32 (int64 within range)', async () => {
    await assertFixture('dtypes.pt');
    const info = readCheckpointInfo(path.join(PT, 'dtypes.pt'));
    assert.match(info.metadata.raw['from float64'], /1 tensor read as float32 \(f64\)/);
    assert.match(info.metadata.raw['from float16'], /f16/);
    assert.match(info.metadata.raw['from bfloat16'], /bf16/);
    assert.deepEqual(
      info.tensors.map((e) => e.dtype),
      ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F32', 'F32'],
    );
  });
  test('views of one storage (transposed, sliced with an offset, strided, expanded) are materialized row-major', async () => {
    const sd = await assertFixture('views.pt');
    assert.deepEqual(Array.from(sd.t.dataSync()).slice(0, 4), [0, 6, 12, 18]);
  });
  test('a plain state dict, the nested {state_dict, epoch, optimizer} (unwrapped, the rest reported), an empty dict', async () => {
    await assertFixture('state_dict.pt');
    await assertFixture('training.pt');
    await assertFixture('empty.pt');
    const raw = readCheckpointInfo(path.join(PT, 'training.pt')).metadata.raw;
    assert.equal(raw['state dict in'], 'state_dict');
    assert.equal(raw.epoch, 'not loaded: 3');
    assert.equal(raw.optimizer, 'not loaded: a dict of 2 (state, param_groups)');
    assert.equal(raw.note, 'not loaded: "seed 0"');
  });
  test("real linger's fixed-stage state (int64 num_batches_tracked) reads as fixed; a traced dict (EmptyBatchNorm's key) as traced", async () => {
    const fixed = await assertFixture('linger_fixed.pt');
    assert.equal(stageOfDict(fixed), 'fixed');
    assert.equal(fixed['bn.num_batches_tracked'].dtype, 'int32');
    assert.equal(
      readCheckpointInfo(path.join(PT, 'linger_fixed.pt')).tensors.find((e) => e.name === 'bn.num_batches_tracked')!.dtype,
      'I64',
    );
    const traced = await assertFixture('linger_traced.pt');
    assert.equal(stageOfDict(traced), 'traced');
    assert.equal(stageOfDict(await linger.load(path.join(PT, 'state_dict.pt'))), 'float');
  });
  test('the legacy format is named, with what to do', async () => {
    await assert.rejects(linger.load(path.join(PT, 'legacy.pt')), (e: Error) => {
      assert.ok(e instanceof CheckpointFormatError);
      assert.match(e.message, /legacy\.pt: a legacy torch\.save file \(PyTorch < 1\.6.*re-save it with torch\.save/);
      return true;
    });
  });
});

describe('malicious pickles', () => {
  const cases: [string, string][] = [
    ['evil_system', 'posix.system'],
    ['evil_eval', 'builtins.eval'],
    ['evil_getattr', 'builtins.getattr'],
  ];
  for (const [name, global] of cases) {
    for (const p of [2, 4]) {
      // protocol 2 names Python 2's module: __builtin__.eval
      const named = p === 2 ? global.replace(/^builtins\./, '__builtin__.') : global;
      test(`${name} (protocol ${p}) is refused naming '${named}', and nothing ran`, async () => {
        const pwned = path.join(PT, 'PWNED');
        fs.rmSync(pwned, { force: true });
        const file = path.join(PT, `${name}_p${p}.pt`);
        for (const read of [() => linger.load(file), async () => readCheckpointInfo(file)]) {
          await assert.rejects(read(), (e: Error) => {
            assert.ok(e instanceof CheckpointFormatError, String(e));
            assert.ok(e.message.includes(`refused global '${named}'`), e.message);
            return true;
          });
        }
        assert.equal(fs.existsSync(pwned), false, 'the payload would have created PWNED');
      });
    }
  }
});

describe('writing', () => {
  test('a .pt reads back with its values, int64 for num_batches_tracked, and linger metadata (stage) from its side entry', async () => {
    const sd = {
      'conv.weight': tensor(Float32Array.from([1.5, -2, 3.25, 0]), [2, 2]),
      'bn.num_batches_tracked': tensor(Int32Array.from([7]), [], 'int32'),
      idx: tensor(Int32Array.from([-1, 2, 3]), [3], 'int32'),
    };
    const file = await linger.save(sd, path.join(dir, 'x.pt'));
    const info = readCheckpointInfo(file);
    assert.deepEqual(
      info.tensors.map((e) => [e.name, e.dtype]),
      [
        ['conv.weight', 'F32'],
        ['bn.num_batches_tracked', 'I64'],
        ['idx', 'I32'],
      ],
    );
    assert.equal(info.metadata.format, 'linger-studio/1');
    const back = await linger.load(file);
    for (const [k, t] of Object.entries(sd)) assert.deepEqual(Array.from(back[k].dataSync()), Array.from(t.dataSync()), k);
    await assert.rejects(linger.save(sd, path.join(dir, 'y.pth'), { optimizer: {} as never }), /optimizer state is not written to a \.pt/);
  });
});

const noTorch = torchUnavailable();
describe('round trips with PyTorch', { skip: noTorch ? `skipped: ${noTorch}` : false }, () => {
  const py = (code: string, ...args: string[]) => {
    const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  test('ours → torch.load(weights_only=True): equal values and dtypes', async () => {
    const n = 1000;
    const w = new Float32Array(n).map((_, i) => Math.sin(i) * 1e3 + 1e-7 * i);
    w[0] = -0;
    w[1] = 3.4e38;
    w[2] = 1e-45;
    const sd = {
      w: tensor(w, [10, 100]),
      b: tensor(Float32Array.from([1, 2, 3]), [3]),
      s: tensor(Float32Array.from([0.5]), []),
      'bn.num_batches_tracked': tensor(Int32Array.from([123456]), [], 'int32'),
      i: tensor(Int32Array.from([-2147483648, 2147483647, 0]), [3], 'int32'),
      e: tensor(new Float32Array(0), [0, 4]),
    };
    const file = await linger.save(sd, path.join(dir, 'ours.pt'));
    const out = JSON.parse(
      py(
        `import json,sys,torch,struct
d=torch.load(sys.argv[1],weights_only=True)
print(json.dumps({k:{'dtype':str(v.dtype),'shape':list(v.shape),'hex':v.contiguous().numpy().tobytes().hex()} for k,v in d.items()}))`,
        file,
      ),
    ) as Record<string, { dtype: string; shape: number[]; hex: string }>;
    assert.deepEqual(Object.keys(out), Object.keys(sd));
    for (const [k, t] of Object.entries(sd)) {
      const want = k === 'bn.num_batches_tracked' ? 'torch.int64' : t.dtype === 'int32' ? 'torch.int32' : 'torch.float32';
      assert.equal(out[k].dtype, want, k);
      assert.deepEqual(out[k].shape, t.shape, k);
      const d = t.dataSync();
      const hex =
        k === 'bn.num_batches_tracked'
          ? Buffer.from(new BigInt64Array([BigInt(d[0])]).buffer).toString('hex')
          : Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex');
      assert.equal(out[k].hex, hex, `${k}: bit-exact`);
    }
  });
  test('torch.save → ours: equal values (bit-exact), views included', async () => {
    const file = path.join(dir, 'theirs.pt');
    const hex = JSON.parse(
      py(
        `import json,sys,torch
torch.manual_seed(1)
a=torch.randn(5,7)
d={'a':a,'at':a.t(),'sl':a[1:,2:5],'i':torch.arange(-5,5),'h':torch.randn(6).half()}
torch.save(d,sys.argv[1])
print(json.dumps({k:v.contiguous().float().numpy().tobytes().hex() if v.is_floating_point() else v.int().contiguous().numpy().tobytes().hex() for k,v in d.items()}))`,
        file,
      ),
    ) as Record<string, string>;
    const sd = await linger.load(file);
    for (const [k, h] of Object.entries(hex)) {
      const d = sd[k].dataSync();
      assert.equal(Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex'), h, k);
    }
  });
});

describe('linger inspect x.pt', () => {
  const inspect = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const { runInspect } = await import('../../../src/engine/cli/inspect');
    const code = await runInspect(
      args,
      (s) => out.push(s),
      (s) => err.push(s),
    );
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  test('prints the tensors, the stage, the unwrapped key and the other entries', async () => {
    const r = await inspect(path.join(PT, 'training.pt'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /format\s+torch\.save \(PyTorch zip checkpoint\)/);
    assert.match(r.out, /stage\s+float \(inferred from the tensor names\)/);
    assert.match(r.out, /state dict in\s+state_dict/);
    assert.match(r.out, /epoch\s+not loaded: 3/);
    assert.match(r.out, /0\.weight\s+F32\s+\[2, 1, 3, 3\]/);
    assert.match(r.out, /1\.num_batches_tracked\s+I64\s+\[\]/);
    const fixed = await inspect(path.join(PT, 'linger_fixed.pt'), '--json');
    assert.equal(fixed.code, 0, fixed.err);
    assert.equal((JSON.parse(fixed.out) as { metadata: { stage: string } }).metadata.stage, 'fixed');
  });
  test('a refused file exits 1 naming the global; a safetensors file goes on to the safetensors report', async () => {
    const r = await inspect(path.join(PT, 'evil_system_p2.pt'));
    assert.equal(r.code, 1);
    assert.match(r.err, /refused global 'posix\.system'/);
    const st = await linger.save({ w: tensor(Float32Array.from([1]), [1]) }, path.join(dir, 'w.safetensors'));
    const s = await inspect(st);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /format\s+linger-studio\/1/);
  });
});

describe('format by content, not by name', () => {
  test('a torch.save zip named .safetensors reads as one; junk named .pt is named as neither format', async () => {
    const renamed = path.join(dir, 'renamed.safetensors');
    fs.copyFileSync(path.join(PT, 'state_dict.pt'), renamed);
    assert.deepEqual(Object.keys(await linger.load(renamed)), Object.keys(record.fixtures['state_dict.pt']));
    const junk = path.join(dir, 'junk.pt');
    fs.writeFileSync(junk, Buffer.from('this is not a checkpoint at all'));
    await assert.rejects(linger.load(junk), /junk\.pt: neither a torch\.save checkpoint \(a zip archive\) nor safetensors/);
    assert.throws(() => readCheckpointInfo(junk), /neither a torch\.save checkpoint/);
  });
});

describe('linger export --checkpoint x.pt', () => {
  test('a DemoCNN saved as .pt keeps its model name in the side entry, so the export needs no model file', async () => {
    const { DemoCNN } = await import('../../../src/engine/index');
    const { runExport } = await import('../../../src/engine/cli/export');
    const file = await linger.save(new DemoCNN(), path.join(dir, 'demo.pt'));
    assert.equal(readCheckpointInfo(file).metadata.model, 'DemoCNN');
    const out: string[] = [];
    const code = await runExport(
      ['--checkpoint', file, '-o', path.join(dir, 'demo.onnx')],
      (s) => out.push(s),
      (s) => out.push(s),
    );
    assert.equal(code, 0, out.join('\n'));
    assert.ok(fs.statSync(path.join(dir, 'demo.onnx')).size > 1000);
  });
});
