// Issue 21, the checkpoint rows: special files never block a reader, a checkpoint's metadata is
// checked against its tensors, duplicated JSON keys and non-finite metrics are refused, the stored
// module tree is validated field by field, and a parent is verified by its content hash.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../../src/engine/backend/select';
import { normalizeLayers, traceLayers } from '../../../src/engine/linger/transforms';
import { randn } from '../../../src/engine/tensor';
import { fileHash, loadCheckpoint, METADATA_KEYS, parentProblem, readCheckpointInfo, save } from '../../../src/engine/state/checkpoint';
import { CheckpointFormatError, duplicateJsonKey } from '../../../src/engine/state/safetensors';
import { checkRegularFile, NotARegularFileError, readRegularFile, regularFileProblem } from '../../../src/engine/state/files';
import { importOnnx } from '../../../src/engine/onnx/import';
import { loadModelFile } from '../../../src/engine/modelFile';
import { formatInspect, inspectCheckpoint } from '../../../src/engine/services/inspect';
import { TINY_INPUT, TinyNet } from './stateFixtures';

before(async () => {
  await initBackend();
});

const tmpdir = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `linger-${tag}-`));

function craft(header: unknown, body: Uint8Array = new Uint8Array(0)): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, body]);
}
const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

/** Rejects within `ms` (a blocked open would hang the test: it is run in a child with a timeout instead where that matters). */
function rejectsQuickly(fn: () => unknown, re: RegExp): void {
  const t0 = performance.now();
  assert.throws(fn, (e: unknown) => {
    assert.match((e as Error).message, re);
    return true;
  });
  assert.ok(performance.now() - t0 < 2000);
}

describe('special files: lstat first, a message of their own, nothing blocks', () => {
  test('a FIFO, a socket, a device, a directory and a symlink loop named *.safetensors', async () => {
    const dir = tmpdir('special');
    const server = net.createServer();
    try {
      const fifo = path.join(dir, 'x.safetensors');
      execFileSync('mkfifo', [fifo]);
      const sock = path.join(dir, 's.safetensors');
      await new Promise<void>((r) => server.listen(sock, r));
      const loop = path.join(dir, 'loop.safetensors');
      fs.symlinkSync(path.join(dir, 'loop2.safetensors'), loop);
      fs.symlinkSync(loop, path.join(dir, 'loop2.safetensors'));
      const folder = path.join(dir, 'd.safetensors');
      fs.mkdirSync(folder);
      const cases: [string, RegExp][] = [
        [fifo, /x\.safetensors: is a FIFO \(named pipe\), not a safetensors file$/],
        [sock, /s\.safetensors: is a socket, not a safetensors file$/],
        ['/dev/null', /\/dev\/null: is a character device, not a safetensors file$/],
        [folder, /d\.safetensors: is a directory, not a safetensors file$/],
        [loop, /loop\.safetensors: a symbolic link loop/],
      ];
      for (const [file, re] of cases) {
        rejectsQuickly(() => readCheckpointInfo(file), re);
        await assert.rejects(loadCheckpoint(file), (e: unknown) => e instanceof CheckpointFormatError && re.test(e.message));
      }
      // the shared check, as every reader uses it
      assert.equal(regularFileProblem(fifo, 'notebook'), 'is a FIFO (named pipe), not a notebook file');
      assert.throws(() => checkRegularFile(loop), NotARegularFileError);
      assert.throws(() => readRegularFile(fifo), /is a FIFO/);
      // the ONNX importer reads through the same check
      fs.renameSync(fifo, path.join(dir, 'x.onnx'));
      await assert.rejects(
        importOnnx(path.join(dir, 'x.onnx')),
        /x\.onnx: cannot read the file \(is a FIFO \(named pipe\), not a model file\)$/,
      );
      await assert.rejects(importOnnx(loop), /loop\.safetensors: cannot read the file \(a symbolic link loop/);
      // and the model-file loader
      fs.renameSync(path.join(dir, 'x.onnx'), path.join(dir, 'x.ts'));
      await assert.rejects(loadModelFile(path.join(dir, 'x.ts')), /x\.ts: is a FIFO \(named pipe\), not a model file/);
      // a link to a regular file is read through
      const real = path.join(dir, 'real.txt');
      fs.writeFileSync(real, 'hello');
      fs.symlinkSync(real, path.join(dir, 'link.txt'));
      assert.equal(readRegularFile(path.join(dir, 'link.txt')).toString(), 'hello');
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the metadata is checked against the tensors', () => {
  const fixedTensors = {
    'fc.weight': { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
    'fc.running_x': { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
  };
  const floatTensors = { 'fc.weight': { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: [string, Buffer, RegExp][] = [
    [
      'a fixed dict whose metadata says float',
      craft({ __metadata__: { 'linger.stage': 'float' }, ...fixedTensors }, f32(1, 2)),
      /the metadata contradicts the tensors: linger\.stage is float, but 'fc\.running_x' is a fixed-point quantizer buffer/,
    ],
    [
      'a float dict whose metadata says fixed',
      craft({ __metadata__: { 'linger.stage': 'fixed' }, ...floatTensors }, f32(1, 2)),
      /linger\.stage is fixed, but no tensor is a quantizer buffer/,
    ],
    [
      'transforms without init on a fixed dict',
      craft({ __metadata__: { 'linger.stage': 'fixed', 'linger.transforms': '["trace"]' }, ...fixedTensors }, f32(1, 2)),
      /linger\.transforms lacks init, but linger\.stage is fixed/,
    ],
    [
      'tree bits without quantizer buffers',
      craft(
        {
          __metadata__: {
            'linger.module_tree': '[{"path":"fc","type":"LinearInt","repr":"","parameters":2,"bits":{"data":8,"parameter":8,"out":8}}]',
          },
          ...floatTensors,
        },
        f32(1, 2),
      ),
      /module 'fc' has fixed-point bits in linger\.module_tree, but no quantizer buffers/,
    ],
    [
      'a duplicated __metadata__ key',
      craft(
        `{"__metadata__":{"linger.stage":"fixed"},"__metadata__":{"linger.stage":"float"},"fc.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
        f32(1, 2),
      ),
      /the header has the key "__metadata__" twice \(a reader would silently keep the last\)/,
    ],
    [
      'a duplicated tensor entry',
      craft(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(1, 2)),
      /the header has the key "w" twice/,
    ],
    [
      'a duplicated key inside a metadata entry',
      craft({ __metadata__: { 'linger.metrics': '{"accuracy": 0.1, "accuracy": 0.9}' }, ...floatTensors }, f32(1, 2)),
      /metadata linger\.metrics has the key 'accuracy' twice/,
    ],
    [
      'an infinite metric',
      craft({ __metadata__: { 'linger.metrics': '{"loss": 1e999}' }, ...floatTensors }, f32(1, 2)),
      /metadata linger\.metrics: 'loss' is not a finite number/,
    ],
    [
      'a recipe with a nested value',
      craft({ __metadata__: { 'linger.recipe': '{"epochs": 2, "opt": {"lr": 0.1}}' }, ...floatTensors }, f32(1, 2)),
      /metadata linger\.recipe 'opt' is not a flat value \(object\)/,
    ],
    [
      'a recipe that is a list',
      craft({ __metadata__: { 'linger.recipe': '[1, 2]' }, ...floatTensors }, f32(1, 2)),
      /metadata linger\.recipe is not an object of values/,
    ],
    [
      'an unknown module-tree field',
      craft(
        {
          __metadata__: {
            'linger.module_tree': '[{"path":"fc","type":"Linear","repr":"","parameters":2,"oormalize":{"data":8,"weight":8,"bias":null}}]',
          },
          ...floatTensors,
        },
        f32(1, 2),
      ),
      /metadata linger\.module_tree\[0\] \(module 'fc'\): unknown field 'oormalize'/,
    ],
  ];
  for (const [name, bytes, re] of cases) {
    test(name, async () => {
      const dir = tmpdir('contra');
      try {
        const file = path.join(dir, 'c.safetensors');
        fs.writeFileSync(file, bytes);
        assert.throws(
          () => readCheckpointInfo(file),
          (e: unknown) => e instanceof CheckpointFormatError && re.test(e.message),
        );
        await assert.rejects(loadCheckpoint(file), re);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('one flipped bit in a saved module tree (normalize -> oormalize) is an error naming the module', async () => {
    const dir = tmpdir('flip');
    try {
      const m = new TinyNet();
      traceLayers(m, m, randn(TINY_INPUT));
      normalizeLayers(m, { normalizeWeightValue: 4, normalizeBiasValue: null, normalizeOutputValue: 6 });
      const file = await save(m, path.join(dir, 'traced.safetensors'));
      const bytes = fs.readFileSync(file);
      const at = bytes.indexOf('\\"normalize\\"');
      assert.ok(at > 0);
      bytes[at + 2] ^= 'n'.charCodeAt(0) ^ 'o'.charCodeAt(0);
      fs.writeFileSync(file, bytes);
      assert.throws(() => readCheckpointInfo(file), /linger\.module_tree\[\d+\] \(module '[^']+'\): unknown field 'oormalize'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('duplicateJsonKey: unescaped comparison, nested objects, arrays', () => {
    assert.deepEqual(duplicateJsonKey('{"a":1,"\\u0061":2}'), { key: 'a' });
    assert.deepEqual(duplicateJsonKey('{"x":{"b":[{"c":1},{"c":2}],"b":3}}'), { key: 'b', in: 'x' });
    assert.equal(duplicateJsonKey('{"a":"a","b":["a","a"],"c":{"a":1}}'), undefined);
  });

  test('a recipe is saved and read back; save refuses one it could not read back', async () => {
    const dir = tmpdir('recipe');
    try {
      const recipe = { dataset: 'fashion-mnist', epochs: 2, lr: 0.05, straight: false, normalizeBiasValue: null };
      const file = await save(new TinyNet(), path.join(dir, 'float.safetensors'), { recipe });
      assert.deepEqual(readCheckpointInfo(file).metadata.recipe, recipe);
      const pt = await save(new TinyNet(), path.join(dir, 'float.pt'), { recipe });
      assert.deepEqual(readCheckpointInfo(pt).metadata.recipe, recipe);
      assert.equal(readCheckpointInfo(await save(new TinyNet(), path.join(dir, 'bare.safetensors'))).metadata.recipe, undefined);
      await assert.rejects(
        save(new TinyNet(), path.join(dir, 'x.safetensors'), { recipe: { lr: Infinity } }),
        /recipe 'lr' is not a flat value \(Infinity\)/,
      );
      assert.ok(!fs.existsSync(path.join(dir, 'x.safetensors')));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('save refuses a non-finite metric instead of writing null', async () => {
    await assert.rejects(
      save(new TinyNet(), path.join(os.tmpdir(), 'never.safetensors'), { metrics: { loss: NaN } }),
      /linger\.save: metric 'loss' is NaN, not a finite number/,
    );
  });
});

describe("a checkpoint's parent is verified by its content hash", () => {
  test('the hash is recorded on save; a parent replaced by another run is reported', async () => {
    const dir = tmpdir('parent');
    try {
      const parent = await save(new TinyNet(), path.join(dir, 'float.safetensors'));
      const child = await save(new TinyNet(), path.join(dir, 'traced.safetensors'), { parent });
      const info = readCheckpointInfo(child);
      assert.equal(info.metadata.raw[METADATA_KEYS.parentHash], fileHash(parent));
      assert.equal(parentProblem(child, info.metadata), undefined);
      await save(new TinyNet(), parent); // run B writes its own float checkpoint over run A's
      assert.match(parentProblem(child, info.metadata)!, /its parent .*float\.safetensors is not the file it was made from/);
      // linger inspect (and the Checkpoints view's Inspect) shows it beside the parent
      assert.match(
        formatInspect(inspectCheckpoint(child)),
        /parent +.*float\.safetensors — warning: its parent .* is not the file it was made from/,
      );
      fs.rmSync(parent);
      assert.match(parentProblem(child, info.metadata)!, /its parent .*float\.safetensors cannot be read/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
