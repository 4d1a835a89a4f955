// The chip corpus (docs/chip-rules.md): small seeded models, each rule of tpacker v1.1.0 just
// inside and just outside its limit, and a few whole networks. scripts/conformance/chip_export.ts
// exports each (thinker dialect, no check) for the live run of the real tpacker
// (scripts/conformance/chip_run.py); test/engine/chip/corpus.test.ts checks checkChip against the
// committed verdicts (test/fixtures/chip/verdicts.json).
import { F, linger, manualSeed, nn, randn, Tensor } from '../../../src/engine/index';
import { DemoCNN } from '../../../src/engine/train/demoCnn';
import { DemoGRU } from '../../../src/engine/train/demoGru';

export interface ChipCase {
  name: string;
  /** the input (batch 1: the thinker export is static) */
  shape: number[];
  model(): nn.Module;
  init?: linger.InitOptions;
  /** the layer the case is about (the one that is at, inside or outside a limit) */
  layer: string;
  about: string;
}

const seq = (layers: () => Record<string, nn.Module>) => () => new nn.Sequential(layers());

// networks for the memory plan (docs/chip-rules.md, memory): depthwise, pointwise, a concat, a
// large depthwise and pools whose input passes 64 KB, a tall input over the SRAM, an LSTM, grouped
// and depthwise Conv1d, residual adds and a transposed conv
class Mobile extends nn.Module {
  c1 = new nn.Conv2d(3, 16, 3, { stride: 2, padding: 1 });
  b1 = new nn.BatchNorm2d(16);
  r1 = new nn.ReLU();
  dw = new nn.Conv2d(16, 16, 3, { padding: 1, groups: 16 });
  r2 = new nn.ReLU();
  pw = new nn.Conv2d(16, 32, 1);
  r3 = new nn.ReLU();
  br = new nn.Conv2d(16, 8, 1);
  pool = new nn.AvgPool2d(2);
  fc = new nn.Linear(40 * 8 * 8, 10);
  forward(x: Tensor): Tensor {
    const y = this.r1(this.b1(this.c1(x)));
    const a = this.r3(this.pw(this.r2(this.dw(y))));
    return this.fc(this.pool(F.cat([a, this.br(y)], 1)).flatten(1));
  }
}
class LstmNet extends nn.Module {
  conv = new nn.Conv1d(16, 24, 3, { padding: 1 });
  lstm = new nn.LSTM(24, 32, { batchFirst: true });
  fc = new nn.Linear(32, 5);
  forward(x: Tensor): Tensor {
    const [out] = this.lstm(this.conv(x).transpose(1, 2)) as [Tensor, unknown];
    return this.fc(out);
  }
}
class AddInput extends nn.Module {
  conv = new nn.Conv2d(1, 1, 3, { padding: 1 });
  forward(x: Tensor): Tensor {
    return this.conv(x).add(x);
  }
}
class TwoAdd extends nn.Module {
  a = new nn.Conv2d(4, 8, 3, { padding: 1 });
  b = new nn.Conv2d(4, 8, 1);
  c = new nn.Conv2d(8, 8, 3, { padding: 1 });
  up = new nn.ConvTranspose2d(8, 4, 2, { stride: 2 });
  forward(x: Tensor): Tensor {
    const y = this.a(x).add(this.b(x));
    return this.up(this.c(y).add(y));
  }
}

class BmmRows extends nn.Module {
  fc = new nn.Linear(4, 4);
  forward(x: Tensor): Tensor {
    const y = this.fc(x);
    const gram = F.bmm(y.transpose(1, 2), y); // [1, 4, 4]
    return F.bmm(y, gram); // left input [1, rows, 4]
  }
}
class Flat extends nn.Module {
  conv: nn.Conv2d;
  relu = new nn.ReLU();
  fc: nn.Linear;
  constructor(channels: number, side: number) {
    super();
    this.conv = new nn.Conv2d(1, channels, 3, { padding: 1 });
    this.fc = new nn.Linear(channels * side * side, 4);
  }
  forward(x: Tensor): Tensor {
    return this.fc(this.relu(this.conv(x)).flatten(1));
  }
}
class Residual extends nn.Module {
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
class Stem extends nn.Module {
  stem = new nn.Conv2d(1, 8, 7, { stride: 2, padding: 3 });
  relu = new nn.ReLU();
  pool = new nn.MaxPool2d(2);
  fc = new nn.Linear(8 * 8 * 8, 10);
  forward(x: Tensor): Tensor {
    return this.fc(this.pool(this.relu(this.stem(x))).flatten(1));
  }
}
class Seq3d extends nn.Module {
  fc: nn.Linear;
  constructor(f: number) {
    super();
    this.fc = new nn.Linear(f, 4);
  }
  forward(x: Tensor): Tensor {
    return this.fc(x);
  }
}

const conv = (
  name: string,
  shape: number[],
  cin: number,
  cout: number,
  k: number | number[],
  o: nn.ConvOptions,
  about: string,
): ChipCase => ({
  name,
  shape,
  model: seq(() => ({ conv: new nn.Conv2d(cin, cout, k, o) })),
  layer: 'conv',
  about,
});
const conv1d = (name: string, k: number, o: nn.ConvOptions, about: string): ChipCase => ({
  name,
  shape: [1, 2, 16],
  model: seq(() => ({ conv: new nn.Conv1d(2, 3, k, o) })),
  layer: 'conv',
  about,
});
const convT = (name: string, k: number, o: nn.ConvTransposeOptions, about: string): ChipCase => ({
  name,
  shape: [1, 2, 6, 6],
  model: seq(() => ({ up: new nn.ConvTranspose2d(2, 3, k, o) })),
  layer: 'up',
  about,
});
const pool = (name: string, kind: 'max' | 'avg', k: number, o: { stride?: number; padding?: number }, about: string): ChipCase => ({
  name,
  shape: [1, 2, 12, 12],
  model: seq(() => ({
    conv: new nn.Conv2d(2, 2, 3, { padding: 1 }),
    pool: kind === 'max' ? new nn.MaxPool2d(k, o) : new nn.AvgPool2d(k, o),
  })),
  layer: 'pool',
  about,
});

export const CHIP_CASES: ChipCase[] = [
  // Conv2dInt kernel 1–5 (ops/Conv2dInt.py:32)
  conv('conv_k1', [1, 2, 8, 8], 2, 4, 1, {}, 'Conv2d kernel 1 (smallest)'),
  conv('conv_k5', [1, 2, 8, 8], 2, 4, 5, { padding: 2 }, 'Conv2d kernel 5 (largest)'),
  conv('conv_k6', [1, 2, 8, 8], 2, 4, 6, { padding: 2 }, 'Conv2d kernel 6 (one past)'),
  conv('conv_k7', [1, 2, 8, 8], 2, 4, 7, { padding: 3 }, 'Conv2d kernel 7 (a ResNet stem)'),
  conv('conv_k1x5', [1, 2, 8, 8], 2, 4, [1, 5], { padding: [0, 2] }, 'Conv2d kernel 1×5'),
  conv('conv_k3x6', [1, 2, 8, 8], 2, 4, [3, 6], { padding: [1, 2] }, 'Conv2d kernel 3×6 (one side past)'),
  // pads 0–4 (ops/Conv2dInt.py:37) and pad ≤ kernel (:50)
  conv('conv_pad4', [1, 2, 8, 8], 2, 4, 5, { padding: 4 }, 'Conv2d padding 4 (largest)'),
  conv('conv_pad5', [1, 2, 8, 8], 2, 4, 5, { padding: 5 }, 'Conv2d padding 5 (one past)'),
  conv('conv_k1_pad1', [1, 2, 8, 8], 2, 4, 1, { padding: 1 }, 'Conv2d kernel 1, padding 1 (pad = kernel)'),
  conv('conv_k1_pad2', [1, 2, 8, 8], 2, 4, 1, { padding: 2 }, 'Conv2d kernel 1, padding 2 (pad > kernel)'),
  conv('conv_k3_pad3', [1, 2, 8, 8], 2, 4, 3, { padding: 3 }, 'Conv2d kernel 3, padding 3 (pad = kernel)'),
  conv('conv_k3_pad4', [1, 2, 8, 8], 2, 4, 3, { padding: 4 }, 'Conv2d kernel 3, padding 4 (pad > kernel)'),
  // strides {1, 2, 4} (ops/Conv2dInt.py:44) and kernel ≥ stride (:47)
  conv('conv_s2', [1, 2, 8, 8], 2, 4, 3, { stride: 2, padding: 1 }, 'Conv2d stride 2'),
  conv('conv_s4', [1, 2, 16, 16], 2, 4, 4, { stride: 4 }, 'Conv2d stride 4, kernel 4'),
  conv('conv_s3', [1, 2, 9, 9], 2, 4, 3, { stride: 3 }, 'Conv2d stride 3'),
  conv('conv_k1_s2', [1, 2, 8, 8], 2, 4, 1, { stride: 2 }, 'Conv2d kernel 1, stride 2 (kernel < stride)'),
  conv('conv_k3_s4', [1, 2, 16, 16], 2, 4, 3, { stride: 4 }, 'Conv2d kernel 3, stride 4 (kernel < stride)'),
  // the input at least the kernel (ops/Conv2dInt.py:131)
  conv('conv_input_3x3', [1, 2, 3, 3], 2, 4, 3, { padding: 1 }, 'Conv2d kernel 3 on a 3×3 input'),
  conv('conv_input_2x2', [1, 2, 2, 2], 2, 4, 3, { padding: 1 }, 'Conv2d kernel 3 on a 2×2 input (padded)'),
  // dilation: packs, but the executor computes other values; the export refuses
  conv('conv_dilated', [1, 2, 9, 9], 2, 4, 3, { padding: 2, dilation: 2 }, 'Conv2d dilation 2'),
  // packed weights ≤ 32 KB after alignment (ops/Conv2dInt.py:342 depthwise; grouped and common convs are
  // split first: graph_optimizer/op_split.py:337, 436)
  conv('conv_depthwise_1296', [1, 1296, 5, 5], 1296, 1296, 5, { padding: 2, groups: 1296 }, 'depthwise 5×5, 1296 channels (32400 B)'),
  conv('conv_depthwise_1297', [1, 1297, 5, 5], 1297, 1297, 5, { padding: 2, groups: 1297 }, 'depthwise 5×5, 1297 channels (32800 B)'),
  conv('conv_grouped_80', [1, 32, 8, 8], 32, 160, 5, { padding: 2, groups: 2 }, 'grouped conv, 80 outputs a group (32000 B)'),
  conv('conv_grouped_82', [1, 32, 8, 8], 32, 164, 5, { padding: 2, groups: 2 }, 'grouped conv, 82 outputs a group (32800 B)'),
  conv('conv_cin_648', [1, 648, 5, 5], 648, 4, 5, { padding: 2 }, '648 input channels: tpacker splits the outputs in twos'),
  conv('conv_cin_656', [1, 656, 5, 5], 656, 4, 5, { padding: 2 }, '656 input channels: two outputs exceed 32 KB'),
  conv(
    'conv_wide_h64',
    [1, 16, 64, 64],
    16,
    164,
    5,
    { stride: 4, padding: 2 },
    '65600 B of weights, input 64 KB: tpacker splits the outputs',
  ),
  conv('conv_wide_h65', [1, 16, 65, 64], 16, 164, 5, { stride: 4, padding: 2 }, '65600 B of weights, input over 64 KB'),
  // Conv1dInt (ops/Conv1dInt.py:33 pads, 39 strides, 41 kernel ≥ stride, 44 pad ≤ kernel)
  conv1d('conv1d_k3', 3, { padding: 1 }, 'Conv1d kernel 3'),
  conv1d('conv1d_k7', 7, { padding: 3 }, 'Conv1d kernel 7 (tpacker checks no kernel size of Conv1dInt)'),
  conv1d('conv1d_pad4', 5, { padding: 4 }, 'Conv1d padding 4'),
  conv1d('conv1d_pad5', 5, { padding: 5 }, 'Conv1d padding 5'),
  conv1d('conv1d_s4', 4, { stride: 4 }, 'Conv1d stride 4'),
  conv1d('conv1d_s3', 3, { stride: 3 }, 'Conv1d stride 3'),
  conv1d('conv1d_k1_pad2', 1, { padding: 2 }, 'Conv1d kernel 1, padding 2 (pad > kernel)'),
  // ConvTranspose2dInt (ops/ConvTranspose2dInt.py:39 kernel, 44 pads, 51 strides, 54 stride/kernel)
  convT('convt_k5_s2', 5, { stride: 2, padding: 2, outputPadding: 1 }, 'ConvTranspose2d kernel 5, stride 2'),
  convT('convt_k6_s2', 6, { stride: 2, padding: 2 }, 'ConvTranspose2d kernel 6'),
  convT('convt_k4_s4', 4, { stride: 4 }, 'ConvTranspose2d kernel 4, stride 4'),
  convT('convt_k3_s4', 3, { stride: 4 }, 'ConvTranspose2d kernel 3, stride 4 (kernel < 4)'),
  convT('convt_k2_s2', 2, { stride: 2 }, 'ConvTranspose2d kernel 2, stride 2'),
  convT('convt_k1_s2', 1, { stride: 2 }, 'ConvTranspose2d kernel 1, stride 2 (kernel < 2)'),
  convT('convt_k3_s3', 3, { stride: 3 }, 'ConvTranspose2d stride 3'),
  // pools (ops/Pool.py:20 kernel, 25 strides, 30 pads)
  pool('maxpool_k2', 'max', 2, {}, 'MaxPool2d 2'),
  pool('maxpool_k5', 'max', 5, { stride: 1, padding: 2 }, 'MaxPool2d 5, stride 1'),
  pool('maxpool_k6', 'max', 6, {}, 'MaxPool2d 6'),
  pool('maxpool_k3_s3', 'max', 3, {}, 'MaxPool2d 3 (stride 3)'),
  pool('maxpool_k4_s4', 'max', 4, {}, 'MaxPool2d 4 (stride 4)'),
  pool('avgpool_k4', 'avg', 4, {}, 'AvgPool2d 4'),
  pool('avgpool_k6', 'avg', 6, {}, 'AvgPool2d 6'),
  pool('avgpool_k3_s3', 'avg', 3, {}, 'AvgPool2d 3 (stride 3)'),
  // LinearInt's left matrix (ops/LinearInt.py:90): ALIGN4(rows)·ALIGN8(cols) < 65536
  {
    name: 'linear_16376',
    shape: [1, 16376],
    model: seq(() => ({ fc: new nn.Linear(16376, 2) })),
    layer: 'fc',
    about: 'Linear of 16376 inputs (65504 B)',
  },
  {
    name: 'linear_16377',
    shape: [1, 16377],
    model: seq(() => ({ fc: new nn.Linear(16377, 2) })),
    layer: 'fc',
    about: 'Linear of 16377 inputs (65536 B aligned)',
  },
  { name: 'linear_rows_60', shape: [1, 60, 1024], model: () => new Seq3d(1024), layer: 'fc', about: 'Linear on [60, 1024] (61440 B)' },
  {
    name: 'linear_rows_61',
    shape: [1, 61, 1024],
    model: () => new Seq3d(1024),
    layer: 'fc',
    about: 'Linear on [61, 1024] (rows to 64: 65536 B)',
  },
  // BmmInt (ops/BmmInt.py:52): ALIGN16(dim 0)·ALIGN32(dim 1) < 65536
  {
    name: 'bmm_rows_4064',
    shape: [1, 4064, 4],
    model: () => new BmmRows(),
    init: { bmm: true },
    layer: '',
    about: 'bmm with a [1, 4064, 4] left input',
  },
  {
    name: 'bmm_rows_4065',
    shape: [1, 4065, 4],
    model: () => new BmmRows(),
    init: { bmm: true },
    layer: '',
    about: 'bmm with a [1, 4065, 4] left input',
  },
  // whole networks
  { name: 'net_demo_cnn', shape: [1, 1, 28, 28], model: () => new DemoCNN(), layer: '', about: 'the demo CNN' },
  { name: 'net_demo_gru', shape: [1, 1, 28, 28], model: () => new DemoGRU(), layer: '', about: 'the sequence demo (GRU)' },
  {
    name: 'net_residual',
    shape: [1, 1, 8, 8],
    model: () => new Residual(),
    layer: '',
    about: 'conv, BN, ReLU, residual add, avg pool, Linear',
  },
  { name: 'net_stem7', shape: [1, 1, 32, 32], model: () => new Stem(), layer: 'stem', about: 'a ResNet-style 7×7 stride-2 stem' },
  {
    name: 'net_flat_ok',
    shape: [1, 1, 32, 32],
    model: () => new Flat(15, 32),
    layer: 'fc',
    about: 'conv → flatten → Linear of 15360 inputs',
  },
  {
    name: 'net_flat_big',
    shape: [1, 1, 32, 32],
    model: () => new Flat(16, 32),
    layer: 'fc',
    about: 'conv → flatten → Linear of 16384 inputs',
  },
  {
    name: 'net_mobile',
    shape: [1, 3, 32, 32],
    model: () => new Mobile(),
    layer: '',
    about: 'depthwise + pointwise, a concat, avg pool, Linear',
  },
  {
    name: 'net_big_depthwise',
    shape: [1, 64, 40, 40],
    model: seq(() => ({ c: new nn.Conv2d(64, 64, 3, { padding: 1, groups: 64 }), p: new nn.MaxPool2d(2) })),
    layer: '',
    about: 'a depthwise conv whose input passes 64 KB (split by height), max pool',
  },
  {
    name: 'net_big_pools',
    shape: [1, 8, 48, 48],
    model: seq(() => ({ c: new nn.Conv2d(8, 32, 3, { padding: 1 }), r: new nn.ReLU(), p: new nn.MaxPool2d(2), a: new nn.AvgPool2d(2) })),
    layer: '',
    about: 'a max pool whose input passes 64 KB, then an avg pool',
  },
  {
    name: 'net_tall',
    shape: [1, 1, 256, 256],
    model: seq(() => ({ c: new nn.Conv2d(1, 2, 3, { padding: 1 }) })),
    layer: '',
    about: 'a 3×3 conv on 256×256: the plan passes 640 KB of SRAM',
  },
  { name: 'net_lstm', shape: [1, 16, 20], model: () => new LstmNet(), layer: '', about: 'Conv1d, LSTM, Linear on every step' },
  {
    name: 'net_conv1d_groups',
    shape: [1, 16, 50],
    model: seq(() => ({
      c: new nn.Conv1d(16, 32, 3, { padding: 1, groups: 4 }),
      d: new nn.Conv1d(32, 32, 5, { padding: 2, groups: 32 }),
      r: new nn.ReLU(),
    })),
    layer: '',
    about: 'a grouped and a depthwise Conv1d',
  },
  { name: 'net_two_adds', shape: [1, 4, 16, 16], model: () => new TwoAdd(), layer: '', about: 'two residual adds, a transposed conv' },
  // found by random networks against tpacker: what stays float after init is refused
  {
    name: 'pool_on_input',
    shape: [1, 2, 8, 8],
    model: seq(() => ({ pool: new nn.MaxPool2d(2), conv: new nn.Conv2d(2, 2, 3, { padding: 1 }) })),
    layer: 'pool',
    about: 'a MaxPool on the float input (ops/Pool.py:68: int8 only)',
  },
  {
    name: 'add_of_input',
    shape: [1, 1, 8, 8],
    model: () => new AddInput(),
    layer: '',
    about: 'conv(x) + x: the float input stays float, an Add',
  },
];

/** A case's fixed-stage model: seeded weights, traced, initialized, calibrated on seeded batches, in eval. */
export function fixedChipCase(c: ChipCase): nn.Module {
  manualSeed(2000 + CHIP_CASES.indexOf(c));
  const m = c.model();
  linger.traceLayers(m, m, randn(c.shape));
  linger.init(m, c.init ?? {});
  linger.calibrate(
    m,
    Array.from({ length: 2 }, () => randn([2, ...c.shape.slice(1)])),
  );
  m.eval();
  return m;
}

/** A case's float model (seeded as the fixed one). */
export function floatChipCase(c: ChipCase): nn.Module {
  manualSeed(2000 + CHIP_CASES.indexOf(c));
  return c.model();
}
