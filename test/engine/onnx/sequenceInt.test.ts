// ONNX export of LayerNormInt, EmbeddingInt and BmmInt: the 'qdq' dialect bit-exact with the
// engine's integer eval in onnxruntime (default options and every optimization level), and the
// 'thinker' dialect's ops and linger's attribute names.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { F, initBackend, linger, manualSeed, nn, optim, randn, tensor, Tensor, tidy } from '../../../src/engine/index';
import { exportOnnx } from '../../../src/engine/onnx/index';
import { onnx } from '../../../src/engine/onnx/proto';
import { diff, session, tempDir } from './ort';

before(async () => {
  await initBackend();
});
const dir = tempDir('seqint');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const LEVELS = [undefined, 'disabled', 'basic', 'extended', 'all'] as const;

const ids = (shape: number[], n: number, seed = 7) =>
  tensor(
    Int32Array.from({ length: shape.reduce((a, v) => a * v, 1) }, (_, i) => (i * seed + 3) % n),
    shape,
    'int32',
  );

async function run(s: ort.InferenceSession, x: Tensor): Promise<Float32Array> {
  const feed =
    x.dtype === 'int32'
      ? new ort.Tensor('int32', x.dataSync() as Int32Array, x.shape)
      : new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape);
  const r = await s.run({ [s.inputNames[0]]: feed });
  return r[s.outputNames[0]].data as Float32Array;
}
/** Bit-for-bit parity at every optimization level; returns equal/total over all runs. */
async function qdqParity(m: nn.Module, dummy: Tensor, xs: Tensor[], name: string): Promise<{ equal: number; total: number }> {
  const file = path.join(dir, `${name}.onnx`);
  await exportOnnx(m, dummy, file);
  m.eval();
  let equal = 0,
    total = 0;
  for (const level of LEVELS) {
    const s = await session(file, level);
    for (const x of xs) {
      const want = tidy(() => m(x) as Tensor).dataSync();
      const d = diff(want, await run(s, x));
      equal += Math.round(d.equalFraction * d.n);
      total += d.n;
      assert.equal(
        d.equalFraction,
        1,
        `${name} (${level ?? 'default options'}): ${(d.equalFraction * 100).toFixed(3)}% equal, max diff ${d.maxAbs}`,
      );
    }
  }
  console.log(`# ${name}: ${equal}/${total} equal`);
  return { equal, total };
}
const opTypes = (file: string) =>
  onnx.ModelProto.decode(fs.readFileSync(file)).graph!.node!.map((n) => `${n.domain ? n.domain + '::' : ''}${n.opType}`);

class Inner extends nn.Module {
  proj = new nn.Linear(8, 8);
  forward(h: Tensor): Tensor {
    return F.bmm(this.proj(h), h.permute([0, 2, 1]));
  }
}
class Net extends nn.Module {
  emb = new nn.Embedding(20, 8, { paddingIdx: 0 });
  ln = new nn.LayerNorm(8);
  inner = new Inner();
  forward(idx: Tensor): Tensor {
    const h = this.ln(this.emb(idx));
    return F.bmm(this.inner(h), h);
  }
}
function trainedNet(seed: number): Net {
  manualSeed(seed);
  const m = new Net();
  linger.traceLayers(m, m, ids([2, 5], 20));
  linger.init(m, { quantModules: ['LayerNorm', 'Embedding'], bmm: true });
  const opt = new optim.SGD(m.parameters(), { lr: 0.05 });
  for (let i = 0; i < 3; i++)
    opt.step(() => {
      const y = m(ids([4, 5], 20, 3 + 2 * i)) as Tensor;
      return y.mul(y).mean();
    });
  linger.calibrate(
    m,
    Array.from({ length: 10 }, (_, i) => ids([4, 5], 20, 3 + i)),
  );
  return m;
}

/** Float input → Linear → LayerNormInt over [16, 64] (D passes 2^31). */
class LnNet extends nn.Module {
  fc = new nn.Linear(64, 64);
  ln: nn.Module;
  constructor(shape: number[]) {
    super();
    this.ln = new nn.LayerNorm(shape);
  }
  forward(x: Tensor): Tensor {
    return this.ln(this.fc(x));
  }
}
/** Float input [b, 3, 2048]: x·xᵀ with an inner dimension past the 2^24 bound (MatMulInteger). */
class Gram extends nn.Module {
  id = new nn.Identity(); // a child: a module without children is a leaf, whose ops the graph does not record
  forward(x: Tensor): Tensor {
    const y = this.id(x);
    return F.bmm(y, y.permute([0, 2, 1]));
  }
}

describe("fixed stage, 'qdq' dialect: bit-exact in onnxruntime", () => {
  test('Embedding → LayerNorm → Linear with two bmms (int32 index input)', async () => {
    const m = trainedNet(1);
    const file = path.join(dir, 'net-types.onnx');
    await exportOnnx(m, ids([2, 5], 20), file);
    const types = opTypes(file);
    assert.ok(types.includes('Gather') && types.includes('Where') && types.includes('Mod') && types.includes('MatMul'));
    assert.ok(!types.some((t) => t.startsWith('thinker::')), 'standard ops only');
    const r = await qdqParity(m, ids([2, 5], 20), [ids([2, 5], 20, 11), ids([7, 5], 20, 13), ids([3, 5], 20, 17)], 'net');
    assert.equal(r.equal, r.total);
  });

  test('LayerNormInt over 1024 features (D past 2^31, int64 core) after a LinearInt', async () => {
    manualSeed(2);
    const m = new LnNet([16, 64]);
    linger.traceLayers(m, m, randn([1, 16, 64]));
    linger.init(m, { quantModules: ['LayerNorm'] });
    linger.calibrate(
      m,
      Array.from({ length: 5 }, () => randn([4, 16, 64]).mul(3)),
    );
    const r = await qdqParity(m, randn([1, 16, 64]), [randn([3, 16, 64]).mul(3), randn([2, 16, 64])], 'layernorm-1024');
    assert.equal(r.equal, r.total);
  });

  test('LayerNormInt with 16-bit data and output over 4096 features (D past 2^53)', async () => {
    manualSeed(3);
    const m = new nn.Sequential(new nn.LayerNorm(4096));
    linger.quantModule(m.at(0), { dataBits: 16, outBits: 16 });
    linger.traceLayers(m, m, randn([1, 4096]));
    linger.init(m, { quantModules: ['LayerNorm'] });
    linger.calibrate(m, [randn([2, 4096]).mul(4)]);
    const r = await qdqParity(m, randn([1, 4096]), [randn([2, 4096]).mul(4)], 'layernorm-16bit');
    assert.equal(r.equal, r.total);
  });

  test('BmmInt with float operands and an inner dimension of 2048 (MatMulInteger)', async () => {
    manualSeed(4);
    const m = new Gram();
    linger.traceLayers(m, m, randn([1, 3, 2048]));
    linger.init(m, { bmm: true });
    linger.calibrate(m, [randn([2, 3, 2048])]);
    const file = path.join(dir, 'gram-types.onnx');
    await exportOnnx(m, randn([1, 3, 2048]), file);
    assert.ok(opTypes(file).includes('MatMulInteger'));
    const r = await qdqParity(m, randn([1, 3, 2048]), [randn([2, 3, 2048]), randn([4, 3, 2048]).mul(0.5)], 'bmm-2048');
    assert.equal(r.equal, r.total);
  });
});

describe("fixed stage, 'thinker' dialect", () => {
  test("thinker::Gather, LayerNormInt, LinearInt, BmmInt with linger's attribute names", async () => {
    const m = trainedNet(5);
    const file = path.join(dir, 'net-thinker.onnx');
    await exportOnnx(m, ids([2, 5], 20), file, { dialect: 'thinker' });
    const g = onnx.ModelProto.decode(fs.readFileSync(file)).graph!;
    const nodes = g.node!;
    assert.deepEqual(
      nodes.map((n) => `${n.domain ? n.domain + '::' : ''}${n.opType}`),
      [
        'thinker::Gather',
        'thinker::LayerNormInt',
        'thinker::LinearInt',
        'Transpose',
        'thinker::BmmInt',
        'thinker::BmmInt',
        'thinker::Dequant',
      ],
    );
    const attrs = (n: onnx.INodeProto) => Object.fromEntries(n.attribute!.map((a) => [a.name!, a]));
    const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
    const sd = m.stateDict();
    const str = (a: onnx.IAttributeProto) => new TextDecoder().decode(a.s!);

    const gather = nodes[0];
    assert.deepEqual(Object.keys(attrs(gather)).sort(), ['o_bits', 'parameter_bits', 'platform_quant', 'scale_o', 'scale_w']);
    assert.equal(attrs(gather).scale_w.f, sd['emb.scale_w'].item());
    assert.equal(attrs(gather).scale_o.f, sd['emb.scale_w'].item());
    assert.equal(inits.get(gather.input![0])!.dataType, 3, 'int8 table');
    assert.equal(gather.input![1], g.input![0].name, 'indices straight from the graph input');
    assert.equal(g.input![0].type!.tensorType!.elemType, 6, 'int32 indices');

    const ln = nodes[1];
    const la = attrs(ln);
    assert.deepEqual(Object.keys(la).sort(), ['data_bits', 'o_bits', 'parameter_bits', 'platform_quant', 'scale_o', 'scale_w', 'scale_x']);
    assert.deepEqual([Number(la.data_bits.i), Number(la.parameter_bits.i), Number(la.o_bits.i)], [8, 16, 8]);
    assert.deepEqual(
      [la.scale_x.f, la.scale_w.f, la.scale_o.f],
      [sd['ln.scale_x'].item(), sd['ln.scale_w'].item(), sd['ln.scale_o'].item()],
    );
    assert.equal(str(la.platform_quant), 'luna_quant');
    assert.equal(ln.input![0], gather.output![0], 'the Gather codes feed LayerNormInt without a Quant');
    assert.equal(inits.get(ln.input![1])!.dataType, 5, 'int16 weight');
    assert.equal(inits.get(ln.input![2])!.dataType, 6, 'int32 bias');

    // linger's names: the inner module's bmm, then the root's
    for (const [i, k] of [
      [4, 'inner._linger_round_tensor_function_bmm_0'],
      [5, '_linger_round_tensor_function_bmm_0'],
    ] as const) {
      const a = attrs(nodes[i]);
      assert.deepEqual(Object.keys(a).sort(), ['data_bits', 'o_bits', 'platform_quant', 'scale_o', 'scale_x', 'scale_y']);
      assert.equal(a.scale_y.f, sd[`${k}.scale_y`].item());
      assert.equal(a.scale_x.f, sd[`${k}.scale_x`].item());
      assert.equal(a.scale_o.f, sd[`${k}.scale_o`].item());
      assert.equal(Number(a.data_bits.i), 8);
      assert.equal(Number(a.o_bits.i), 8);
    }
  });
});
