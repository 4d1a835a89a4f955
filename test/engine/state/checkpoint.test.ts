// Checkpoints (SPEC §6): metadata keys, validation before allocation with clear errors, dtypes,
// exact resume of training, atomic writes under a crash.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  data,
  DemoCNN,
  F,
  initBackend,
  linger,
  manualSeed,
  nn,
  optim,
  rand,
  randn,
  stageOfDict,
  Tensor,
  tensor,
} from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { CheckpointFormatError, MAX_HEADER, readSafetensors, serializeSafetensors } from '../../../src/engine/state/safetensors';
import { OPTIMIZER_PREFIX, readCheckpointInfo } from '../../../src/engine/state/checkpoint';
import { applyCheckpointTransforms } from '../../../src/engine/state/replay';
import { ROOT, TinyNet, trainedDemo } from './stateFixtures';

before(async () => {
  await initBackend();
});

function tmpdir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `linger-${tag}-`));
}

/** A safetensors file by hand: header object (or raw JSON text), data, optional header-length override. */
function craft(header: unknown, body: Uint8Array = new Uint8Array(0), hlen?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(hlen ?? BigInt(json.length));
  return Buffer.concat([len, json, body]);
}
const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

describe('save and load: the metadata of SPEC §6', () => {
  test('every metadata key is written, parsed and typed; the state round-trips bit for bit', async () => {
    const dir = tmpdir('meta');
    try {
      const m = trainedDemo(1);
      linger.traceLayers(m, m, randn([1, 1, 28, 28]));
      linger.normalizeLayers(m, { normalizeWeightValue: 4, normalizeBiasValue: null, normalizeOutputValue: 6 });
      const opt = new optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
      opt.step(() => F.crossEntropy(m(rand([4, 1, 28, 28])) as Tensor, tensor([1, 2, 3, 4], [4], 'int32')));
      const file = await linger.save(m, path.join(dir, 'exp', 'traced.safetensors'), {
        metrics: { accuracy: 0.875, loss: 0.3 },
        parent: 'checkpoints/exp/float.safetensors',
        optimizer: opt,
      });
      const ck = await linger.loadCheckpoint(file);
      const raw = ck.metadata.raw;
      for (const k of [
        'format',
        'stage',
        'version',
        'model',
        'structure_hash',
        'created',
        'metrics',
        'parent',
        'module_tree',
        'graph',
        'input_shape',
        'optimizer',
        'transforms',
      ]) {
        assert.ok(`linger.${k}` in raw, `linger.${k} is written`);
      }
      const md = ck.metadata;
      assert.equal(md.format, 'linger-studio/1');
      assert.equal(md.stage, 'traced');
      assert.equal(stageOfDict(ck.stateDict), 'traced');
      assert.equal(md.model, 'DemoCNN');
      assert.match(md.version, /^\d+\.\d+\.\d+/);
      assert.ok(Math.abs(Date.parse(md.created) - Date.now()) < 60_000, 'created is an ISO time of now');
      assert.deepEqual(md.metrics, { accuracy: 0.875, loss: 0.3 });
      assert.equal(md.parent, 'checkpoints/exp/float.safetensors');
      assert.deepEqual(md.inputShape, [1, 1, 28, 28], 'the input shape from the traced graph');
      assert.deepEqual(md.transforms, ['trace', 'normalize']);
      assert.equal(md.structureHash, linger.structureHash(m.stateDict()));
      const conv1 = md.moduleTree!.find((e) => e.path === 'conv1')!;
      assert.equal(conv1.type, 'NormalizeConvBN2d');
      assert.equal(conv1.aheadRelu, true);
      assert.deepEqual(conv1.normalize, { data: 6, weight: 4, bias: null });
      assert.equal(md.moduleTree!.find((e) => e.path === 'bn1')!.type, 'EmptyBatchNorm');
      assert.equal((md.graph as { nodes: unknown[] }).nodes.length, 12);
      assert.equal(ck.optimizerType, 'SGD');
      assert.equal(ck.optimizer!.param_groups[0].lr, 0.01);
      assert.equal(Object.keys(ck.optimizer!.state).length, m.parameters().length);
      // the optimizer's tensors are not part of the model's state
      assert.ok(!Object.keys(ck.stateDict).some((k) => k.startsWith(OPTIMIZER_PREFIX)));
      const own = m.stateDict();
      assert.deepEqual(Object.keys(ck.stateDict), Object.keys(own));
      for (const [k, t] of Object.entries(own)) {
        assert.equal(ck.stateDict[k].dtype, t.dtype, k);
        assert.deepEqual(ck.stateDict[k].dataSync(), t.dataSync(), k);
      }
      // a viewer reads the same metadata without the data
      const info = readCheckpointInfo(file);
      assert.deepEqual({ ...info.metadata, raw: undefined }, { ...md, raw: undefined });
      assert.equal(info.tensors.length, Object.keys(own).length);
      assert.equal(info.optimizerTensors.length, m.parameters().length);
      // linger.load gives the dict alone, stage set
      const sd = await linger.load(file);
      assert.equal(stageOfDict(sd), 'traced');
      assert.equal(Object.keys(sd).length, Object.keys(own).length);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a state dict saves too; the stage comes from the dict; keys like __proto__ stay ordinary entries', async () => {
    const dir = tmpdir('dict');
    try {
      const file = await linger.save({ ['__proto__']: tensor([1, 2]), 'a.scale_o': tensor([4]) }, path.join(dir, 'd.safetensors'));
      const ck = await linger.loadCheckpoint(file);
      assert.equal(ck.metadata.stage, 'fixed', 'quantizer buffers: fixed');
      assert.equal(ck.metadata.model, 'StateDict');
      assert.deepEqual(Object.keys(ck.stateDict), ['__proto__', 'a.scale_o']);
      assert.deepEqual(Array.from(ck.stateDict['__proto__'].dataSync()), [1, 2]);
      assert.equal(Object.getPrototypeOf(ck.stateDict), Object.prototype);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('save refuses a bad input shape and keys that collide with optimizer state', async () => {
    await assert.rejects(linger.save(new TinyNet(), path.join(os.tmpdir(), 'never.safetensors'), { inputShape: [1, 0, 4] }), {
      message: /inputShape must be a list of positive whole numbers \(NCHW, batch first\), got \[1,0,4\]/,
    });
    await assert.rejects(linger.save({ '__optimizer__/0/x': tensor([1]) }, path.join(os.tmpdir(), 'never.safetensors')), {
      message: /the state key '__optimizer__\/0\/x' uses the prefix reserved for optimizer state/,
    });
  });
});

describe('reading validates before allocating; every failure names the file and the problem', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: [string, () => Buffer | 'dir' | 'missing', RegExp][] = [
    ['missing file', () => 'missing', /: no such file$/],
    ['a directory', () => 'dir', /: is a directory, not a safetensors file$/],
    ['3 bytes', () => Buffer.from([1, 2, 3]), /not a safetensors file: 3 bytes, the 8-byte header length is missing/],
    ['huge header length', () => craft(ok, f32(1, 2), 2n ** 63n), /header length 9223372036854775808 exceeds the 104857600-byte limit/],
    ['header length past the end', () => craft(ok, f32(1, 2), 5000n), /truncated: the header says 5000 bytes, only \d+ follow/],
    ['header length 0', () => craft(ok, f32(1, 2), 0n), /header length 0 is too short for a JSON object/],
    ['JSON garbage', () => craft('{"w": {"dtype": "F32", "sha', f32(1, 2)), /the header is not valid JSON/],
    ['bad UTF-8', () => craft(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('latin1'), f32()), /the header is not valid JSON/],
    ['a JSON list', () => craft('[1, 2]', f32()), /the header is not a JSON object/],
    [
      'unknown dtype',
      () => craft({ w: { ...ok.w, dtype: 'F8' } }, f32(1, 2)),
      /tensor 'w': unsupported dtype "F8" \(this reader knows F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL\)/,
    ],
    ['negative dimension', () => craft({ w: { ...ok.w, shape: [-2] } }, f32(1, 2)), /tensor 'w': bad shape \[-2\]/],
    ['fractional dimension', () => craft({ w: { ...ok.w, shape: [1.5] } }, f32(1, 2)), /tensor 'w': bad shape \[1.5\]/],
    [
      'shape larger than the file',
      () => craft({ w: { ...ok.w, shape: [2 ** 40, 2 ** 40] } }, f32(1, 2)),
      /tensor 'w': shape \[1099511627776, 1099511627776\] of F32 needs more bytes than the file's 8 data bytes/,
    ],
    [
      'size mismatch',
      () => craft({ w: { ...ok.w, shape: [3] } }, f32(1, 2, 3)),
      /tensor 'w': data_offsets \[0, 8\] hold 8 bytes, shape \[3\] of F32 needs 12/,
    ],
    [
      'offsets past the end',
      () => craft({ w: { ...ok.w, data_offsets: [0, 16] } }, f32(1, 2)),
      /tensor 'w': data_offsets \[0, 16\] run past the 8 data bytes \(truncated file\?\)/,
    ],
    [
      'reversed offsets',
      () => craft({ w: { ...ok.w, data_offsets: [8, 0] } }, f32(1, 2)),
      /tensor 'w': data_offsets \[8, 0\] end before they begin/,
    ],
    ['offsets not numbers', () => craft({ w: { ...ok.w, data_offsets: ['0', 8] } }, f32(1, 2)), /tensor 'w': bad data_offsets \["0",8\]/],
    [
      'overlapping tensors',
      () => craft({ a: ok.w, b: { ...ok.w, data_offsets: [4, 12] } }, f32(1, 2, 3)),
      /tensors 'a' \[0, 8\] and 'b' \[4, 12\] overlap/,
    ],
    [
      'a hole',
      () => craft({ a: { ...ok.w, data_offsets: [4, 12] } }, f32(1, 2, 3)),
      /bytes \[0, 4\) of the data belong to no tensor \(a hole before 'a'\)/,
    ],
    ['trailing bytes', () => craft(ok, f32(1, 2, 3)), /4 bytes after the last tensor belong to no tensor/],
    [
      'metadata not strings',
      () => craft({ __metadata__: { 'linger.stage': 3 }, ...ok }, f32(1, 2)),
      /__metadata__ entry 'linger.stage' is not a string \(number\)/,
    ],
    [
      'unknown stage',
      () => craft({ __metadata__: { 'linger.stage': 'frozen' }, ...ok }, f32(1, 2)),
      /unknown stage 'frozen' in linger.stage \(float, traced or fixed\)/,
    ],
    [
      'a newer format',
      () => craft({ __metadata__: { 'linger.format': 'linger-studio/7' }, ...ok }, f32(1, 2)),
      /written in format linger-studio\/7 by a newer linger-studio; this version reads linger-studio\/1/,
    ],
    [
      'metadata JSON broken',
      () => craft({ __metadata__: { 'linger.metrics': '{acc: 1' }, ...ok }, f32(1, 2)),
      /metadata linger.metrics is not valid JSON/,
    ],
    [
      'input shape wrong',
      () => craft({ __metadata__: { 'linger.input_shape': '[1, -3]' }, ...ok }, f32(1, 2)),
      /metadata linger.input_shape is not a list of positive whole numbers: \[1, -3\]/,
    ],
    [
      'module tree wrong',
      () => craft({ __metadata__: { 'linger.module_tree': '[{"path": "a", "type": "X", "repr": 5}]' }, ...ok }, f32(1, 2)),
      /metadata linger.module_tree\[0\] \(module 'a'\): repr must be a string/,
    ],
    [
      'int64 beyond int32',
      () => craft({ n: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(BigInt64Array.from([2n ** 40n]).buffer)),
      /tensor 'n': int64 value 1099511627776 does not fit the engine's int32/,
    ],
    [
      'optimizer tensors without their metadata',
      () => craft({ [`${OPTIMIZER_PREFIX}0/momentum_buffer`]: ok.w }, f32(1, 2)),
      /optimizer tensors \(0\/momentum_buffer\) without linger.optimizer metadata/,
    ],
    [
      'optimizer metadata wrong',
      () => craft({ __metadata__: { 'linger.optimizer': '{"type": "SGD", "param_groups": [], "state": {}}' }, ...ok }, f32(1, 2)),
      /metadata linger.optimizer: param_groups is not a non-empty list/,
    ],
  ];
  for (const [name, make, msg] of cases) {
    test(name, async () => {
      const dir = tmpdir('bad');
      try {
        let file = path.join(dir, 'bad.safetensors');
        const what = make();
        if (what === 'dir') fs.mkdirSync(file);
        else if (what === 'missing') file = path.join(dir, 'nope.safetensors');
        else fs.writeFileSync(file, what);
        const tensorsBefore = tf.memory().numTensors;
        await assert.rejects(linger.loadCheckpoint(file), (e: unknown) => {
          assert.ok(e instanceof CheckpointFormatError, `a CheckpointFormatError, got ${String(e)}`);
          assert.ok(e.message.startsWith(`${file}: `), `names the file: ${e.message}`);
          assert.match(e.message, msg);
          return true;
        });
        assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor was made');
        // the header-only reader sees the same problems, except in values (int64 range)
        if (what !== 'missing' && what !== 'dir' && !name.startsWith('int64'))
          assert.throws(() => readCheckpointInfo(file), CheckpointFormatError);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('buffers are allocated only after the header is valid, and never more than the file holds', () => {
    const dir = tmpdir('alloc');
    try {
      const good = path.join(dir, 'good.safetensors');
      fs.writeFileSync(good, craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, f32(1, 2, 3)));
      const sizes: number[] = [];
      const f = readSafetensors(good, {
        allocate: (n) => {
          sizes.push(n);
          return new Uint8Array(n);
        },
      });
      assert.deepEqual(Array.from(new Float32Array(f.tensors.get('a')!.data.slice().buffer)), [1, 2, 3]);
      const size = fs.statSync(good).size;
      assert.equal(sizes.length, 2, 'the header, then the data');
      assert.equal(sizes[0] + sizes[1] + 8, size);
      // a header that claims 64 MB of data in a tiny file: only the header is read
      const bad = path.join(dir, 'bad.safetensors');
      fs.writeFileSync(bad, craft({ a: { dtype: 'F32', shape: [2 ** 24], data_offsets: [0, 2 ** 26] } }, f32(1)));
      sizes.length = 0;
      assert.throws(
        () =>
          readSafetensors(bad, {
            allocate: (n) => {
              sizes.push(n);
              return new Uint8Array(n);
            },
          }),
        /run past the 4 data bytes/,
      );
      assert.equal(sizes.length, 1);
      assert.ok(sizes[0] < fs.statSync(bad).size);
      // a header length beyond the file is refused before any buffer is made
      const huge = path.join(dir, 'huge.safetensors');
      fs.writeFileSync(huge, craft({}, new Uint8Array(0), BigInt(MAX_HEADER)));
      sizes.length = 0;
      assert.throws(
        () =>
          readSafetensors(huge, {
            allocate: (n) => {
              sizes.push(n);
              return new Uint8Array(n);
            },
          }),
        /truncated: the header says 104857600 bytes/,
      );
      assert.deepEqual(sizes, []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every dtype of the format that holds numbers converts: floats to float32, integers to int32', async () => {
    const dir = tmpdir('dtypes');
    try {
      const parts: [string, string, number[], Uint8Array][] = [
        ['f64', 'F64', [2], new Uint8Array(Float64Array.from([1.5, -2.25]).buffer)],
        ['f16', 'F16', [3], new Uint8Array(Uint16Array.from([0x3c00, 0xc000, 0x3555]).buffer)], // 1, -2, 0.333251953125
        ['bf16', 'BF16', [2], new Uint8Array(Uint16Array.from([0x3f80, 0xc0a0]).buffer)], // 1, -5
        ['i64', 'I64', [2], new Uint8Array(BigInt64Array.from([-7n, 2147483647n]).buffer)],
        ['i16', 'I16', [2], new Uint8Array(Int16Array.from([-300, 300]).buffer)],
        ['i8', 'I8', [2], new Uint8Array(Int8Array.from([-128, 127]).buffer)],
        ['u8', 'U8', [2], Uint8Array.from([0, 255])],
        ['bool', 'BOOL', [2], Uint8Array.from([0, 1])],
        ['empty', 'F32', [0, 5], new Uint8Array(0)],
        ['scalar', 'I32', [], new Uint8Array(Int32Array.from([42]).buffer)],
      ];
      const header: Record<string, unknown> = {};
      let off = 0;
      for (const [n, d, s, b] of parts) {
        header[n] = { dtype: d, shape: s, data_offsets: [off, off + b.length] };
        off += b.length;
      }
      const file = path.join(dir, 'dtypes.safetensors');
      fs.writeFileSync(file, craft(header, Buffer.concat(parts.map((p) => p[3]))));
      const sd = (await linger.loadCheckpoint(file)).stateDict;
      const v = (k: string) => Array.from(sd[k].dataSync());
      assert.deepEqual(v('f64'), [1.5, -2.25]);
      assert.deepEqual(v('f16'), [1, -2, 0.333251953125]);
      assert.deepEqual(v('bf16'), [1, -5]);
      assert.deepEqual(v('i64'), [-7, 2147483647]);
      assert.deepEqual(v('i16'), [-300, 300]);
      assert.deepEqual(v('i8'), [-128, 127]);
      assert.deepEqual(v('u8'), [0, 255]);
      assert.deepEqual(v('bool'), [0, 1]);
      assert.deepEqual(sd.empty.shape, [0, 5]);
      assert.deepEqual(sd.scalar.shape, []);
      assert.equal(sd.scalar.item(), 42);
      for (const k of ['f64', 'f16', 'bf16']) assert.equal(sd[k].dtype, 'float32');
      for (const k of ['i64', 'i16', 'i8', 'u8', 'bool', 'scalar']) assert.equal(sd[k].dtype, 'int32');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- resume == uninterrupted ------------------------------------------------------------------------

function syntheticData(seed: number, n: number): data.Dataset {
  manualSeed(seed);
  const x = rand([n, 1, 28, 28]).dataSync() as Float32Array;
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % 10);
  return data.fromArrays(x, y, [1, 28, 28]);
}

/**
 * Trains global steps [from, to) over seeded, shuffled epochs (epoch e shuffled with seed + e, as
 * DataLoader does); steps before `from` are drawn and skipped, so a resumed run sees the batches
 * the uninterrupted run saw. `at(step)` runs before each trained step (to save mid-run).
 */
async function trainSteps(
  model: nn.Module,
  opt: optim.SGD | optim.Adam,
  ds: data.Dataset,
  from: number,
  to: number,
  at?: (step: number) => Promise<void>,
): Promise<void> {
  const loader = new data.DataLoader(ds, { batchSize: 8, shuffle: true, seed: 99 });
  model.train();
  let step = 0;
  while (step < to) {
    for (const b of loader) {
      try {
        if (step >= from && step < to) {
          if (at) await at(step);
          opt.step(() => F.crossEntropy(model(b.x) as Tensor, b.y));
        }
      } finally {
        b.x.dispose();
        b.y.dispose();
      }
      step++;
    }
  }
}

function assertSameState(a: nn.Module, b: nn.Module, what: string): void {
  const sa = a.stateDict(),
    sb = b.stateDict();
  assert.deepEqual(Object.keys(sb), Object.keys(sa));
  for (const k of Object.keys(sa)) assert.deepEqual(sb[k].dataSync(), sa[k].dataSync(), `${what}: ${k} differs`);
}

describe('resuming from a checkpoint gives exactly the uninterrupted run', () => {
  test('float stage, SGD with momentum and weight decay: saved mid-epoch, resumed into a fresh model and optimizer', async () => {
    const dir = tmpdir('resume');
    try {
      const ds = syntheticData(3, 40); // 5 batches an epoch
      const full = trainedDemo(7);
      const optA = new optim.SGD(full.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
      const file = path.join(dir, 'mid.safetensors');
      await trainSteps(full, optA, ds, 0, 13, async (s) => {
        if (s === 7) await linger.save(full, file, { optimizer: optA });
      });

      const resumed = trainedDemo(8); // other weights: the checkpoint must replace them all
      const optB = new optim.SGD(resumed.parameters(), { lr: 0.5, momentum: 0.1 });
      const ck = await linger.loadCheckpoint(file);
      resumed.loadStateDict(ck.stateDict);
      optB.loadStateDict(ck.optimizer!);
      assert.equal(optB.lr, 0.05, 'the learning rate comes back');
      await trainSteps(resumed, optB, ds, 7, 13);
      assertSameState(full, resumed, 'resumed SGD');
      // and the resume actually trained: the state moved since the checkpoint
      assert.notDeepEqual(full.stateDict()['fc2.weight'].dataSync(), ck.stateDict['fc2.weight'].dataSync());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("fixed stage (QAT) with Adam: the model is rebuilt from the checkpoint's recorded transforms, then resumed", async () => {
    const dir = tmpdir('resume-qat');
    try {
      const ds = syntheticData(4, 32); // 4 batches an epoch
      const full = trainedDemo(9);
      linger.traceLayers(full, full, randn([1, 1, 28, 28]));
      linger.normalizeLayers(full);
      linger.init(full);
      const optA = new optim.Adam(full.parameters(), { lr: 1e-3 });
      const file = path.join(dir, 'qat.safetensors');
      await trainSteps(full, optA, ds, 0, 10, async (s) => {
        if (s === 6) await linger.save(full, file, { optimizer: optA });
      });

      const ck = await linger.loadCheckpoint(file);
      assert.equal(ck.metadata.stage, 'fixed');
      const resumed = new DemoCNN();
      applyCheckpointTransforms(resumed, ck.metadata, randn([1, 1, 28, 28]), file);
      resumed.loadStateDict(ck.stateDict);
      const optB = new optim.Adam(resumed.parameters(), { lr: 1e-3 });
      optB.loadStateDict(ck.optimizer!);
      await trainSteps(resumed, optB, ds, 6, 10);
      assertSameState(full, resumed, 'resumed QAT');
      assert.ok(full.stateDict()['fc1.running_o'].item() > 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- atomic writes ------------------------------------------------------------------------------------

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('atomic writes', () => {
  test(
    'a writer killed in the middle of a large save never leaves a partial file under the final name',
    { timeout: 180_000 },
    async (t) => {
      const dir = tmpdir('atomic');
      try {
        const file = path.join(dir, 'model.safetensors');
        await linger.save({ w: tensor([1, 2, 3]) }, file, { metrics: { generation: 1 } });
        const oldHash = sha(file);
        const megabytes = 256;
        const expected = megabytes * 1024 * 1024; // the tensor's bytes alone; the file is a little larger
        const child = path.join(__dirname, 'atomicWriter.ts');
        let midWrite = 0;
        let rounds = 0;
        for (let round = 0; round < 6 && midWrite < 2; round++, rounds++) {
          const p = spawn(process.execPath, ['--import', 'tsx', child, file, String(megabytes)], {
            cwd: ROOT,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stderr = '';
          p.stderr.on('data', (d) => {
            stderr += d;
          });
          const exited = new Promise<number | null>((res) => p.on('exit', (code) => res(code)));
          // watch for the child's temp file and kill the child as soon as part of the data is down
          const prefix = `.${path.basename(file)}.${p.pid}.`;
          let killedAt = -1;
          const deadline = Date.now() + 60_000;
          while (killedAt < 0 && Date.now() < deadline && p.exitCode === null) {
            const tmp = fs.readdirSync(dir).find((n) => n.startsWith(prefix));
            if (tmp) {
              let size = 0;
              try {
                size = fs.statSync(path.join(dir, tmp)).size;
              } catch {
                /* renamed */
              }
              // a random point between 1% and 90% of the data
              if (size > expected * (0.01 + 0.89 * ((round * 0.37) % 1))) {
                p.kill('SIGKILL');
                killedAt = size;
              }
            }
            if (killedAt < 0) await new Promise((r) => setImmediate(r));
          }
          const code = await exited;
          const left = fs.readdirSync(dir).filter((n) => n.startsWith(prefix));
          // under the final name: the old file, intact, or the complete new one, never a part
          const info = readCheckpointInfo(file);
          const gen = info.metadata.metrics.generation;
          if (gen === 1) assert.equal(sha(file), oldHash, 'the old file is byte for byte intact');
          else {
            assert.equal(gen, 2, `round ${round}: exit ${code}, ${stderr}`);
            assert.equal(info.tensors[0].end, expected);
          }
          if (killedAt >= 0 && left.length === 1 && fs.statSync(path.join(dir, left[0])).size < expected) {
            midWrite++;
            assert.equal(gen, 1, 'killed mid-write: the old file is still there');
          }
        }
        assert.ok(midWrite >= 1, `at least one kill landed in the middle of the write (${midWrite})`);
        t.diagnostic(`${rounds} writers of ${megabytes} MB killed, ${midWrite} in the middle of the write`);
        // the next save removes the dead writers' temp files
        await linger.save({ w: tensor([4, 5, 6]) }, file, { metrics: { generation: 3 } });
        assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
        assert.deepEqual(Array.from((await linger.load(file)).w.dataSync()), [4, 5, 6]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test('a failed write leaves the old file and no temp file', async () => {
    const dir = tmpdir('atomic-fail');
    try {
      const file = path.join(dir, 'x.safetensors');
      await linger.save({ w: tensor([1]) }, file);
      const before = sha(file);
      const disposed = tensor([2]);
      disposed.dispose();
      await assert.rejects(linger.save({ w: disposed }, file));
      assert.equal(sha(file), before);
      assert.deepEqual(fs.readdirSync(dir), ['x.safetensors']);
      // and a bad tensor/size pair is refused before anything is written
      assert.throws(
        () => serializeSafetensors([['a', { dtype: 'F32', shape: [3], data: new Uint8Array(4) }]], {}),
        /tensor 'a' has 4 bytes, shape \[3\] of F32 needs 12/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('checkpoints of models that take token ids', () => {
  test('a traced Embedding→GRU model records its int32 input (linger.input_dtype) beside the shape; float models record none', async () => {
    class Tokens extends nn.Module {
      emb = new nn.Embedding(20, 6);
      gru = new nn.GRU(6, 4, { batchFirst: true });
      forward(x: Tensor): Tensor {
        return (this.gru(this.emb(x)) as [Tensor, Tensor])[1];
      }
    }
    manualSeed(2);
    const m = new Tokens();
    const ids = tensor(
      Int32Array.from({ length: 10 }, (_, i) => i % 20),
      [2, 5],
      'int32',
    );
    linger.traceLayers(m, m, ids);
    const dir = tmpdir('dtype');
    const file = path.join(dir, 'tokens.safetensors');
    await linger.save(m, file);
    const info = await readCheckpointInfo(file);
    assert.deepEqual(info.metadata.inputShape, [2, 5]);
    assert.equal(info.metadata.inputDtype, 'int32');
    assert.equal(info.metadata.raw['linger.input_dtype'], 'int32');
    const cnn = new TinyNet();
    linger.traceLayers(cnn, cnn, randn([1, 2, 4, 4]));
    const f2 = path.join(dir, 'float.safetensors');
    await linger.save(cnn, f2);
    assert.equal((await readCheckpointInfo(f2)).metadata.inputDtype, undefined);
  });
});
