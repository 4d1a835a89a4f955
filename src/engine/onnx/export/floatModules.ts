// Export of the float modules (every stage; in a fixed model, the layers left in float): one
// lowering per module class, looked up by the nearest registered class (nn/classTable.ts), so a
// user's subclass of nn.Conv2d exports as a Conv. linger's Int layers are in linger/ops/<op>/.
import { Identity, ReLU, ReLU6, Sigmoid, Tanh } from '../../nn/activation';
import { BatchNormNd } from '../../nn/batchnorm';
import { ClassTable, ModuleClass } from '../../nn/classTable';
import { ConvNd } from '../../nn/conv';
import { Sequential } from '../../nn/container';
import { pair } from '../../nn/layout';
import { Linear } from '../../nn/linear';
import { Dropout, Flatten, Softmax } from '../../nn/misc';
import { Module, Parameter } from '../../nn/module';
import { AdaptiveAvgPool2d, AvgPool2d, MaxPool2d } from '../../nn/pooling';
import { GRU, LSTM } from '../../nn/recurrent';
import { Embedding, LayerNorm } from '../../nn/sequence';
import { EmptyBatchNorm, NormalizeConvBNBase } from '../../linger/convbn';
import { normAxis, Tensor } from '../../tensor';
import type { CapturedCall } from '../capture';
import { DT } from '../proto';
import type { ExportContext, ExportValue } from './context';
import { adaptiveAvgPool, convNode, linearNode, logicalValues } from './nodes';

/** What a float module's lowering gets: the call's input, its graph value, the value to compute on. */
interface FloatIO {
  x: Tensor;
  /** the input's graph value as it is */
  xin: ExportValue;
  /** the value to compute on: int8 codes for a module that keeps them (thinker), else a float view */
  xs: ExportValue;
  /** a result carrying the input's int8 scale, if it had one */
  carry(name: string): ExportValue;
  /** the module's normalize output clamp, when it has one */
  clip(name: string, s: { normalizeData?: number | null }): string;
}

interface FloatLowering {
  /** ops that keep int8 codes as they are in the thinker dialect (ReLU, max-pool, flatten, identity) */
  keepsCodes?: boolean;
  /** a narrower test than the class (a Sequential only when it has no children) */
  accepts?(m: Module): boolean;
  lower(ctx: ExportContext, c: CapturedCall, m: Module, scope: string, io: FloatIO): void;
}

const FLOAT = new ClassTable<FloatLowering>();
function def<M extends Module>(
  classes: (abstract new (...args: never[]) => M)[],
  l: Omit<FloatLowering, 'lower'> & { lower(ctx: ExportContext, c: CapturedCall, m: M, scope: string, io: FloatIO): void },
): void {
  for (const cls of classes) FLOAT.set(cls as unknown as ModuleClass, l as FloatLowering);
}

/** True for a module the exporter writes as one call (a layer, not the ops it runs). */
export function isPlainLayer(m: Module): boolean {
  const l = FLOAT.lookup(m);
  return !!l && (!l.accepts || l.accepts(m));
}

export function lowerFloatModule(ctx: ExportContext, c: CapturedCall, m: Module, scope: string): void {
  const l = FLOAT.lookup(m);
  if (!l || (l.accepts && !l.accepts(m))) throw new Error(`no ONNX export for a ${m.typeName()} module`);
  const g = ctx.g;
  const x = c.inputs[0] as Tensor;
  const xin = ctx.value(x);
  const xs = l.keepsCodes && ctx.mode === 'thinker' ? xin : { name: ctx.floatName(xin, scope) };
  const carry = (name: string): ExportValue => ({ name, ...(xs.int8Scale !== undefined ? { int8Scale: xs.int8Scale } : {}) });
  const clip = (name: string, s: { normalizeData?: number | null }) =>
    s.normalizeData === null || s.normalizeData === undefined
      ? name
      : g.op('Clip', [name, g.scalar(-s.normalizeData), g.scalar(s.normalizeData)], `${scope}/Clip`);
  l.lower(ctx, c, m, scope, { x, xin, xs, carry, clip });
}

def([Identity, Dropout, EmptyBatchNorm], { keepsCodes: true, lower: (ctx, c, _m, _s, io) => ctx.out(c, io.xs) });
def([Sequential], { keepsCodes: true, accepts: (m) => m.children().length === 0, lower: (ctx, c, _m, _s, io) => ctx.out(c, io.xs) });
def([LSTM], { lower: (ctx, c, m, scope, io) => recurrent(ctx, c, m, io.xs.name, scope, true) });
def([GRU], { lower: (ctx, c, m, scope, io) => recurrent(ctx, c, m, io.xs.name, scope, false) });
def([Embedding], {
  lower: (ctx, c, m, scope, io) => {
    const w = ctx.g.initializer(`${c.target}.weight`, [m.numEmbeddings, m.embeddingDim], DT.FLOAT, m.weight.dataSync());
    ctx.out(c, { name: ctx.g.op('Gather', [w, io.xin.name], `${scope}/Gather`, { axis: 0 }) });
  },
});
def([LayerNorm], {
  lower: (ctx, c, m, scope, { x, xs }) => {
    const g = ctx.g;
    // opset 17 has LayerNormalization; below it, PyTorch's decomposition
    const k = m.normalizedShape.length;
    const axes = Array.from({ length: k }, (_, i) => x.rank - k + i);
    const n = m.normalizedShape.reduce((a, b) => a * b, 1);
    const w = m.weight ? g.initializer(`${c.target}.weight`, m.normalizedShape, DT.FLOAT, m.weight.dataSync()) : null;
    const b = m.bias ? g.initializer(`${c.target}.bias`, m.normalizedShape, DT.FLOAT, m.bias.dataSync()) : null;
    if (ctx.opset >= 17) {
      const ins = [
        xs.name,
        w ?? g.initializer(`${c.target}.weight`, m.normalizedShape, DT.FLOAT, new Float32Array(n).fill(1)),
        ...(b ? [b] : []),
      ];
      return ctx.out(c, { name: g.op('LayerNormalization', ins, `${scope}/LayerNormalization`, { axis: -k, epsilon: { float: m.eps } }) });
    }
    const mean = ctx.reduceNode('ReduceMean', xs.name, axes, true, scope);
    const d = g.op('Sub', [xs.name, mean], `${scope}/Sub`);
    const variance = ctx.reduceNode('ReduceMean', g.op('Mul', [d, d], `${scope}/Mul`), axes, true, scope);
    let y = g.op('Div', [d, g.op('Sqrt', [g.op('Add', [variance, g.scalar(m.eps)], `${scope}/Add`)], `${scope}/Sqrt`)], `${scope}/Div`);
    if (w) y = g.op('Mul', [y, w], `${scope}/Mul`);
    if (b) y = g.op('Add', [y, b], `${scope}/Add`);
    ctx.out(c, { name: y });
  },
});
def<NormalizeConvBNBase>([NormalizeConvBNBase as never], {
  lower: (ctx, c, m, scope, { xs, clip }) => {
    const { w, b } = m.foldedWithRunningStats();
    const wv = logicalValues(w, m.conv.weight.perm);
    const bv = logicalValues(b, null);
    ctx.out(c, { name: clip(convNode(ctx.g, xs.name, m.conv, wv, bv.values, scope, c.target), m) });
  },
});
def<ConvNd>([ConvNd as never], {
  lower: (ctx, c, m, scope, { xs, clip }) => {
    const wv = logicalValues(m.effectiveWeight(), m.weight.perm);
    const b = m.effectiveBias();
    const y = convNode(ctx.g, xs.name, m, wv, b ? logicalValues(b, null).values : null, scope, c.target);
    ctx.out(c, { name: clip(y, m as { normalizeData?: number | null }) });
  },
});
def([Linear], {
  lower: (ctx, c, m, scope, { x, xs, clip }) => {
    const wv = logicalValues(m.effectiveWeight(), m.weight.perm);
    const b = m.effectiveBias();
    const y = linearNode(ctx.g, xs.name, x.rank, wv, b ? logicalValues(b, null).values : null, scope, c.target);
    ctx.out(c, { name: clip(y, m as { normalizeData?: number | null }) });
  },
});
def<BatchNormNd>([BatchNormNd as never], {
  lower: (ctx, c, m, scope, { xs, clip }) => {
    const g = ctx.g;
    if (!m.trackRunningStats)
      throw new Error(
        'a BatchNorm without running statistics normalizes with batch statistics in eval; ONNX export needs running statistics',
      );
    const n = m.numFeatures;
    const w = m.effectiveWeight(),
      b = m.effectiveBias();
    const inits = [
      w
        ? g.initializer(`${c.target}.weight`, [n], DT.FLOAT, logicalValues(w, null).values)
        : g.initializer(`${c.target}.weight`, [n], DT.FLOAT, new Float32Array(n).fill(1)),
      b
        ? g.initializer(`${c.target}.bias`, [n], DT.FLOAT, logicalValues(b, null).values)
        : g.initializer(`${c.target}.bias`, [n], DT.FLOAT, new Float32Array(n)),
      g.initializer(`${c.target}.running_mean`, [n], DT.FLOAT, m.running_mean!.dataSync()),
      g.initializer(`${c.target}.running_var`, [n], DT.FLOAT, m.running_var!.dataSync()),
    ];
    const y = g.op('BatchNormalization', [xs.name, ...inits], `${scope}/BatchNormalization`, { epsilon: { float: m.eps } });
    ctx.out(c, { name: clip(y, m as { normalizeData?: number | null }) });
  },
});
def([ReLU], { keepsCodes: true, lower: (ctx, c, _m, scope, io) => ctx.out(c, io.carry(ctx.g.op('Relu', [io.xs.name], `${scope}/Relu`))) });
def([ReLU6], {
  lower: (ctx, c, _m, scope, { xs }) =>
    ctx.out(c, { name: ctx.g.op('Clip', [xs.name, ctx.g.scalar(0), ctx.g.scalar(6)], `${scope}/Clip`) }),
});
def([Sigmoid], { lower: (ctx, c, _m, scope, { xs }) => ctx.out(c, { name: ctx.g.op('Sigmoid', [xs.name], `${scope}/Sigmoid`) }) });
def([Tanh], { lower: (ctx, c, _m, scope, { xs }) => ctx.out(c, { name: ctx.g.op('Tanh', [xs.name], `${scope}/Tanh`) }) });
def([Softmax], {
  lower: (ctx, c, m, scope, { x, xs }) => {
    const dim = m.dim ?? (x.rank <= 1 || x.rank === 3 ? 0 : 1);
    ctx.out(c, { name: ctx.g.op('Softmax', [xs.name], `${scope}/Softmax`, { axis: normAxis(dim, x.rank) }) });
  },
});
def([Flatten], {
  keepsCodes: true,
  lower: (ctx, c, m, scope, { x, xs, carry }) => {
    const a = normAxis(m.startDim, x.rank),
      e = normAxis(m.endDim, x.rank);
    if (a === 1 && e === x.rank - 1) return ctx.out(c, carry(ctx.g.op('Flatten', [xs.name], `${scope}/Flatten`, { axis: 1 })));
    ctx.out(c, carry(ctx.reshapeNode(xs.name, x.shape, c.outputs[0].shape, scope)));
  },
});
def([MaxPool2d], {
  keepsCodes: true,
  lower: (ctx, c, m, scope, { xs, carry }) => {
    const k = pair(m.kernelSize, 'kernel_size'),
      s = pair(m.stride, 'stride'),
      p = pair(m.padding, 'padding');
    // ceil_mode only when set (ONNX's default is 0; linger's export writes none)
    ctx.out(
      c,
      carry(
        ctx.g.op('MaxPool', [xs.name], `${scope}/MaxPool`, {
          kernel_shape: k,
          strides: s,
          pads: [p[0], p[1], p[0], p[1]],
          ...(m.ceilMode ? { ceil_mode: 1 } : {}),
        }),
      ),
    );
  },
});
def([AvgPool2d], {
  lower: (ctx, c, m, scope, { xs }) => {
    const k = pair(m.kernelSize, 'kernel_size'),
      s = pair(m.stride, 'stride'),
      p = pair(m.padding, 'padding');
    ctx.out(c, {
      name: ctx.g.op('AveragePool', [xs.name], `${scope}/AveragePool`, {
        kernel_shape: k,
        strides: s,
        pads: [p[0], p[1], p[0], p[1]],
        count_include_pad: 1,
      }),
    });
  },
});
def([AdaptiveAvgPool2d], {
  lower: (ctx, c, m, scope, { x, xs }) =>
    ctx.out(c, { name: adaptiveAvgPool(ctx.g, xs.name, x.shape, pair(m.outputSize, 'output_size'), scope) }),
});

/**
 * nn.LSTM / nn.GRU as ONNX's LSTM / GRU, one node per layer (both directions in it): PyTorch's
 * gate rows reordered to ONNX's (LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h with
 * linear_before_reset = 1, PyTorch's n-gate), biases as [W_b, R_b]; layers chained through
 * Y [T, D, B, H] → [T, B, D·H].
 */
function recurrent(ctx: ExportContext, c: CapturedCall, m: LSTM | GRU, x: string, scope: string, isLstm: boolean): void {
  const g = ctx.g;
  if (c.inputs[0] instanceof Tensor && c.inputs[0].rank !== 3)
    throw new Error(`${m.typeName()}: export needs a batched input [seq, batch, features] (or [batch, seq, features] with batchFirst)`);
  const H = m.hiddenSize,
    D = m.directions,
    G = isLstm ? 4 : 3;
  const order = isLstm ? [0, 3, 1, 2] : [1, 0, 2];
  const rows = (v: Float32Array | Int32Array, cols: number) => {
    const out = new Float32Array(G * H * cols);
    order.forEach((src, dst) => out.set(v.subarray(src * H * cols, (src + 1) * H * cols), dst * H * cols));
    return out;
  };
  const param = (k: string) => (m as unknown as Record<string, Parameter | undefined>)[k];
  const [h0, c0] = c.inputs.slice(1).map((t) => ctx.value(t).name);
  let inp = m.batchFirst ? g.op('Transpose', [x], `${scope}/Transpose`, { perm: [1, 0, 2] }) : x;
  const hs: string[] = [],
    cs: string[] = [];
  for (let l = 0; l < m.numLayers; l++) {
    const sfx = D === 2 ? ['', '_reverse'] : [''];
    const inF = l === 0 ? m.inputSize : H * D;
    const W: Float32Array[] = [],
      R: Float32Array[] = [],
      B: Float32Array[] = [];
    for (const d of sfx) {
      const wih = param(`weight_ih_l${l}${d}`)!,
        whh = param(`weight_hh_l${l}${d}`)!;
      W.push(rows(logicalValues(wih.raw, wih.perm).values, inF));
      R.push(rows(logicalValues(whh.raw, whh.perm).values, H));
      const bih = param(`bias_ih_l${l}${d}`),
        bhh = param(`bias_hh_l${l}${d}`);
      B.push(bih ? rows(bih.dataSync(), 1) : new Float32Array(G * H), bhh ? rows(bhh.dataSync(), 1) : new Float32Array(G * H));
    }
    const joined = (parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      parts.reduce((off, p) => {
        out.set(p, off);
        return off + p.length;
      }, 0);
      return out;
    };
    const init = (v: string | undefined, what: string) =>
      v === undefined
        ? ''
        : g.op(
            'Slice',
            [
              v,
              g.initializer(`${c.target}.${what}_l${l}_start`, [1], DT.INT64, [l * D]),
              g.initializer(`${c.target}.${what}_l${l}_end`, [1], DT.INT64, [(l + 1) * D]),
              g.initializer(`${c.target}.${what}_l${l}_axes`, [1], DT.INT64, [0]),
            ],
            `${scope}/Slice`,
          );
    const ins = [
      inp,
      g.initializer(`${c.target}.W_l${l}`, [D, G * H, inF], DT.FLOAT, joined(W)),
      g.initializer(`${c.target}.R_l${l}`, [D, G * H, H], DT.FLOAT, joined(R)),
      g.initializer(`${c.target}.B_l${l}`, [D, 2 * G * H], DT.FLOAT, joined(B)),
      '',
      init(h0, 'h0'),
      ...(isLstm ? [init(c0, 'c0')] : []),
    ];
    while (ins[ins.length - 1] === '') ins.pop();
    const attrs = { hidden_size: H, direction: D === 2 ? 'bidirectional' : 'forward', ...(isLstm ? {} : { linear_before_reset: 1 }) };
    const outs = g.add(isLstm ? 'LSTM' : 'GRU', ins, `${scope}/${isLstm ? 'LSTM' : 'GRU'}`, attrs, { outputs: isLstm ? 3 : 2 });
    hs.push(outs[1]);
    if (isLstm) cs.push(outs[2]);
    // Y [T, D, B, H] → [T, B, D·H]
    const t = g.op('Transpose', [outs[0]], `${scope}/Transpose`, { perm: [0, 2, 1, 3] });
    inp = g.op('Reshape', [t, g.initializer(`${c.target}.shape_l${l}`, [3], DT.INT64, [0, 0, -1])], `${scope}/Reshape`);
  }
  const y = m.batchFirst ? g.op('Transpose', [inp], `${scope}/Transpose`, { perm: [1, 0, 2] }) : inp;
  const cat = (xs: string[]) => (xs.length === 1 ? xs[0] : g.op('Concat', xs, `${scope}/Concat`, { axis: 0 }));
  ctx.out(c, { name: y }, 0);
  ctx.out(c, { name: cat(hs) }, 1);
  if (isLstm) ctx.out(c, { name: cat(cs) }, 2);
}
