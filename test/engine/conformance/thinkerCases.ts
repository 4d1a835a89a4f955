// The thinker conformance cases (docs/onnx.md, "thinker conformance"): small seeded models, one
// per Int op thinker v1.1.0 can run and a few whole networks, taken through trace → (normalize) →
// init → calibration. scripts/conformance/thinker_export.ts exports them for the live run on the
// real tpacker + executor; test/engine/conformance/thinker.test.ts checks the committed verdicts.
import { createHash } from 'node:crypto';
import { F, linger, manualSeed, nn, randn, Tensor } from '../../../src/engine/index';
import { onnx } from '../../../src/engine/onnx/proto';
import { DemoCNN } from '../../../src/engine/train/demoCnn';
import { DemoGRU } from '../../../src/engine/train/demoGru';
import { GRUInt } from '../../../src/engine/linger/ops/recurrent/layer';

export interface ThinkerCase {
  name: string;
  /** the input of one executor run (batch 1: the exported graph's static shape) */
  shape: number[];
  model(): nn.Module;
  init?: linger.InitOptions;
  /** normalizeLayers before init (the demo's clamps) */
  normalize?: boolean;
  /** the case of test/fixtures/conformance/thinker/linger_attrs.json with the same structure */
  linger?: string;
  /** what the case is about */
  about: string;
  /** the thinker export refuses it (a pattern thinker v1.1.0 rejects or miscomputes): the message names it */
  refused?: RegExp;
}

class CnnResidual extends nn.Module {
  conv = new nn.Conv2d(1, 4, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(4);
  relu = new nn.ReLU();
  conv2 = new nn.Conv2d(4, 4, 3, { padding: 1 });
  pool = new nn.AvgPool2d(2);
  fc = new nn.Linear(64, 10);
  forward(x: Tensor): Tensor {
    const y = this.relu(this.bn(this.conv(x)));
    return this.fc(this.pool(y.add(this.conv2(y))).flatten(1));
  }
}
class Conv1dBn extends nn.Module {
  conv = new nn.Conv1d(4, 6, 3, { padding: 1 });
  bn = new nn.BatchNorm1d(6);
  relu = new nn.ReLU();
  fc = new nn.Linear(60, 5);
  forward(x: Tensor): Tensor {
    return this.fc(this.relu(this.bn(this.conv(x))).flatten(1));
  }
}
class ConvT extends nn.Module {
  up = new nn.ConvTranspose2d(2, 3, 3, { stride: 2, padding: 1, outputPadding: 1 });
  forward(x: Tensor): Tensor {
    return this.up(x);
  }
}
class BnOnly extends nn.Module {
  conv = new nn.Conv2d(1, 3, 3, { padding: 1 });
  relu = new nn.ReLU();
  bn = new nn.BatchNorm2d(3);
  forward(x: Tensor): Tensor {
    return this.bn(this.relu(this.conv(x)));
  }
}
class CatPool extends nn.Module {
  a = new nn.Conv2d(1, 2, 3, { padding: 1 });
  b = new nn.Conv2d(1, 3, 3, { padding: 1 });
  pool = new nn.MaxPool2d(2);
  fc = new nn.Linear(80, 4);
  forward(x: Tensor): Tensor {
    return this.fc(this.pool(F.cat([this.a(x), this.b(x)], 1)).flatten(1));
  }
}
class Mul extends nn.Module {
  a = new nn.Conv2d(1, 2, 3, { padding: 1 });
  b = new nn.Conv2d(1, 2, 3, { padding: 1 });
  forward(x: Tensor): Tensor {
    return this.a(x).mul(this.b(x));
  }
}
class Grouped extends nn.Module {
  conv: nn.Conv2d;
  constructor(dilated: boolean) {
    super();
    this.conv = new nn.Conv2d(4, 4, 3, { stride: 2, padding: 2, dilation: dilated ? 2 : 1, groups: 2 });
  }
  forward(x: Tensor): Tensor {
    return this.conv(x);
  }
}
class Relu6 extends nn.Module {
  conv = new nn.Conv2d(1, 2, 3, { padding: 1 });
  act = new nn.ReLU6();
  fc = new nn.Linear(72, 3);
  forward(x: Tensor): Tensor {
    return this.fc(this.act(this.conv(x)).flatten(1));
  }
}
class Bmm extends nn.Module {
  fc = new nn.Linear(4, 4);
  forward(x: Tensor): Tensor {
    const y = this.fc(x);
    return F.bmm(y, y.transpose(1, 2));
  }
}
class Act extends nn.Module {
  fc = new nn.Linear(6, 5);
  act: nn.Module;
  constructor(kind: 'sigmoid' | 'tanh') {
    super();
    this.act = kind === 'sigmoid' ? new nn.Sigmoid() : new nn.Tanh();
  }
  forward(x: Tensor): Tensor {
    return this.act(this.fc(x)) as Tensor;
  }
}
class Recurrent extends nn.Module {
  rnn: nn.Module;
  fc = new nn.Linear(8, 3);
  constructor(kind: 'gru' | 'lstm') {
    super();
    this.rnn = kind === 'gru' ? new nn.GRU(5, 8, { batchFirst: true }) : new nn.LSTM(5, 8, { batchFirst: true });
  }
  forward(x: Tensor): Tensor {
    const [y] = this.rnn(x) as [Tensor, unknown];
    return this.fc(y); // every step's output
  }
}
class Conv1dDilated extends nn.Module {
  conv = new nn.Conv1d(4, 6, 3, { padding: 2, dilation: 2 });
  forward(x: Tensor): Tensor {
    return this.conv(x);
  }
}
class Both extends nn.Module {
  rnn: nn.Module;
  constructor(kind: 'gru' | 'lstm', opts: { bidirectional?: boolean; numLayers?: number }) {
    super();
    this.rnn = kind === 'gru' ? new nn.GRU(5, 8, { batchFirst: true, ...opts }) : new nn.LSTM(5, 8, { batchFirst: true, ...opts });
  }
  forward(x: Tensor): Tensor {
    return (this.rnn(x) as [Tensor, unknown])[0];
  }
}
class Sum extends nn.Module {
  conv = new nn.Conv2d(1, 3, 3, { padding: 1 });
  forward(x: Tensor): Tensor {
    return this.conv(x).sum(1, true);
  }
}
class Clamp extends nn.Module {
  conv = new nn.Conv2d(1, 2, 3, { padding: 1 });
  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.conv(x).clamp(this.min, this.max);
  }
}
class HiddenState extends nn.Module {
  gru = new nn.GRU(5, 8, { batchFirst: true });
  fc = new nn.Linear(8, 3);
  forward(x: Tensor): Tensor {
    const [, h] = this.gru(x) as [Tensor, Tensor];
    return this.fc(h.reshape([-1, 8]));
  }
}
class SquareTranspose extends nn.Module {
  fc = new nn.Linear(6, 4);
  forward(x: Tensor): Tensor {
    return this.fc(x.reshape([-1, 6, 6]).transpose(1, 2));
  }
}
class Norm extends nn.Module {
  fc = new nn.Linear(6, 8);
  ln = new nn.LayerNorm(8);
  forward(x: Tensor): Tensor {
    return this.ln(this.fc(x));
  }
}
class Shuffle extends nn.Module {
  conv = new nn.Conv2d(1, 4, 3, { padding: 1 });
  fc = new nn.Linear(4 * 36, 3);
  forward(x: Tensor): Tensor {
    return this.fc(linger.channelShuffle(this.conv(x), 2).flatten(1));
  }
}

export const THINKER_CASES: ThinkerCase[] = [
  {
    name: 'cnn_residual',
    shape: [1, 1, 8, 8],
    model: () => new CnnResidual(),
    linger: 'cnn_residual',
    about: 'Conv2dInt (fused BN, ahead ReLU), iqAdd, AvgPool2dInt, LinearInt',
  },
  {
    name: 'conv1d_bn_linear',
    shape: [1, 4, 10],
    model: () => new Conv1dBn(),
    linger: 'conv1d_bn_linear',
    about: 'Conv1dInt (fused BN1d), LinearInt',
  },
  {
    name: 'convtranspose',
    shape: [1, 2, 4, 4],
    model: () => new ConvT(),
    linger: 'convtranspose',
    about: 'ConvTranspose2dInt (stride 2, output padding)',
  },
  { name: 'bn_after_relu', shape: [1, 1, 6, 6], model: () => new BnOnly(), about: 'BatchNorm2dInt (a BN no conv precedes)' },
  { name: 'cat_maxpool', shape: [1, 1, 8, 8], model: () => new CatPool(), linger: 'cat_maxpool', about: 'iqCat, MaxPool' },
  { name: 'mul', shape: [1, 1, 6, 6], model: () => new Mul(), linger: 'mul', about: 'iqMul of two tensors' },
  {
    name: 'conv_grouped_dilated_strided',
    shape: [1, 4, 9, 9],
    model: () => new Grouped(true),
    linger: 'conv_grouped_dilated_strided',
    about: 'Conv2dInt groups 2, dilation 2, stride 2',
    refused: /Conv2dInt at 'conv'.*dilation/,
  },
  { name: 'conv_grouped_strided', shape: [1, 4, 9, 9], model: () => new Grouped(false), about: 'Conv2dInt groups 2, stride 2, padding 2' },
  {
    name: 'relu6',
    shape: [1, 1, 6, 6],
    model: () => new Relu6(),
    linger: 'relu6',
    about: 'ReLU6 after a conv (linger: Clip on int8)',
    refused: /ReLU6Int at 'act'.*act_type 3/,
  },
  { name: 'bmm', shape: [1, 3, 4], model: () => new Bmm(), init: { bmm: true }, linger: 'bmm', about: 'BmmInt, Transpose' },
  { name: 'sigmoid', shape: [1, 4, 6], model: () => new Act('sigmoid'), about: 'iqSigmoid' },
  { name: 'tanh', shape: [1, 4, 6], model: () => new Act('tanh'), about: 'iqTanh' },
  { name: 'gru', shape: [1, 6, 5], model: () => new Recurrent('gru'), about: 'GRUInt (every step read), LinearInt' },
  { name: 'lstm', shape: [1, 6, 5], model: () => new Recurrent('lstm'), about: 'LSTMInt (every step read), LinearInt' },
  {
    name: 'gru_bidirectional',
    shape: [1, 6, 5],
    model: () => new Both('gru', { bidirectional: true }),
    about: 'GRUInt, both directions',
    refused: /GRUInt at 'rnn'.*packs no direction for GRUInt/,
  },
  {
    name: 'lstm_bidirectional',
    shape: [1, 6, 5],
    model: () => new Both('lstm', { bidirectional: true }),
    about: 'LSTMInt, both directions (iqCat)',
  },
  {
    name: 'lstm_two_layers',
    shape: [1, 6, 5],
    model: () => new Both('lstm', { numLayers: 2 }),
    about: 'LSTMInt, two layers (a node each)',
  },
  {
    name: 'conv1d_dilated',
    shape: [1, 4, 12],
    model: () => new Conv1dDilated(),
    about: 'Conv1dInt dilation 2',
    refused: /Conv1dInt at 'conv'.*dilation/,
  },
  {
    name: 'gru_hidden_state',
    shape: [1, 6, 5],
    model: () => new HiddenState(),
    about: "GRUInt's h_n read by a Linear (exported as the output's last step)",
  },
  {
    name: 'square_transpose',
    shape: [1, 1, 6, 6],
    model: () => new SquareTranspose(),
    about: 'a transpose of [1, 6, 6] (tpacker would make it a Reshape: exported split)',
  },
  {
    name: 'sum',
    shape: [1, 1, 6, 6],
    model: () => new Sum(),
    about: 'iqSum over one dim',
    refused: /at '[^']+': thinker v1\.1\.0 cannot run this as exported: .*iqBinaryOperator/,
  },
  {
    name: 'iqclamp',
    shape: [1, 1, 6, 6],
    model: () => new Clamp(0, 127 / 32),
    about: 'iqClamp (linger bounds: min 0, max 127/2^n)',
    refused: /at '[^']+': thinker v1\.1\.0 cannot run this as exported: .*no iqClamp operator/,
  },
  {
    name: 'float_clamp',
    shape: [1, 1, 6, 6],
    model: () => new Clamp(-0.5, 0.5),
    about: 'a clamp linger keeps in float (a Clip)',
    refused: /op 'clamp'.*Clip/,
  },
  { name: 'layernorm', shape: [1, 3, 6], model: () => new Norm(), init: { quantModules: ['LayerNorm'] }, about: 'LayerNormInt' },
  {
    name: 'channel_shuffle',
    shape: [1, 1, 6, 6],
    model: () => new Shuffle(),
    init: { functions: ['channel_shuffle'] },
    about: 'ShuffleChannel',
  },
  {
    name: 'demo_cnn',
    shape: [1, 1, 28, 28],
    model: () => new DemoCNN(),
    normalize: true,
    about: 'the demo CNN (seeded weights, calibrated)',
  },
  {
    name: 'demo_gru',
    shape: [1, 1, 28, 28],
    model: () => new DemoGRU(),
    normalize: true,
    about: 'the sequence demo (seeded weights, calibrated)',
  },
];

/** A case's fixed-stage model: seeded weights, traced, initialized, calibrated on seeded batches, in eval. */
export function fixedCase(c: ThinkerCase): nn.Module {
  manualSeed(1000 + THINKER_CASES.indexOf(c));
  const m = c.model();
  linger.traceLayers(m, m, randn(c.shape));
  if (c.normalize) linger.normalizeLayers(m, { normalizeWeightValue: 8, normalizeBiasValue: null, normalizeOutputValue: 8 });
  linger.init(m, c.init ?? {});
  // a GRU for the chip keeps its state at 2^8, the scale thinker's GRU kernel reads it at (docs/fixed-point.md#the-chips-gruint-lstmint-iqsigmoid-iqtanh-thinker-v110)
  for (const mod of m.modules()) if (mod instanceof GRUInt) mod.chipStateScale = true;
  linger.calibrate(
    m,
    Array.from({ length: 8 }, () => randn([4, ...c.shape.slice(1)])),
  );
  m.eval();
  return m;
}

/** The inputs of a case's executor runs (seeded, batch 1). */
export function caseInputs(c: ThinkerCase, n: number): Tensor[] {
  manualSeed(5000 + THINKER_CASES.indexOf(c));
  return Array.from({ length: n }, () => randn(c.shape).mul(1.5));
}

/**
 * A hash of what an exported graph computes: node types, domains, attributes, initializer values
 * and the wiring, with every value name replaced by its order of appearance (renaming a layer or
 * a node does not change it; any change of arithmetic or structure does).
 */
export function graphHash(model: onnx.IModelProto): string {
  const g = model.graph!;
  const ids = new Map<string, number>();
  const id = (n: string) => (n === '' ? -1 : (ids.get(n) ?? (ids.set(n, ids.size), ids.size - 1)));
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  const h = createHash('sha256');
  for (const i of g.input!) h.update(`in ${id(i.name!)} ${JSON.stringify(i.type)};`);
  for (const n of g.node!) {
    const ins = n.input!.map((x) => {
      const t = inits.get(x);
      if (t && !ids.has(x)) {
        const raw = t.rawData ? Buffer.from(t.rawData) : Buffer.from(JSON.stringify([t.floatData, t.int32Data, t.int64Data]));
        h.update(`init ${id(x)} ${t.dataType} ${(t.dims ?? []).join('x')} ${createHash('sha256').update(raw).digest('hex')};`);
      }
      return id(x);
    });
    const attrs = [...n.attribute!]
      .sort((a, b) => (a.name! < b.name! ? -1 : 1))
      .map(
        (a) =>
          `${a.name}=${JSON.stringify([a.type, a.f, a.i === undefined ? undefined : String(a.i), a.s ? Buffer.from(a.s).toString('hex') : undefined, a.ints?.map(String), a.floats])}`,
      );
    h.update(`node ${n.domain ?? ''}::${n.opType} (${ins.join(',')}) -> (${n.output!.map(id).join(',')}) ${attrs.join(' ')};`);
  }
  for (const o of g.output!) h.update(`out ${id(o.name!)} ${JSON.stringify(o.type)};`);
  return h.digest('hex');
}
