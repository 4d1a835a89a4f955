// nn.LSTM and nn.GRU against PyTorch: outputs, final states, the gradients w.r.t. the input, the
// initial states and every parameter, PyTorch state dicts loading strict, and the printed module.
// Golden values: scripts/golden/make_rnn_fixtures.py (PyTorch 1.13). Runs on wasm in the engine
// suite and again on the cpu backend (npm test's parity run).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { F, initBackend, nn, Tensor } from '../../src/engine/index';
import { tf } from '../../src/engine/backend/tf';
import { assertClose, Fixture, FixtureDict, loadCases, toStateDict } from './golden';

interface RnnCase {
  name: string;
  layer: 'LSTM' | 'GRU';
  args: [number, number];
  kwargs: Record<string, unknown>;
  state: FixtureDict;
  x: Fixture;
  h0?: Fixture;
  c0?: Fixture;
  g: Fixture;
  gh: Fixture;
  gc?: Fixture;
  y: Fixture;
  hn: Fixture;
  cn?: Fixture;
  grads: FixtureDict;
  repr: string;
}

before(async () => {
  await initBackend(process.env.LINGER_BACKEND);
});

const camel = (s: string) => s.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
const fixed = (f: Fixture) => tf.tensor(Float32Array.from(f.data), f.shape);

for (const c of loadCases<RnnCase>('rnn')) {
  test(`${c.layer} ${c.name}`, () => {
    const opts = Object.fromEntries(Object.entries(c.kwargs).map(([k, v]) => [camel(k), v]));
    const layer = c.layer === 'LSTM' ? new nn.LSTM(c.args[0], c.args[1], opts) : new nn.GRU(c.args[0], c.args[1], opts);
    assert.equal(layer.toString(), c.repr, 'printed as PyTorch prints it');
    layer.loadStateDict(toStateDict(c.state), { strict: true });
    assert.deepEqual(Object.keys(layer.stateDict()), Object.keys(c.state), "PyTorch's keys, in its order");
    // inputs as trainable variables, so their gradients come back too
    const x = new nn.Parameter(fixed(c.x));
    const h0 = c.h0 ? new nn.Parameter(fixed(c.h0)) : undefined;
    const c0 = c.c0 ? new nn.Parameter(fixed(c.c0)) : undefined;
    const params = layer.namedParameters();
    const inputs: [string, nn.Parameter][] = [
      ['x', x],
      ...(h0 ? [['h0', h0] as [string, nn.Parameter]] : []),
      ...(c0 ? [['c0', c0] as [string, nn.Parameter]] : []),
    ];
    const out: Record<string, { data: Float32Array; shape: number[] }> = {};
    const keep = (k: string, t: Tensor) => {
      out[k] = { data: t.dataSync() as Float32Array, shape: t.shape };
    };
    const { grads } = tf.variableGrads(() => {
      let y: Tensor, hn: Tensor, cn: Tensor | undefined;
      if (layer instanceof nn.LSTM) [y, [hn, cn]] = layer(x, h0 && c0 ? [h0, c0] : undefined);
      else [y, hn] = (layer as nn.GRU)(x, h0);
      keep('y', y);
      keep('hn', hn);
      let loss = tf.add(tf.sum(tf.mul(y.logical(), fixed(c.g))), tf.sum(tf.mul(hn.logical(), fixed(c.gh))));
      if (cn) {
        keep('cn', cn);
        loss = tf.add(loss, tf.sum(tf.mul(cn.logical(), fixed(c.gc!))));
      }
      return loss as tf.Scalar;
    }, [...inputs.map(([, p]) => p.variable), ...params.map(([, p]) => p.variable)]);
    assertClose(out.y.data, out.y.shape, c.y, 'output');
    assertClose(out.hn.data, out.hn.shape, c.hn, 'h_n');
    if (c.cn) assertClose(out.cn.data, out.cn.shape, c.cn, 'c_n');
    assert.deepEqual(
      params.map(([k]) => k).sort(),
      Object.keys(c.grads)
        .filter((k) => !['x', 'h0', 'c0'].includes(k))
        .sort(),
    );
    for (const [k, p] of [...inputs, ...params]) {
      const g = grads[p.variable.name];
      assert.ok(g, `no gradient for ${k}`);
      const t = new Tensor(g, p.perm);
      assertClose(t.dataSync(), t.shape, c.grads[k], `grad ${k}`);
    }
  });
}

test('LSTM/GRU: wrong input or state shapes are errors that say what was expected', () => {
  const lstm = new nn.LSTM(5, 4, { batchFirst: true });
  assert.throws(
    () => lstm(new Tensor(tf.zeros([2, 3, 6]))),
    /LSTM at the root module: expected input \[batch, seq, input_size\] or unbatched \[seq, input_size\] with input_size=5, got \[2, 3, 6\]/,
  );
  const gru = new nn.GRU(5, 4, { numLayers: 2 });
  assert.throws(
    () => gru(new Tensor(tf.zeros([3, 2, 5])), new Tensor(tf.zeros([1, 2, 4]))),
    /expected h_0 of shape \[2, 2, 4\], got \[1, 2, 4\]/,
  );
});

interface SeqCase {
  name: string;
  layer: 'LayerNorm' | 'Embedding' | 'F.bmm';
  args: unknown[];
  kwargs: Record<string, unknown>;
  state: FixtureDict;
  x: Fixture;
  x2?: Fixture;
  g: Fixture;
  y: Fixture;
  grads: FixtureDict;
  repr: string;
}

for (const c of loadCases<SeqCase>('sequence')) {
  if (c.layer === 'F.bmm') {
    test('F.bmm bmm', () => {
      const a = new nn.Parameter(fixed(c.x)),
        b = new nn.Parameter(fixed(c.x2!));
      let y!: { data: Float32Array; shape: number[] };
      const { grads } = tf.variableGrads(() => {
        const out = F.bmm(a, b);
        y = { data: out.dataSync() as Float32Array, shape: out.shape };
        return tf.sum(tf.mul(out.logical(), fixed(c.g))) as tf.Scalar;
      }, [a.variable, b.variable]);
      assertClose(y.data, y.shape, c.y, 'output');
      assertClose(grads[a.variable.name].dataSync(), a.shape, c.grads.x, 'grad a');
      assertClose(grads[b.variable.name].dataSync(), b.shape, c.grads.x2, 'grad b');
    });
    continue;
  }
  test(`${c.layer} ${c.name}`, () => {
    const opts = Object.fromEntries(Object.entries(c.kwargs).map(([k, v]) => [camel(k), v]));
    const layer =
      c.layer === 'LayerNorm'
        ? new nn.LayerNorm(c.args[0] as number | number[], opts)
        : new nn.Embedding(c.args[0] as number, c.args[1] as number, opts);
    assert.equal(layer.toString(), c.repr, 'printed as PyTorch prints it');
    layer.loadStateDict(toStateDict(c.state), { strict: true });
    const isIdx = c.x.dtype === 'int64';
    const x = isIdx ? null : new nn.Parameter(fixed(c.x));
    const idx = isIdx ? new Tensor(tf.tensor(Int32Array.from(c.x.data), c.x.shape, 'int32')) : null;
    const params = layer.namedParameters();
    let y!: { data: Float32Array; shape: number[] };
    const { grads } = tf.variableGrads(() => {
      const out = layer((x ?? idx)!) as Tensor;
      y = { data: out.dataSync() as Float32Array, shape: out.shape };
      return tf.sum(tf.mul(out.logical(), fixed(c.g))) as tf.Scalar;
    }, [...(x ? [x.variable] : []), ...params.map(([, p]) => p.variable)]);
    assertClose(y.data, y.shape, c.y, 'output');
    for (const [k, p] of [...(x ? [['x', x] as [string, nn.Parameter]] : []), ...params]) {
      const g = grads[p.variable.name];
      assert.ok(g, `no gradient for ${k}`);
      assertClose(new Tensor(g, p.perm).dataSync(), p.shape, c.grads[k], `grad ${k}`);
    }
  });
}

test('Embedding: float or out-of-range indices are errors that say so', () => {
  const e = new nn.Embedding(4, 2);
  assert.throws(() => e(new Tensor(tf.zeros([2]))), /expected int32 indices, got float32/);
  assert.throws(() => e(new Tensor(tf.tensor([1, 4], [2], 'int32'))), /index 4 is out of range for 4 embeddings/);
});
