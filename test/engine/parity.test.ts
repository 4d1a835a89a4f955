// Layer numerics against PyTorch: forward values, gradients of sum(y·g) w.r.t. the input and every
// parameter, BatchNorm running statistics, and two SGD steps of a small CNN. The golden values are
// made by scripts/golden/make_fixtures.py (PyTorch 1.13) and live in test/fixtures/golden/.
//
//   LINGER_BACKEND=wasm node --import tsx --test test/engine/parity.test.ts
//   LINGER_BACKEND=cpu  node --import tsx --test test/engine/parity.test.ts
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { nn, F, optim, Tensor, initBackend } from '../../src/engine/index';
import { assertClose, assertStateDict, Fixture, FixtureDict, loadCases, toStateDict, toTensor } from './golden';
import { tf } from '../../src/engine/backend/tf';

// ---- fixtures -------------------------------------------------------------------------------------
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

// ---- building layers from PyTorch's constructor arguments ---------------------------------------
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ModuleClass = new (...args: any[]) => nn.Module;
const MODULES: Record<string, ModuleClass> = {
  Conv2d: nn.Conv2d,
  ConvTranspose2d: nn.ConvTranspose2d,
  Conv1d: nn.Conv1d,
  BatchNorm2d: nn.BatchNorm2d,
  BatchNorm1d: nn.BatchNorm1d,
  Linear: nn.Linear,
  ReLU: nn.ReLU,
  ReLU6: nn.ReLU6,
  Sigmoid: nn.Sigmoid,
  Tanh: nn.Tanh,
  MaxPool2d: nn.MaxPool2d,
  AvgPool2d: nn.AvgPool2d,
  AdaptiveAvgPool2d: nn.AdaptiveAvgPool2d,
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
    assert.deepEqual(
      params.map(([k]) => k).sort(),
      Object.keys(c.grads)
        .filter((k) => k !== 'x')
        .sort(),
      `${where}: the engine's parameters differ from PyTorch's`,
    );
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
