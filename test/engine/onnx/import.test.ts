// ONNX import (SPEC §7) of models PyTorch exported (scripts/golden/make_onnx_fixtures.py), both
// the default export and the PRESERVE export: outputs equal PyTorch's within 1e-4, module paths
// and (PRESERVE) state-dict keys are PyTorch's, the imported model traces, quantizes and exports;
// malformed files are clean errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DemoCNN, F, initBackend, linger, manualSeed, nn, randn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { exportOnnx, importOnnx, importOnnxBuffer, OnnxImportError, scopeOfNodeName } from '../../../src/engine/onnx/index';
import { DT, encodeModel, node, onnx, tensorProto, valueInfo } from '../../../src/engine/onnx/proto';
import { diff, runSession, session, tempDir } from './ort';
import { prng } from '../prng';

before(async () => {
  await initBackend();
});
const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'onnx');
const dir = tempDir('import');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MODES = ['default', 'preserve'] as const;

interface Fixture {
  name: string;
  opset: number;
  dynamic: boolean;
  input: { shape: number[]; data: number[] };
  output: { shape: number[]; data: number[] };
  modules: [string, string][];
  state_dict_keys: string[];
}
const fixtures: Fixture[] = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as Fixture);
const fileOf = (f: Fixture, mode: string) => path.join(FIXTURES, `${f.name}.${mode}.onnx`);
const inputOf = (f: Fixture) => tensor(Float32Array.from(f.input.data), f.input.shape);
function quiet<T>(fn: () => T): T {
  const orig = process.emitWarning;
  process.emitWarning = (() => undefined) as typeof process.emitWarning;
  try {
    return fn();
  } finally {
    process.emitWarning = orig;
  }
}
function run(m: nn.Module, x: Tensor): Float32Array {
  m.eval();
  return tidy(() => m(x) as Tensor).dataSync() as Float32Array;
}
const leafPaths = (m: nn.Module) =>
  [...m.namedModules()].filter(([p, x]) => p && x.typeName() !== 'OnnxScope').map(([p, x]) => [p, x.typeName()] as [string, string]);

test('the fixtures: six models, each exported both ways', () => {
  assert.deepEqual(
    fixtures.map((f) => f.name),
    ['concat', 'demo_cnn', 'gemm_mlp', 'grouped_transpose', 'resnet_block', 'view'],
  );
  for (const f of fixtures) for (const mode of MODES) assert.ok(fs.existsSync(fileOf(f, mode)), `${f.name}.${mode}.onnx`);
  assert.ok(fixtures.some((f) => f.opset === 11) && fixtures.some((f) => f.opset === 17), 'opsets 11 to 17');
});

test('PyTorch node names to module paths', () => {
  assert.equal(scopeOfNodeName('/layer1/layer1.0/conv1/Conv'), 'layer1.0.conv1');
  assert.equal(scopeOfNodeName('/layer1/layer1.1/downsample/downsample.0/Conv'), 'layer1.1.downsample.0');
  assert.equal(scopeOfNodeName('/fc/Gemm'), 'fc');
  assert.equal(scopeOfNodeName('/Flatten'), '');
  assert.equal(scopeOfNodeName('Conv_0'), null);
});

describe('import of PyTorch exports: outputs, module paths, state-dict keys', () => {
  for (const f of fixtures) {
    for (const mode of MODES) {
      test(`${f.name} (${mode} export, opset ${f.opset})`, async () => {
        const m = await importOnnx(fileOf(f, mode));
        const y = run(m, inputOf(f));
        const d = diff(y, f.output.data);
        assert.ok(d.maxAbs <= 1e-4, `max |engine − PyTorch| = ${d.maxAbs}`);
        assert.deepEqual((m(inputOf(f)) as Tensor).shape, f.output.shape);

        // every imported layer sits at one of PyTorch's module paths, with PyTorch's class name
        const torch = new Map(f.modules);
        for (const [p, t] of leafPaths(m)) assert.equal(torch.get(p), t, `imported ${t} at '${p}'`);
        for (const [p, x] of m.namedModules())
          if (p && x.typeName() === 'OnnxScope') assert.ok(torch.has(p), `container '${p}' is a PyTorch module`);
        // every conv and linear layer is there (BN is folded into the conv by the default export)
        const imported = new Map(leafPaths(m));
        for (const [p, t] of f.modules) {
          if (['Conv2d', 'Conv1d', 'ConvTranspose2d', 'Linear'].includes(t)) assert.equal(imported.get(p), t, `${t} '${p}' imported`);
        }
        if (mode === 'preserve') {
          const sd = m.stateDict();
          assert.deepEqual(Object.keys(sd), f.state_dict_keys);
          for (const [k, v] of Object.entries(sd)) if (k.endsWith('num_batches_tracked')) assert.equal(v.item(), 0);
          for (const [p, t] of f.modules) if (t.startsWith('BatchNorm')) assert.equal(imported.get(p), t, `${t} '${p}' kept`);
        }
        if (f.dynamic) {
          // the batch is free: [x; x] gives [y; y]
          const [n] = f.input.shape;
          const x2 = F.cat([inputOf(f), inputOf(f)], 0);
          const y2 = run(m, x2);
          assert.equal(y2.length, 2 * y.length);
          assert.ok(diff(y2.subarray(0, y.length), y).maxAbs <= 1e-6 && diff(y2.subarray(y.length), y).maxAbs <= 1e-6, `batch ${2 * n}`);
        }
      });
    }
  }
});

describe('the imported model is a model like any other', () => {
  test('traceLayers fuses conv→BN pairs but leaves a conv whose output branches unfused', async () => {
    const f = fixtures.find((x) => x.name === 'concat')!;
    const m = await importOnnx(fileOf(f, 'preserve'));
    linger.traceLayers(m, m, inputOf(f));
    const types = Object.fromEntries(leafPaths(m));
    assert.equal(types.conv_a, 'Conv2d', 'conv_a feeds bn_a and the concat: not fused');
    assert.equal(types.bn_a, 'BatchNorm2d');
    assert.equal(types.conv_b, 'NormalizeConvBN2d');
    assert.equal(types.bn_b, 'EmptyBatchNorm');
    assert.ok(diff(run(m, inputOf(f)), f.output.data).maxAbs <= 1e-4, 'same outputs after tracing');

    const r = fixtures.find((x) => x.name === 'resnet_block')!;
    const rm = await importOnnx(fileOf(r, 'preserve'));
    linger.traceLayers(rm, rm, inputOf(r));
    const rt = Object.fromEntries(leafPaths(rm));
    for (const p of ['conv1', 'layer1.0.conv1', 'layer1.0.conv2', 'layer1.1.conv1', 'layer1.1.conv2', 'layer1.1.downsample.0'])
      assert.equal(rt[p], 'NormalizeConvBN2d', p);
    assert.ok(diff(run(rm, inputOf(r)), r.output.data).maxAbs <= 1e-4);
  });

  test('init + export on every imported model: the fixed qdq export equals the engine bit for bit', async () => {
    // these end in a float op that init leaves in float (Sigmoid, Softmax), computed by two libraries
    const FLOAT_TAIL = ['concat', 'gemm_mlp'];
    for (const f of fixtures) {
      for (const mode of MODES) {
        const m = await importOnnx(fileOf(f, mode));
        const x = inputOf(f);
        quiet(() => {
          linger.traceLayers(m, m, x);
          linger.init(m);
        });
        manualSeed(5);
        linger.calibrate(m, [randn(f.input.shape), randn(f.input.shape), x]);
        const file = path.join(dir, `${f.name}-${mode}-fixed.onnx`);
        await exportOnnx(m, x, file);
        const s = await session(file);
        for (const xi of [x, randn(f.input.shape)]) {
          const d = diff(run(m, xi), await runSession(s, xi));
          if (FLOAT_TAIL.includes(f.name)) {
            // a Sigmoid/Softmax after the last quantized layer stays float: last-ulp differences only
            assert.ok(d.maxAbs <= 1e-6, `${f.name} (${mode}): max diff ${d.maxAbs}`);
          } else {
            assert.equal(d.equalFraction, 1, `${f.name} (${mode}): ${d.equalFraction * 100}% equal, max diff ${d.maxAbs}`);
          }
        }
      }
    }
  });

  test('round trip: an engine model exported as float ONNX imports with its paths, keys and outputs', async () => {
    manualSeed(7);
    const m = new DemoCNN();
    linger.calibrate(m, [randn([8, 1, 28, 28])]);
    const file = path.join(dir, 'demo-roundtrip.onnx');
    await exportOnnx(m, randn([1, 1, 28, 28]), file);
    const back = await importOnnx(file, { inputShape: [3, 1, 28, 28] });
    const x = randn([3, 1, 28, 28]);
    assert.ok(diff(run(m, x), run(back, x)).maxAbs <= 1e-5);
    assert.deepEqual(leafPaths(back), leafPaths(m));
    assert.deepEqual(Object.keys(back.stateDict()), Object.keys(m.stateDict()));
  });
});

// ---- ops beyond the fixtures, against onnxruntime ---------------------------------------------

describe('hand-built graphs: the imported model computes what onnxruntime computes', () => {
  const f32 = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.37) * 1.5);
  const cases: {
    name: string;
    opset: number;
    shape: number[];
    nodes: onnx.INodeProto[];
    inits: onnx.ITensorProto[];
    outShape: number[];
  }[] = [
    {
      name: 'linear on 3-d input (MatMul + Add), shape arithmetic with Slice, Squeeze/Unsqueeze, reductions',
      opset: 13,
      shape: [2, 3, 4],
      outShape: [2, 1, 5],
      nodes: [
        node('MatMul', ['x', 'w'], ['m'], '/fc/MatMul'),
        node('Add', ['b', 'm'], ['a'], '/fc/Add'),
        node('Shape', ['a'], ['s'], '/Shape'),
        node('Slice', ['s', 'st', 'en'], ['s2'], '/Slice'),
        node('Concat', ['s2', 'minus1'], ['shape'], '/Concat', { axis: 0 }),
        node('Reshape', ['a', 'shape'], ['r'], '/Reshape'),
        node('Unsqueeze', ['r', 'ax1'], ['u'], '/Unsqueeze'),
        node('Squeeze', ['u', 'ax1'], ['q'], '/Squeeze'),
        node('ReduceMean', ['q'], ['y'], '/ReduceMean', { axes: [1], keepdims: 1 }),
      ],
      inits: [
        tensorProto('w', [4, 5], DT.FLOAT, f32(20, 1)),
        tensorProto('b', [5], DT.FLOAT, f32(5, 2)),
        tensorProto('st', [1], DT.INT64, [0]),
        tensorProto('en', [1], DT.INT64, [2]),
        tensorProto('minus1', [1], DT.INT64, [-1]),
        tensorProto('ax1', [1], DT.INT64, [1]),
      ],
    },
    {
      name: 'opset 11: Softmax coerced to 2-d, Clip with inputs, Transpose, Flatten axis 2, Exp/Sqrt/Pow, Gemm with transA and alpha/beta',
      opset: 11,
      shape: [2, 3, 4],
      outShape: [2, 2],
      nodes: [
        node('Softmax', ['x'], ['sm'], '/Softmax', { axis: 1 }),
        node('Clip', ['sm', 'lo', 'hi'], ['c'], '/Clip'),
        node('Transpose', ['c'], ['t'], '/Transpose', { perm: [0, 2, 1] }),
        node('Exp', ['t'], ['e'], '/Exp'),
        node('Sqrt', ['e'], ['sq'], '/Sqrt'),
        node('Pow', ['sq', 'two'], ['p'], '/Pow'),
        node('Flatten', ['p'], ['fl'], '/Flatten', { axis: 2 }),
        node('Reshape', ['fl', 'shp'], ['r'], '/Reshape'),
        node('Gemm', ['r', 'gw', 'gb'], ['y'], '/Gemm', { transA: 1, alpha: { float: 0.5 }, beta: { float: 2 } }),
      ],
      inits: [
        tensorProto('lo', [], DT.FLOAT, [0.1]),
        tensorProto('hi', [], DT.FLOAT, [0.6]),
        tensorProto('two', [], DT.FLOAT, [2]),
        tensorProto('shp', [2], DT.INT64, [12, 2]),
        tensorProto('gw', [12, 2], DT.FLOAT, f32(24, 3)),
        tensorProto('gb', [2], DT.FLOAT, f32(2, 4)),
      ],
    },
    {
      name: 'grouped conv, padded MaxPool, Pad + AveragePool, GlobalAveragePool, LogSoftmax, Concat with a constant, Dropout, Identity',
      opset: 13,
      shape: [2, 2, 8, 8],
      outShape: [2, 7],
      nodes: [
        node('Conv', ['x', 'cw', 'cb'], ['c'], '/conv/Conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], group: 2 }),
        node('MaxPool', ['c'], ['mp'], '/pool/MaxPool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
        node('Pad', ['mp', 'pads'], ['pd'], '/avg/Pad', { mode: 'constant' }),
        node('AveragePool', ['pd'], ['ap'], '/avg/AveragePool', { kernel_shape: [2, 2], strides: [1, 1] }),
        node('GlobalAveragePool', ['ap'], ['g'], '/GlobalAveragePool'),
        node('Flatten', ['g'], ['f'], '/Flatten', { axis: 1 }),
        node('Dropout', ['f'], ['d'], '/drop/Dropout'),
        node('Identity', ['d'], ['i'], '/Identity'),
        node('Concat', ['i', 'k'], ['cat'], '/Concat', { axis: 1 }),
        node('LogSoftmax', ['cat'], ['y'], '/LogSoftmax', { axis: 1 }),
      ],
      inits: [
        tensorProto('cw', [4, 1, 3, 3], DT.FLOAT, f32(36, 5)),
        tensorProto('cb', [4], DT.FLOAT, f32(4, 6)),
        tensorProto('pads', [8], DT.INT64, [0, 0, 1, 1, 0, 0, 1, 1]),
        tensorProto('k', [2, 3], DT.FLOAT, f32(6, 7)),
      ],
    },
    {
      name: 'a zero Pad + AveragePool outside any module scope, ConstantOfShape with a value on a shape computed in the forward',
      opset: 13,
      shape: [2, 2, 4, 4],
      outShape: [2, 2, 5, 5],
      nodes: [
        node('Pad', ['x', 'pads'], ['pd'], '/Pad', { mode: 'constant' }),
        node('AveragePool', ['pd'], ['ap'], '/AveragePool', { kernel_shape: [2, 2], strides: [1, 1] }),
        node('Shape', ['ap'], ['sh'], '/Shape'),
        node('ConstantOfShape', ['sh'], ['k'], '/ConstantOfShape', { value: tensorProto('v', [1], DT.FLOAT, [2.5]) }),
        node('Add', ['ap', 'k'], ['y'], '/Add'),
      ],
      inits: [tensorProto('pads', [8], DT.INT64, [0, 0, 1, 1, 0, 0, 1, 1])],
    },
    {
      name: 'Conv1d + BatchNormalization on 3-d input (BatchNorm1d), ReduceSum with axes as input',
      opset: 13,
      shape: [2, 3, 10],
      outShape: [2, 4],
      nodes: [
        node('Conv', ['x', 'cw'], ['c'], '/conv/Conv', { kernel_shape: [3], pads: [1, 1], strides: [2], dilations: [1] }),
        node('BatchNormalization', ['c', 'g', 'b', 'mu', 'var'], ['bn'], '/bn/BatchNormalization', { epsilon: { float: 1e-3 } }),
        node('Relu', ['bn'], ['r'], '/act/Relu'),
        node('ReduceSum', ['r', 'ax'], ['y'], '/ReduceSum', { keepdims: 0 }),
      ],
      inits: [
        tensorProto('cw', [4, 3, 3], DT.FLOAT, f32(36, 8)),
        tensorProto('g', [4], DT.FLOAT, [1, 0.5, 2, 1.5]),
        tensorProto('b', [4], DT.FLOAT, f32(4, 10)),
        tensorProto('mu', [4], DT.FLOAT, f32(4, 11)),
        tensorProto('var', [4], DT.FLOAT, [0.5, 1, 2, 0.7]),
        tensorProto('ax', [1], DT.INT64, [2]),
      ],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const bytes = encodeModel({
        irVersion: 7,
        opsetImport: [{ domain: '', version: c.opset }],
        graph: {
          name: 'g',
          node: c.nodes,
          initializer: c.inits,
          input: [valueInfo('x', DT.FLOAT, c.shape)],
          output: [valueInfo('y', DT.FLOAT, c.outShape)],
        },
      });
      const file = path.join(dir, `hand-${c.opset}-${c.nodes.length}.onnx`);
      fs.writeFileSync(file, bytes);
      const m = await importOnnx(file);
      const x = tensor(
        f32(
          c.shape.reduce((a, b) => a * b, 1),
          9,
        ),
        c.shape,
      );
      const got = run(m, x);
      const want = await runSession(await session(file), x);
      assert.deepEqual((m(x) as Tensor).shape, c.outShape);
      assert.ok(diff(got, want).maxAbs <= 1e-5, `max |engine − onnxruntime| = ${diff(got, want).maxAbs}`);
      if (c.nodes.some((n) => n.opType === 'BatchNormalization')) assert.ok(m.modules().some((x) => x.typeName() === 'BatchNorm1d'));
    });
  }
});

// ---- errors ------------------------------------------------------------------------------------

/** A small hand-made float model: input [1, 4] → nodes → output. */
function handMade(
  nodes: onnx.INodeProto[],
  inits: onnx.ITensorProto[] = [],
  opts: { inputs?: onnx.IValueInfoProto[]; opset?: number; domain?: string } = {},
): Uint8Array {
  const opsetImport = [{ domain: '', version: opts.opset ?? 13 }];
  if (opts.domain) opsetImport.push({ domain: opts.domain, version: 1 });
  return encodeModel({
    irVersion: 7,
    opsetImport,
    graph: {
      name: 'g',
      node: nodes,
      initializer: inits,
      input: opts.inputs ?? [valueInfo('x', DT.FLOAT, [1, 4])],
      output: [valueInfo('y', DT.FLOAT, [1, 4])],
    },
  });
}

describe('import errors name the file and the problem', () => {
  test('unreadable, empty, not ONNX, truncated', async () => {
    await assert.rejects(importOnnx(path.join(dir, 'missing.onnx')), {
      name: 'OnnxImportError',
      message: /missing\.onnx: cannot read the file/,
    });
    fs.writeFileSync(path.join(dir, 'empty.onnx'), '');
    await assert.rejects(importOnnx(path.join(dir, 'empty.onnx')), { message: /empty\.onnx: the file is empty/ });
    fs.writeFileSync(path.join(dir, 'text.onnx'), 'hello, this is not a model');
    await assert.rejects(importOnnx(path.join(dir, 'text.onnx')), {
      name: 'OnnxImportError',
      message: /text\.onnx: not a valid ONNX model \(protobuf: /,
    });
    const bytes = fs.readFileSync(fileOf(fixtures[0], 'default'));
    assert.throws(() => importOnnxBuffer(bytes.subarray(0, bytes.length - 100), { file: 'cut.onnx' }), {
      name: 'OnnxImportError',
      message: /^cut\.onnx: /,
    });
  });

  test('an unsupported op names the op and the node', () => {
    const m = handMade([node('LeakyRelu', ['x'], ['y'], '/act/LeakyRelu', { alpha: { float: 0.1 } })]);
    assert.throws(() => importOnnxBuffer(m, { file: 'm.onnx' }), {
      name: 'OnnxImportError',
      message: "m.onnx: node '/act/LeakyRelu' (LeakyRelu): unsupported op 'LeakyRelu'",
    });
  });

  test('thinker (fixed-point) exports, custom domains, several inputs, undefined inputs, cycles, bad tensors', () => {
    const thinker = handMade([node('Quant', ['x'], ['y'], '/conv1/Quant', { data_bits: 8 }, 'thinker')], [], { domain: 'thinker' });
    assert.throws(() => importOnnxBuffer(thinker, { file: 't.onnx' }), {
      message: /node '\/conv1\/Quant' \(thinker::Quant\): ops of the 'thinker' domain are not supported.*thinker ops are fixed-point/,
    });
    const two = handMade([node('Add', ['x', 'z'], ['y'], 'add')], [], {
      inputs: [valueInfo('x', DT.FLOAT, [1, 4]), valueInfo('z', DT.FLOAT, [1, 4])],
    });
    assert.throws(() => importOnnxBuffer(two), { message: /the model has 2 inputs \(x, z\); importOnnx reads models with one input/ });
    const undef = handMade([node('Add', ['x', 'nowhere'], ['y'], 'add')]);
    assert.throws(() => importOnnxBuffer(undef), { message: /node 'add' \(Add\): input 'nowhere' is not defined/ });
    const cycle = handMade([node('Add', ['x', 'b'], ['a'], 'a'), node('Relu', ['a'], ['b'], 'b'), node('Identity', ['a'], ['y'], 'c')]);
    assert.throws(() => importOnnxBuffer(cycle), { message: /the graph has a cycle/ });
    const bad = handMade(
      [node('Add', ['x', 'w'], ['y'], 'add')],
      [{ name: 'w', dims: [1, 4], dataType: DT.FLOAT, rawData: new Uint8Array(7) }],
    );
    assert.throws(() => importOnnxBuffer(bad), { message: /initializer 'w': raw data has 7 bytes, dims \[1, 4\] of FLOAT need 16/ });
    const convNoW = handMade([node('Conv', ['x', 'x'], ['y'], '/c/Conv')]);
    assert.throws(() => importOnnxBuffer(convNoW), {
      message: /node '\/c\/Conv' \(Conv\): a convolution with a computed weight or bias is not supported/,
    });
    const shapeBad = handMade([node('Reshape', ['x', 's'], ['y'], '/Reshape')], [tensorProto('s', [2], DT.INT64, [3, 5])]);
    assert.throws(() => importOnnxBuffer(shapeBad), { message: /node '\/Reshape' \(Reshape\): cannot reshape \[1, 4\]/ });
    const opset = handMade([node('Relu', ['x'], ['y'], 'r')], [], { opset: 5 });
    assert.throws(() => importOnnxBuffer(opset), { message: /opset 5 is not supported/ });
  });
});

// ---- fuzz ------------------------------------------------------------------------------------------

test('fuzz: 1,200 mutated model files (truncated, flipped bytes, bad lengths) are each a clean error or a model', (t) => {
  const bases = [
    'gemm_mlp.default',
    'view.preserve',
    'concat.default',
    'grouped_transpose.preserve',
    'resnet_block.default',
    'view.default',
  ].map((n) => new Uint8Array(fs.readFileSync(path.join(FIXTURES, `${n}.onnx`))));
  const rnd = prng(20261125);
  const int = (n: number) => Math.floor(rnd() * n);
  const counts = { error: 0, imported: 0 };
  const kinds = new Map<string, number>();
  const t0 = Date.now();
  let slowest = 0;
  for (let i = 0; i < 1200; i++) {
    const base = bases[i % bases.length];
    let b = new Uint8Array(base);
    const kind = i % 6;
    if (kind === 0)
      b = b.slice(0, int(b.length)); // truncation
    else if (kind === 1)
      for (let k = 1 + int(8); k > 0; k--) b[int(b.length)] = int(256); // flipped bytes
    else if (kind === 2) {
      // a length or varint blown up: 0xff… continuation bytes
      const at = int(b.length - 6);
      b.set([0xff, 0xff, 0xff, 0xff, 0x0f].slice(0, 1 + int(5)), at);
    } else if (kind === 3) {
      // a byte in the header region (field tags, lengths, dims)
      b[int(Math.min(b.length, 400))] ^= 1 << int(8);
    } else if (kind === 4) {
      // bytes removed from the middle
      const at = int(b.length),
        n = 1 + int(16);
      b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + n)]);
    } else {
      // random bytes inserted
      const at = int(b.length);
      b = Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: 1 + int(8) }, () => int(256)), ...b.subarray(at)]);
    }
    const t = Date.now();
    try {
      importOnnxBuffer(b, { file: `fuzz-${i}.onnx` });
      counts.imported++;
    } catch (e) {
      if (!(e instanceof OnnxImportError)) assert.fail(`case ${i} (kind ${kind}): not a clean error: ${(e as Error)?.stack ?? String(e)}`);
      assert.ok(e.message.startsWith(`fuzz-${i}.onnx: `), `case ${i}: the message names the file: ${e.message}`);
      counts.error++;
      const key = e.message
        .replace(/^fuzz-\d+\.onnx: /, '')
        .replace(/[0-9]+/g, 'N')
        .slice(0, 40);
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
    }
    slowest = Math.max(slowest, Date.now() - t);
  }
  assert.equal(counts.error + counts.imported, 1200);
  assert.ok(counts.error > 600, `most mutations are errors (${counts.error})`);
  assert.ok(slowest < 5000, `no case hangs (slowest ${slowest} ms)`);
  assert.ok(Date.now() - t0 < 90000);
  t.diagnostic(
    `${counts.error} clean errors (${kinds.size} kinds), ${counts.imported} still valid models, slowest case ${slowest} ms, total ${Date.now() - t0} ms`,
  );
});
