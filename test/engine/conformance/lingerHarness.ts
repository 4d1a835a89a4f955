// Builds the conformance models of scripts/conformance/linger_models.py in the engine, runs the
// pipeline real linger 1.1.1 ran for test/fixtures/conformance/<model>.json, and lists every
// check that differs from linger's recorded values (docs/fixed-point.md#conformance-with-linger-111).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { F, linger, nn, optim, tensor, Tensor } from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { Module } from '../../../src/engine/nn/module';

export const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'conformance');

interface Enc {
  shape: number[];
  dtype: string;
  data: number[];
}
type Spec = {
  modules: [string, string, unknown[], Record<string, unknown>][];
  forward: [string, string, string[], Record<string, unknown>][];
  input: number[];
  classes: number | null;
  /** the input is token ids in [0, ids) */
  ids?: number;
  /** linger's SetFunctionBmmQuant / SetFunctionChannelShuffleQuant: the engine's init options */
  flags?: ('bmm' | 'channel_shuffle')[];
};
type Codes = { scale: number | null; codes?: number[]; values?: number[] };
export interface Fixture {
  model: string;
  linger: string;
  spec: Spec;
  steps: number;
  lr: number;
  clamp: number;
  float_state: Record<string, Enc>;
  x: Enc;
  x_eval: Enc;
  labels: number[] | null;
  target: Enc | null;
  stages: Record<string, { print: string; state: [string, number[], string][] }>;
  train: { output: Codes; loss: number; grads: Record<string, Enc>; buffers: Record<string, Enc> }[];
  eval: Codes[];
  eval_buffers: Record<string, Enc>;
  final_state: Record<string, Enc>;
}

export function fixtures(): Fixture[] {
  return fs
    .readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as Fixture);
}

const toTensor = (e: Enc): Tensor =>
  tensor(
    e.dtype.startsWith('float') ? Float32Array.from(e.data) : Int32Array.from(e.data),
    e.shape,
    e.dtype.startsWith('float') ? 'float32' : 'int32',
  );

/** kwargs of PyTorch's layer constructors as the engine's options */
function opts(kw: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kw)) o[k === 'output_padding' ? 'outputPadding' : k] = v;
  return o;
}
function makeLayer(type: string, args: unknown[], kw: Record<string, unknown>): Module {
  const a = args as number[];
  switch (type) {
    case 'Conv2d':
      return new nn.Conv2d(a[0], a[1], a[2], opts(kw));
    case 'Conv1d':
      return new nn.Conv1d(a[0], a[1], a[2], opts(kw));
    case 'ConvTranspose2d':
      return new nn.ConvTranspose2d(a[0], a[1], a[2], opts(kw));
    case 'Linear':
      return new nn.Linear(a[0], a[1], { bias: (kw.bias as boolean | undefined) ?? true });
    case 'BatchNorm2d':
      return new nn.BatchNorm2d(a[0]);
    case 'BatchNorm1d':
      return new nn.BatchNorm1d(a[0]);
    case 'ReLU':
      return new nn.ReLU();
    case 'AvgPool2d':
      return new nn.AvgPool2d(a[0]);
    case 'MaxPool2d':
      return new nn.MaxPool2d(a[0]);
    case 'ReLU6':
      return new nn.ReLU6();
    case 'Embedding':
      return new nn.Embedding(a[0], a[1]);
  }
  throw new Error(`unknown layer ${type}`);
}

/** The spec's model, named Net as in the Python script. */
export function buildNet(spec: Spec): Module {
  class Net extends nn.Module {
    constructor() {
      super();
      for (const [name, type, args, kw] of spec.modules) (this as unknown as Record<string, Module>)[name] = makeLayer(type, args, kw);
    }
    forward(x: Tensor): Tensor {
      const env = new Map<string, Tensor>([['x', x]]);
      const self = this as unknown as Record<string, (t: Tensor) => Tensor>;
      for (const [out, op, ins, attrs] of spec.forward) {
        const a = ins.map((i) => env.get(i)!);
        if (op === 'call') env.set(out, self[attrs.m as string](a[0]));
        else if (op === 'add') env.set(out, a[0].add(a[1]));
        else if (op === 'mul') env.set(out, a[0].mul(a[1]));
        else if (op === 'cat') env.set(out, F.cat(a, attrs.dim as number));
        else if (op === 'flatten')
          env.set(out, F.flatten(a[0], 1)); // the script's torch.flatten(x, 1)
        else if (op === 'clamp') env.set(out, a[0].clamp(attrs.min as number, attrs.max as number));
        else if (op === 'sum') env.set(out, a[0].sum(attrs.dim as number));
        else if (op === 'transpose') env.set(out, a[0].transpose(attrs.a as number, attrs.b as number));
        else if (op === 'bmm') env.set(out, F.bmm(a[0], a[1]));
        else if (op === 'shuffle') env.set(out, linger.channelShuffle(a[0], attrs.groups as number));
        else throw new Error(op);
      }
      return env.get('y')!;
    }
  }
  return new Net();
}

export interface Diff {
  check: string;
  detail: string;
}

const meta = (m: Module): [string, number[], string][] =>
  Object.entries(m.stateDict()).map(([k, v]) => [k, [...(v as Tensor).shape], (v as Tensor).dtype]);

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0,
    s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return s === 0 ? d : d / s;
}
function absErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
function codeDiff(ours: { scale: number | undefined; codes: number[] }, ref: Codes): string | null {
  if (!ref.codes) return 'linger output carries no scale';
  if (ours.scale !== ref.scale) return `scale ${ours.scale} vs linger ${ref.scale}`;
  let n = 0;
  for (let i = 0; i < ref.codes.length; i++) if (ours.codes[i] !== ref.codes[i]) n++;
  return n ? `${n} of ${ref.codes.length} codes differ` : null;
}
function codesOf(y: Tensor): { scale: number | undefined; codes: number[] } {
  const s = y.quantScale;
  const v = y.logical().dataSync();
  return { scale: s, codes: Array.from(v, (x) => Math.round(x * (s ?? 1))) };
}
function bufferDiffs(m: Module, ref: Record<string, Enc>): string[] {
  const ours = new Map(m.namedBuffers());
  const out: string[] = [];
  for (const [k, e] of Object.entries(ref)) {
    const b = ours.get(k);
    if (!b) {
      out.push(`${k} missing`);
      continue;
    }
    const v = b.logical().dataSync();
    const same = v.length === e.data.length && e.data.every((x, i) => Math.fround(x) === v[i]);
    if (!same) out.push(`${k} ${Array.from(v).slice(0, 4).join(',')} vs linger ${e.data.slice(0, 4).join(',')}`);
  }
  // EmptyBatchNorm's _linger_ignore_parameter: linger's is a parameter, ours a buffer (docs/fixed-point.md#conformance-with-linger-111)
  for (const k of ours.keys()) if (!(k in ref) && !k.endsWith('._linger_ignore_parameter')) out.push(`${k} extra`);
  return out;
}

/** Runs one fixture's pipeline in the engine and lists what differs from linger (`final`: sees the model after eval). */
export function conformance(fx: Fixture, final?: (m: Module) => void): Diff[] {
  const diffs: Diff[] = [];
  const check = (name: string, ok: boolean | string | null, detail = '') => {
    if (ok === true || ok === null) return;
    diffs.push({ check: name, detail: typeof ok === 'string' ? ok : detail });
  };
  const stage = (m: Module, key: string) => {
    const ref = fx.stages[key];
    check(`print:${key}`, m.toString() === ref.print, `ours:\n${m.toString()}`);
    const ours = meta(m);
    // linger's int64 (num_batches_tracked) and int8 (ReLU6Int's thresholds) are int32 here: the engine has neither (TF.js); a load
    // either way copies the value (docs/fixed-point.md#conformance-with-linger-111)
    const theirs = ref.state.map(([k, s, d]) => [k, s, d === 'int64' || d === 'int8' ? 'int32' : d]);
    const same = JSON.stringify(ours) === JSON.stringify(theirs);
    if (!same) {
      const o = new Set(ours.map((e) => JSON.stringify(e))),
        r = new Set(theirs.map((e) => JSON.stringify(e)));
      const only = (a: Set<string>, b: Set<string>) => [...a].filter((e) => !b.has(e));
      const detail = `ours only ${only(o, r).join(' ')}; linger only ${only(r, o).join(' ')}`;
      check(`state:${key}`, false, detail === 'ours only ; linger only ' ? 'order differs' : detail);
    }
  };
  const floatSd = () => Object.fromEntries(Object.entries(fx.float_state).map(([k, e]) => [k, toTensor(e)]));
  const m = buildNet(fx.spec);
  m.loadStateDict(floatSd());
  stage(m, 'float');
  const x = toTensor(fx.x);
  linger.traceLayers(m, m, x);
  stage(m, 'traced');
  linger.normalizeLayers(m, { normalizeWeightValue: null, normalizeBiasValue: null, normalizeOutputValue: fx.clamp });
  stage(m, 'normalized');
  const flags = fx.spec.flags ?? [];
  linger.init(m, { bmm: flags.includes('bmm'), functions: flags.includes('channel_shuffle') ? ['channel_shuffle'] : [] });
  stage(m, 'init');
  m.loadStateDict(floatSd());
  stage(m, 'loaded');
  m.train();
  const labels = fx.labels ? tensor(Int32Array.from(fx.labels), [fx.labels.length], 'int32') : null;
  const target = fx.target ? toTensor(fx.target) : null;
  const opt = new optim.SGD(m.parameters(), { lr: fx.lr });
  const params = m.namedParameters();
  fx.train.forEach((ref, i) => {
    let out: { scale: number | undefined; codes: number[] } | null = null;
    let grads: Map<string, Float32Array> | null = null;
    const loss = opt.step(
      () => {
        const y = m(x) as Tensor;
        out = codesOf(y);
        return labels ? F.crossEntropy(y, labels) : F.mseLoss(y, target!);
      },
      (gs, l) => {
        grads = new Map(
          params.map(([k, p], j) => [
            k,
            gs[j] ? (new Tensor(gs[j]!, p.perm).logical().dataSync() as Float32Array).slice() : new Float32Array(0),
          ]),
        );
        return { grads: gs, loss: l };
      },
    );
    check(`train${i}:codes`, codeDiff(out!, ref.output));
    const le = relErr([loss], [ref.loss]);
    check(`train${i}:loss`, le <= 1e-5, `${loss} vs linger ${ref.loss}`);
    const bad = Object.entries(ref.grads)
      .map(([k, e]) => [k, relErr(grads!.get(k) ?? [], e.data)] as const)
      .filter(([, r]) => !(r <= 1e-5));
    check(`train${i}:grads`, bad.length === 0, bad.map(([k, r]) => `${k} ${r.toExponential(2)}`).join(' '));
    // the same differences against the largest gradient of the layer (a bias whose gradient is a sum
    // that nearly cancels carries float32 summation-order noise relative to itself, not to its layer)
    const layerMax = new Map<string, number>();
    for (const [k, e] of Object.entries(ref.grads)) {
      const l = k.slice(0, k.lastIndexOf('.'));
      layerMax.set(l, Math.max(layerMax.get(l) ?? 0, ...e.data.map(Math.abs)));
    }
    const badLayer = Object.entries(ref.grads)
      .map(([k, e]) => [k, absErr(grads!.get(k) ?? [], e.data) / (layerMax.get(k.slice(0, k.lastIndexOf('.'))) || 1)] as const)
      .filter(([, r]) => !(r <= 1e-5));
    check(`train${i}:grads-of-layer`, badLayer.length === 0, badLayer.map(([k, r]) => `${k} ${r.toExponential(2)}`).join(' '));
    const bd = bufferDiffs(m, ref.buffers);
    check(`train${i}:buffers`, bd.length === 0, bd.join('; '));
  });
  m.eval();
  [x, toTensor(fx.x_eval)].forEach((xe, i) => {
    const y = tf.tidy(() => codesOf(m(xe) as Tensor));
    check(`eval${i}:codes`, codeDiff(y, fx.eval[i]));
  });
  const bd = bufferDiffs(m, fx.eval_buffers);
  check('eval:buffers', bd.length === 0, bd.join('; '));
  stage(m, 'eval');
  final?.(m);
  // linger's final state dict, strictly, into our model at the same stage
  try {
    const sd = Object.fromEntries(Object.entries(fx.final_state).map(([k, e]) => [k, toTensor(e)]));
    m.loadStateDict(sd, { strict: true });
  } catch (e) {
    check('load:linger->ours', false, (e as Error).message.slice(0, 300));
  }
  return diffs;
}
