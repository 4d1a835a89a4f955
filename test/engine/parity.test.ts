// Layer numerics against PyTorch: forward values, gradients of sum(y·g) w.r.t. the input and every
// parameter, BatchNorm running statistics, and two SGD steps of a small CNN. The golden values are
// made by scripts/golden/make_fixtures.py (PyTorch 1.13) and live in test/fixtures/golden/.
//
//   LINGER_BACKEND=wasm node --import tsx --test test/engine/parity.test.ts
//   LINGER_BACKEND=cpu  node --import tsx --test test/engine/parity.test.ts
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nn, F, optim, tensor, Tensor, initBackend } from '../../src/engine/index';
import { tf } from '../../src/engine/backend/tf';

// ---- fixtures -------------------------------------------------------------------------------------
interface Fixture { shape: number[]; data: number[]; dtype?: 'int64' }
type FixtureDict = Record<string, Fixture>;

interface LayerCase {
  name: string;
  layer: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  mode: 'train' | 'eval';
  state: FixtureDict;
  x: Fixture;
  g: Fixture;
  target?: Fixture;
  y: Fixture;
  grads: FixtureDict;
  state_after?: FixtureDict;
}

interface CnnSgdCase {
  name: string;
  sgd: { lr: number; momentum: number };
  state: FixtureDict;
  x: Fixture;
  target: Fixture;
  steps: { loss: number; state_after: FixtureDict }[];
}

const GOLDEN = join(__dirname, '..', 'fixtures', 'golden');
function loadCases<T>(family: string): T[] {
  return (JSON.parse(readFileSync(join(GOLDEN, `${family}.json`), 'utf8')) as { cases: T[] }).cases;
}

/** A fixture as an engine tensor (PyTorch's int64 as int32, like the engine's state dicts). */
function toTensor(f: Fixture): Tensor {
  return f.dtype === 'int64' ? tensor(Int32Array.from(f.data), f.shape, 'int32') : tensor(Float32Array.from(f.data), f.shape);
}
function toStateDict(sd: FixtureDict): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, toTensor(v)]));
}

// ---- comparison -----------------------------------------------------------------------------------
const RTOL = 1e-4;

function multiIndex(flat: number, shape: number[]): string {
  const idx: number[] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    idx.unshift(flat % shape[i]);
    flat = Math.floor(flat / shape[i]);
  }
  return `[${idx.join(', ')}]`;
}

/** Element-wise |a − b| ≤ RTOL·max(1, |b|); on failure names the worst element. */
function assertClose(actual: ArrayLike<number>, actualShape: number[], expected: Fixture, what: string): void {
  assert.deepEqual(actualShape, expected.shape, `${what}: shape [${actualShape.join(', ')}], PyTorch [${expected.shape.join(', ')}]`);
  assert.equal(actual.length, expected.data.length, `${what}: ${actual.length} values, PyTorch ${expected.data.length}`);
  let worst = -1;
  let worstRatio = 0;
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const b = Math.fround(expected.data[i]);
    const ratio = Number.isFinite(a) ? Math.abs(a - b) / (RTOL * Math.max(1, Math.abs(b))) : Infinity;
    if (ratio > 1) bad++;
    if (ratio > worstRatio || worst < 0) {
      worst = i;
      worstRatio = ratio;
    }
  }
  if (bad > 0) {
    const a = actual[worst];
    const b = Math.fround(expected.data[worst]);
    assert.fail(`${what}: ${bad} of ${actual.length} values out of tolerance; worst at ${multiIndex(worst, expected.shape)}: ` +
      `engine ${a}, PyTorch ${b} (|diff| ${Math.abs(a - b).toExponential(3)} > ${(RTOL * Math.max(1, Math.abs(b))).toExponential(3)})`);
  }
}

/** Compares every entry of a fixture state dict with the module's (num_batches_tracked exactly). */
function assertStateDict(model: nn.Module, expected: FixtureDict, what: string): void {
  const sd = model.stateDict();
  for (const [k, e] of Object.entries(expected)) {
    const t = sd[k];
    assert.ok(t, `${what}: the model has no state '${k}'`);
    if (e.dtype === 'int64') assert.deepEqual(Array.from(t.dataSync()), e.data, `${what} ${k}`);
    else assertClose(t.dataSync(), t.shape, e, `${what} ${k}`);
  }
}

// ---- building layers from PyTorch's constructor arguments ---------------------------------------
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ModuleClass = new (...args: any[]) => nn.Module;
const MODULES: Record<string, ModuleClass> = {
  Conv2d: nn.Conv2d, ConvTranspose2d: nn.ConvTranspose2d, Conv1d: nn.Conv1d,
  BatchNorm2d: nn.BatchNorm2d, BatchNorm1d: nn.BatchNorm1d, Linear: nn.Linear,
  ReLU: nn.ReLU, ReLU6: nn.ReLU6, Sigmoid: nn.Sigmoid, Tanh: nn.Tanh,
  MaxPool2d: nn.MaxPool2d, AvgPool2d: nn.AvgPool2d, AdaptiveAvgPool2d: nn.AdaptiveAvgPool2d,
  Flatten: nn.Flatten,
};
const FUNCTIONAL: Record<string, (x: Tensor, c: LayerCase) => Tensor> = {
  'F.softmax': (x, c) => F.softmax(x, c.kwargs.dim as number),
  'F.log_softmax': (x, c) => F.logSoftmax(x, c.kwargs.dim as number),
  'F.cross_entropy': (x, c) => F.crossEntropy(x, toTensor(c.target!)),
};

const camel = (s: string) => s.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());

/** `new nn.Conv2d(3, 4, 3, { padding: 1 })` from args [3, 4, 3] and kwargs { padding: 1 }. */
function buildLayer(c: LayerCase): nn.Module {
  const cls = MODULES[c.layer];
  assert.ok(cls, `no engine layer for ${c.layer}`);
  const opts = Object.fromEntries(Object.entries(c.kwargs).map(([k, v]) => [camel(k), v]));
  const layer = Object.keys(opts).length ? new cls(...c.args, opts) : new cls(...c.args);
  layer.loadStateDict(toStateDict(c.state));
  return c.mode === 'train' ? layer.train() : layer.eval();
}

// ---- running a case --------------------------------------------------------------------------------
/** Channels-last physical layout of an activation (what a preceding conv hands on), if any. */
function channelsLast(rank: number): number[] | null {
  return rank === 4 ? [0, 3, 1, 2] : rank === 3 ? [0, 2, 1] : null;
}

/** The input as a trainable Parameter stored in `perm` layout, so dL/dx comes back too. */
function inputParameter(x: Fixture, perm: number[] | null): nn.Parameter {
  const logical = tf.tensor(Float32Array.from(x.data), x.shape);
  if (!perm) return new nn.Parameter(logical);
  const inv = perm.map((_, i) => perm.indexOf(i));
  const phys = tf.transpose(logical, inv);
  logical.dispose();
  return new nn.Parameter(phys, perm);
}

/** Forward and backward of one case with the input in the given layout; checks y, grads, state. */
function checkLayerCase(c: LayerCase, perm: number[] | null): void {
  const where = `${c.name} (input ${perm ? 'channels-last' : 'NCHW'})`;
  const fn = FUNCTIONAL[c.layer] as ((x: Tensor, c: LayerCase) => Tensor) | undefined;
  const layer = fn ? null : buildLayer(c);
  const forward = (x: Tensor): Tensor => (fn ? fn(x, c) : layer!(x));
  const xp = inputParameter(c.x, perm);
  const params = layer?.namedParameters() ?? [];
  const g = tf.tensor(Float32Array.from(c.g.data), c.g.shape);
  let y: { data: Float32Array | Int32Array; shape: number[] } | undefined;
  try {
    const { value, grads } = tf.variableGrads(() => {
      const out = forward(xp);
      y = { data: out.dataSync(), shape: out.shape };
      return tf.sum(tf.mul(out.logical(), g)) as tf.Scalar;
    }, [xp.variable, ...params.map(([, p]) => p.variable)]);

    assertClose(y!.data, y!.shape, c.y, `${where}: output`);
    const gradOf = (p: nn.Parameter, what: string) => {
      const gr = grads[p.variable.name];
      assert.ok(gr, `${where}: no gradient for ${what}`);
      const t = new Tensor(gr, p.perm);
      assertClose(t.dataSync(), t.shape, c.grads[what], `${where}: grad ${what}`);
    };
    gradOf(xp, 'x');
    assert.deepEqual(params.map(([k]) => k).sort(), Object.keys(c.grads).filter((k) => k !== 'x').sort(),
      `${where}: the engine's parameters differ from PyTorch's`);
    for (const [k, p] of params) gradOf(p, k);
    if (c.state_after) assertStateDict(layer!, c.state_after, `${where}: after forward,`);

    value.dispose();
    Object.values(grads).forEach((t) => t.dispose());
  } finally {
    g.dispose();
    xp.dispose();
    if (layer) [...layer.parameters(), ...layer.buffers()].forEach((p) => p.dispose());
  }
}

// ---- tests ------------------------------------------------------------------------------------------
before(async () => {
  await initBackend(process.env.LINGER_BACKEND);
});

const FAMILIES = ['conv2d', 'conv_transpose2d', 'conv1d', 'batchnorm', 'linear', 'activation', 'pooling', 'misc'];

for (const family of FAMILIES) {
  for (const c of loadCases<LayerCase>(family)) {
    test(`${c.layer} ${c.name}`, () => {
      // the input as a plain logical tensor, and (rank 3/4) stored channels-last as after a conv
      const perm = channelsLast(c.x.shape.length);
      checkLayerCase(c, null);
      if (perm) checkLayerCase(c, perm);
    });
  }
}

for (const c of loadCases<CnnSgdCase>('cnn_sgd')) {
  test(`CNN ${c.name}: two SGD(lr ${c.sgd.lr}, momentum ${c.sgd.momentum}) steps on cross-entropy`, () => {
    const model = new nn.Sequential({
      conv: new nn.Conv2d(3, 4, 3, { padding: 1 }),
      bn: new nn.BatchNorm2d(4),
      relu: new nn.ReLU(),
      pool: new nn.MaxPool2d(2),
      flatten: new nn.Flatten(),
      fc: new nn.Linear(4 * 3 * 3, 5),
    });
    model.loadStateDict(toStateDict(c.state));
    model.train();
    const x = toTensor(c.x);
    const labels = toTensor(c.target);
    const opt = new optim.SGD(model.parameters(), { lr: c.sgd.lr, momentum: c.sgd.momentum });
    c.steps.forEach((step, i) => {
      const loss = opt.step(() => F.crossEntropy(model(x), labels));
      assertClose([loss], [], { shape: [], data: [step.loss] }, `step ${i + 1}: loss`);
      assertStateDict(model, step.state_after, `after step ${i + 1}:`);
    });
  });
}
