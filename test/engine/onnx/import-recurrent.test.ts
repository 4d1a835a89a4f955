// ONNX import of PyTorch's nn.LSTM / nn.GRU exports (scripts/golden/make_onnx_rnn_fixtures.py), in
// both export modes: outputs equal PyTorch's within 1e-4, the recurrent layers come back as one
// engine nn.LSTM / nn.GRU each at PyTorch's module path with its configuration, the state-dict keys
// and values are PyTorch's and PyTorch's state dict loads strict; unsupported variants are errors
// naming the node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { F, initBackend, nn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { importOnnx, importOnnxBuffer } from '../../../src/engine/onnx/index';
import { AttrValue, DT, encodeModel, node, onnx, tensorProto, valueInfo } from '../../../src/engine/onnx/proto';
import { diff, runSession, session, tempDir } from './ort';

before(async () => {
  await initBackend();
});
const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'onnx-rnn');
const dir = tempDir('import-rnn');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MODES = ['default', 'preserve'] as const;

interface Enc {
  shape: number[];
  data: number[];
}
interface RnnConfig {
  type: string;
  input_size: number;
  hidden_size: number;
  num_layers: number;
  bias: boolean;
  batch_first: boolean;
  bidirectional: boolean;
}
interface Fixture {
  name: string;
  opset: number;
  dynamic: number | null;
  input: Enc;
  output: Enc;
  modules: [string, string][];
  state_dict_keys: string[];
  state_dict: Record<string, Enc>;
  rnn: Record<string, RnnConfig>;
}
const fixtures: Fixture[] = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as Fixture);
const fileOf = (f: Fixture, mode: string) => path.join(FIXTURES, `${f.name}.${mode}.onnx`);
const toTensor = (e: Enc) => tensor(Float32Array.from(e.data), e.shape);
function run(m: nn.Module, x: Tensor): Float32Array {
  m.eval();
  return tidy(() => m(x) as Tensor).dataSync() as Float32Array;
}
const leafPaths = (m: nn.Module) =>
  [...m.namedModules()].filter(([p, x]) => p && x.typeName() !== 'OnnxScope').map(([p, x]) => [p, x.typeName()] as [string, string]);

test('the fixtures: five models with LSTM/GRU, each exported both ways', () => {
  assert.deepEqual(
    fixtures.map((f) => f.name),
    ['bilstm', 'gru_classifier', 'gru_h0', 'gru_stack', 'lstm_state'],
  );
  for (const f of fixtures) for (const mode of MODES) assert.ok(fs.existsSync(fileOf(f, mode)), `${f.name}.${mode}.onnx`);
  const configs = fixtures.flatMap((f) => Object.values(f.rnn));
  assert.ok(
    configs.some((c) => c.type === 'LSTM' && c.bidirectional && c.batch_first && c.num_layers === 2),
    'a 2-layer bidirectional batch_first LSTM',
  );
  assert.ok(
    configs.some((c) => c.type === 'GRU' && !c.bias && c.num_layers === 2),
    'a 2-layer GRU without bias',
  );
  assert.ok(
    configs.every((c) => c.hidden_size <= 16),
    'small',
  );
});

describe('import of PyTorch LSTM/GRU exports: outputs, modules, state dicts', () => {
  for (const f of fixtures) {
    for (const mode of MODES) {
      test(`${f.name} (${mode} export, opset ${f.opset})`, async () => {
        const m = await importOnnx(fileOf(f, mode));
        const x = toTensor(f.input);
        const y = run(m, x);
        assert.deepEqual((m(x) as Tensor).shape, f.output.shape);
        assert.ok(diff(y, f.output.data).maxAbs <= 1e-4, `max |engine − PyTorch| = ${diff(y, f.output.data).maxAbs}`);

        // the module tree: PyTorch's paths and classes, one real nn.LSTM/nn.GRU per recurrent module
        const torch = new Map(f.modules);
        for (const [p, t] of leafPaths(m)) assert.equal(torch.get(p), t, `imported ${t} at '${p}'`);
        for (const [p, c] of Object.entries(f.rnn)) {
          const r = m.getSubmodule(p);
          assert.ok(c.type === 'LSTM' ? r instanceof nn.LSTM : r instanceof nn.GRU, `${p} is an nn.${c.type}, got ${r.typeName()}`);
          const rr = r as nn.LSTM | nn.GRU;
          assert.deepEqual(
            {
              inputSize: rr.inputSize,
              hiddenSize: rr.hiddenSize,
              numLayers: rr.numLayers,
              bias: rr.bias,
              batchFirst: rr.batchFirst,
              bidirectional: rr.bidirectional,
            },
            {
              inputSize: c.input_size,
              hiddenSize: c.hidden_size,
              numLayers: c.num_layers,
              bias: c.bias,
              batchFirst: c.batch_first,
              bidirectional: c.bidirectional,
            },
            p,
          );
        }

        // state dict: PyTorch's keys and values (gate rows back in PyTorch's order)
        const sd = m.stateDict();
        assert.deepEqual(Object.keys(sd), f.state_dict_keys);
        for (const [k, v] of Object.entries(f.state_dict)) {
          assert.deepEqual(sd[k].shape, v.shape, k);
          assert.ok(diff(sd[k].dataSync(), v.data).maxAbs <= 1e-7, `${k} differs from PyTorch's`);
        }

        // PyTorch's state dict loads strict: scramble the weights, load it, the outputs are PyTorch's again
        const scrambled = Object.fromEntries(
          Object.entries(f.state_dict).map(([k, v]) => [
            k,
            tensor(
              Float32Array.from(v.data, (z, i) => Math.cos(i + z)),
              v.shape,
            ),
          ]),
        );
        m.loadStateDict(scrambled, { strict: true });
        assert.ok(diff(run(m, x), f.output.data).maxAbs > 1e-3, 'the scrambled weights change the output');
        const res = m.loadStateDict(Object.fromEntries(Object.entries(f.state_dict).map(([k, v]) => [k, toTensor(v)])), { strict: true });
        assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
        assert.ok(diff(run(m, x), f.output.data).maxAbs <= 1e-4, "PyTorch's state dict gives PyTorch's output");

        if (f.dynamic !== null) {
          // the batch is free: [x; x] gives [y; y] (batch on axis `dynamic`)
          const x2 = F.cat([x, x], f.dynamic);
          const y2 = run(m, x2);
          const want = F.cat([toTensor(f.output), toTensor(f.output)], f.dynamic).dataSync();
          assert.ok(diff(y2, want).maxAbs <= 1e-4, `batch ${2 * f.input.shape[f.dynamic]}`);
        }
      });
    }
  }

  test("the imported module computes like a fresh engine module with PyTorch's weights", async () => {
    const f = fixtures.find((x) => x.name === 'bilstm')!;
    const m = await importOnnx(fileOf(f, 'default'));
    const fresh = new nn.LSTM(5, 4, { numLayers: 2, bidirectional: true, batchFirst: true });
    fresh.loadStateDict(
      Object.fromEntries(
        Object.entries(f.state_dict)
          .filter(([k]) => k.startsWith('rnn.'))
          .map(([k, v]) => [k.slice(4), toTensor(v)]),
      ),
      { strict: true },
    );
    fresh.eval();
    const x = toTensor(f.input);
    const [a, [ha, ca]] = (m.getSubmodule('rnn') as nn.LSTM)(x) as [Tensor, [Tensor, Tensor]];
    const [b, [hb, cb]] = fresh(x);
    for (const [p, q] of [
      [a, b],
      [ha, hb],
      [ca, cb],
    ])
      assert.ok(diff(p.dataSync(), q.dataSync()).maxAbs <= 1e-6);
  });
});

// ---- hand-built graphs: against onnxruntime, and errors ------------------------------------------

const f32 = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.37) * 0.5);

/** x [T=4, B=2, I=3] → one LSTM/GRU node (H=5) → Y_h [D, 2, 5] as the output. */
function rnnModel(
  op: 'LSTM' | 'GRU',
  opts: {
    attrs?: Record<string, AttrValue>;
    activations?: string[];
    extraInputs?: string[];
    inits?: onnx.ITensorProto[];
    D?: number;
    wShape?: number[];
    computedW?: boolean;
  } = {},
): Uint8Array {
  const D = opts.D ?? 1,
    G = op === 'LSTM' ? 4 : 3,
    H = 5,
    I = 3;
  const wShape = opts.wShape ?? [D, G * H, I];
  const inits = [
    tensorProto(
      'W',
      wShape,
      DT.FLOAT,
      f32(
        wShape.reduce((a, b) => a * b, 1),
        1,
      ),
    ),
    tensorProto('R', [D, G * H, H], DT.FLOAT, f32(D * G * H * H, 2)),
    tensorProto('B', [D, 2 * G * H], DT.FLOAT, f32(D * 2 * G * H, 3)),
    ...(opts.inits ?? []),
  ];
  const attrs = {
    hidden_size: H,
    ...(op === 'GRU' ? { linear_before_reset: 1 } : {}),
    ...(D === 2 ? { direction: 'bidirectional' } : {}),
    ...(opts.attrs ?? {}),
  };
  const rnn = node(
    op,
    ['x', opts.computedW ? 'Wx' : 'W', 'R', 'B', ...(opts.extraInputs ?? [])],
    ['Y', 'y'],
    `/rnn/${op}`,
    attrs as Record<string, AttrValue>,
  );
  // a list of strings (activations) is written as the raw attribute
  if (opts.activations)
    rnn.attribute!.push({ name: 'activations', type: 8, strings: opts.activations.map((a) => new TextEncoder().encode(a)) });
  const nodes = [...(opts.computedW ? [node('Mul', ['x', 'x'], ['Wx'], '/rnn/Mul')] : []), rnn];
  return encodeModel({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 14 }],
    graph: {
      name: 'g',
      node: nodes,
      initializer: inits,
      input: [valueInfo('x', DT.FLOAT, [4, 2, I])],
      output: [valueInfo('y', DT.FLOAT, [D, 2, H])],
    },
  });
}

describe('hand-built LSTM/GRU nodes', () => {
  for (const [op, D] of [
    ['LSTM', 1],
    ['LSTM', 2],
    ['GRU', 1],
    ['GRU', 2],
  ] as const) {
    test(`${op} ${D === 2 ? 'bidirectional' : 'forward'}: Y_h equals onnxruntime's (ONNX gate order read correctly)`, async () => {
      const file = path.join(dir, `hand-${op}-${D}.onnx`);
      fs.writeFileSync(file, rnnModel(op, { D }));
      const m = await importOnnx(file);
      const x = tensor(f32(24, 9), [4, 2, 3]);
      const want = await runSession(await session(file), x);
      const got = run(m, x);
      assert.ok(diff(got, want).maxAbs <= 1e-5, `max |engine − onnxruntime| = ${diff(got, want).maxAbs}`);
      const r = m.getSubmodule('rnn') as nn.LSTM;
      assert.equal(r.typeName(), op);
      assert.equal(r.bidirectional, D === 2);
    });
  }

  test('unsupported variants and malformed nodes are errors naming the node', () => {
    const bad = (bytes: Uint8Array, re: RegExp) =>
      assert.throws(() => importOnnxBuffer(bytes, { file: 'r.onnx' }), { name: 'OnnxImportError', message: re });
    bad(
      rnnModel('LSTM', { attrs: { clip: { float: 3 } } }),
      /^r\.onnx: node '\/rnn\/LSTM' \(LSTM\): the 'clip' attribute is not supported/,
    );
    bad(
      rnnModel('LSTM', { activations: ['Sigmoid', 'Relu', 'Tanh'] }),
      /node '\/rnn\/LSTM' \(LSTM\): activations \[Sigmoid, Relu, Tanh\] are not supported/,
    );
    bad(
      rnnModel('LSTM', { extraInputs: ['', '', '', 'P'], inits: [tensorProto('P', [1, 15], DT.FLOAT, f32(15, 4))] }),
      /node '\/rnn\/LSTM' \(LSTM\): peepholes \(input P\) are not supported/,
    );
    bad(
      rnnModel('GRU', { extraInputs: ['lens'], inits: [tensorProto('lens', [2], DT.INT32, [4, 4])] }),
      /node '\/rnn\/GRU' \(GRU\): sequence_lens is not supported/,
    );
    bad(rnnModel('GRU', { attrs: { linear_before_reset: 0 } }), /node '\/rnn\/GRU' \(GRU\): linear_before_reset=0 is not supported/);
    bad(rnnModel('GRU', { attrs: { direction: 'reverse' } }), /node '\/rnn\/GRU' \(GRU\): direction 'reverse' is not supported/);
    bad(rnnModel('LSTM', { attrs: { input_forget: 1 } }), /node '\/rnn\/LSTM' \(LSTM\): input_forget=1/);
    bad(rnnModel('LSTM', { attrs: { layout: 1 } }), /node '\/rnn\/LSTM' \(LSTM\): layout=1/);
    bad(rnnModel('LSTM', { wShape: [1, 16, 3] }), /node '\/rnn\/LSTM' \(LSTM\): W has shape \[1, 16, 3\], expected \[1, 20, input_size\]/);
    bad(rnnModel('GRU', { attrs: { hidden_size: 4 } }), /node '\/rnn\/GRU' \(GRU\): W has shape/);
    bad(rnnModel('GRU', { computedW: true }), /node '\/rnn\/GRU' \(GRU\): W must be a constant/);
  });
});
