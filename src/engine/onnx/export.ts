// ONNX export at every stage (SPEC §7). One eval forward pass is recorded (capture.ts) and each
// call is lowered to ONNX nodes:
// - float and traced stages: standard ops (a fused ConvBN is its folded conv; normalize clamps
//   are Clip);
// - fixed stage, dialect 'qdq': standard ops only, computing exactly what the engine's integer
//   eval computes (see lowerWeightedInt for the arithmetic and why it is exact);
// - fixed stage, dialect 'thinker': linger's custom `thinker` domain (Quant, Conv2dInt, …,
//   Dequant) with int8 weights and int32 biases, for the chip toolchain.
import * as path from 'node:path';
import { tf } from '../backend/tf';
import { ReLU, ReLU6, Sigmoid, Tanh, Identity } from '../nn/activation';
import { BatchNormNd } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvNd, ConvTranspose2d, explicitPads } from '../nn/conv';
import { Sequential } from '../nn/container';
import { pair } from '../nn/layout';
import { Linear } from '../nn/linear';
import { Dropout, Flatten, Softmax } from '../nn/misc';
import { Module, Parameter } from '../nn/module';
import { GRU, LSTM } from '../nn/recurrent';
import { GRUInt, LSTMInt } from '../linger/recurrentInt';
import { Embedding, LayerNorm } from '../nn/sequence';
import { AdaptiveAvgPool2d, AvgPool2d, MaxPool2d } from '../nn/pooling';
import { EmptyBatchNorm, NormalizeConvBNBase } from '../linger/convbn';
import { clampSym } from '../linger/normalize';
import {
  AvgPool2dInt, BatchNormInt, Conv1dInt, Conv2dInt, ConvTranspose2dInt, IQAdd, IQCat, isIntLayer, LinearInt,
} from '../linger/intLayers';
import { floorLog2, maxAbs, qmax, quantizeCodes, trainScale } from '../quant/qvalue';
import { inverse, isIdentity, normAxis, Tensor, identity } from '../tensor';
import { Capture, CapturedCall, captureForExport } from './capture';
import { isIqOp } from '../linger/iqOps';
import { IqLowering, lowerIqOp } from './iqOpsExport';
import { lowerRecurrentInt } from './recurrentIntExport';
import { GraphBuilder } from './graphBuilder';
import { isSequenceInt, lowerSequenceInt, SeqLowering } from './sequenceIntExport';
import { DT, encodeModel, onnx, valueInfo, writeFileAtomic, THINKER, PLATFORM } from './proto';

export type OnnxDialect = 'qdq' | 'thinker';

export interface ExportOptions {
  /** fixed-stage models: 'qdq' (standard ONNX, bit-exact in onnxruntime; default) or 'thinker' */
  dialect?: OnnxDialect;
  /** the default ONNX opset (13–21; default 13) */
  opset?: number;
  inputName?: string;
  outputName?: string;
  /** export dim 0 of the input (and of the outputs that carry it) as a symbolic batch size (default true) */
  dynamicBatch?: boolean;
}

/** What goes wrong exporting a model: names the call (module path or op) that could not be exported. */
export class OnnxExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxExportError';
  }
}


/**
 * linger.exportOnnx: records one eval forward pass of `model` on `dummyInput` and writes it as an
 * ONNX model to `file` (atomically: temp file, fsync, rename). Returns the file path.
 */
export async function exportOnnx(model: Module, dummyInput: Tensor, file: string, opts: ExportOptions = {}): Promise<string> {
  const bytes = encodeModel(buildOnnxModel(model, dummyInput, opts));
  writeFileAtomic(file, bytes);
  return path.resolve(file);
}

/** The ONNX model exportOnnx writes, as a protobuf object (tests and tools inspect it). */
export function buildOnnxModel(model: Module, dummyInput: Tensor, opts: ExportOptions = {}): onnx.IModelProto {
  const opset = opts.opset ?? 13;
  if (!Number.isInteger(opset) || opset < 13 || opset > 21) throw new OnnxExportError(`exportOnnx: opset ${opset} is not supported (13 to 21)`);
  const dialect = opts.dialect ?? 'qdq';
  if (dialect !== 'qdq' && dialect !== 'thinker') throw new OnnxExportError(`exportOnnx: unknown dialect '${String(dialect)}' (qdq or thinker)`);
  if (!(dummyInput instanceof Tensor)) throw new OnnxExportError('exportOnnx: dummyInput must be a Tensor');
  if (dummyInput.dtype !== 'float32' && dummyInput.dtype !== 'int32') throw new OnnxExportError('exportOnnx: dummyInput must be a float32 tensor (or int32 indices)');
  const fixed = model.modules().some((m) => isIntLayer(m));
  if (dialect === 'thinker' && !fixed) {
    throw new OnnxExportError("exportOnnx: the 'thinker' dialect describes fixed-point layers; run linger.init (and QAT or calibrate) first, or export with the default dialect");
  }
  let graph!: onnx.IGraphProto;
  tf.tidy(() => {
    const exportable = (m: Module) => isPlainLayer(m) || isIntLayer(m);
    const cap = captureForExport(model, dummyInput, exportable);
    // a second pass on other data tells constants made in forward from values computed by ops
    // the engine does not record (argmax, eq, casts), which would otherwise freeze into constants
    // (indices: the same values in reverse order, so they stay valid)
    const other = dummyInput.dtype === 'int32'
      ? new Tensor(tf.reshape(tf.reverse(tf.reshape(dummyInput.logical(), [-1])), dummyInput.shape))
      : new Tensor(tf.mul(tf.sin(tf.add(tf.mul(dummyInput.logical(), 12.9898), 0.7)), 2)); // not monotonic: argmax changes too
    checkUnrecorded(model, cap, captureForExport(model, other, exportable));
    const lowering = new Lowering(model, cap, { opset, dialect: fixed ? dialect : 'float', dynamicBatch: opts.dynamicBatch ?? true });
    graph = lowering.run(opts.inputName ?? 'input', opts.outputName ?? 'output');
  });
  const domains = [{ domain: '', version: opset }];
  if (fixed && dialect === 'thinker') domains.push({ domain: THINKER, version: 1 });
  return {
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : opset >= 15 ? 8 : 7,
    producerName: 'linger-studio',
    producerVersion: '0.1.0',
    opsetImport: domains,
    graph,
    metadataProps: [{ key: 'linger.stage', value: model.stage() }, { key: 'linger.dialect', value: fixed ? dialect : 'float' }],
  };
}

// ---- helpers --------------------------------------------------------------------------------

/** Logical (PyTorch-order) values of a physical tf tensor stored in layout `perm`. */
function logicalValues(raw: tf.Tensor, perm: readonly number[] | null): { dims: number[]; values: Float32Array | Int32Array } {
  const t = new Tensor(raw, perm);
  return { dims: t.shape, values: t.dataSync() };
}

/** PyTorch's ONNX scope names: module `layer1.0.conv1` is `/layer1/layer1.0/conv1`. */
export function scopeName(modulePath: string): string {
  if (!modulePath) return '';
  const parts = modulePath.split('.');
  return parts.map((p, i) => '/' + (/^\d+$/.test(p) && i > 0 ? `${parts[i - 1]}.${p}` : p)).join('');
}

const isPlainLayer = (m: Module): boolean =>
  m instanceof ConvNd || m instanceof Linear || m instanceof BatchNormNd || m instanceof NormalizeConvBNBase || m instanceof EmptyBatchNorm ||
  m instanceof ReLU || m instanceof ReLU6 || m instanceof Sigmoid || m instanceof Tanh || m instanceof Identity || m instanceof Dropout ||
  m instanceof LSTM || m instanceof GRU || m instanceof LayerNorm || m instanceof Embedding ||
  m instanceof Flatten || m instanceof Softmax || m instanceof MaxPool2d || m instanceof AvgPool2d || m instanceof AdaptiveAvgPool2d ||
  m instanceof AvgPool2dInt || m instanceof IQAdd || m instanceof IQCat || (m instanceof Sequential && m.children().length === 0);

type Mode = 'float' | 'qdq' | 'thinker';

/** A value in the graph: its name and, in the thinker dialect, the scale of its int8 codes. */
interface Value { name: string; int8Scale?: number }

class Lowering {
  private readonly g = new GraphBuilder();
  private readonly values = new Map<Tensor, Value>();
  private readonly byRaw = new Map<tf.Tensor, Tensor[]>();
  private readonly paramNames = new Map<tf.Tensor, string>();
  private readonly dequantized = new Map<string, string>();
  private readonly mode: Mode;
  private readonly opset: number;
  private readonly dynamicBatch: boolean;
  private readonly batch: number;
  private readonly iqShared = new Map<string, string>();

  constructor(private readonly model: Module, private readonly cap: Capture, o: { opset: number; dialect: 'qdq' | 'thinker' | 'float'; dynamicBatch: boolean }) {
    this.mode = o.dialect;
    this.opset = o.opset;
    this.dynamicBatch = o.dynamicBatch && cap.input.rank >= 1;
    this.batch = cap.input.shape[0];
    for (const [k, p] of [...model.namedParameters(), ...model.namedBuffers()]) this.paramNames.set(p.raw, k);
  }

  run(inputName: string, outputName: string): onnx.IGraphProto {
    const { cap, g } = this;
    g.reserve(inputName);
    g.reserve(outputName);
    this.setValue(cap.input, { name: inputName });
    cap.calls.forEach((c, i) => {
      try {
        this.lower(c);
      } catch (e) {
        if (e instanceof OnnxExportError) throw e;
        throw new OnnxExportError(`exportOnnx: ${describe(c, i)}: ${(e as Error).message}`);
      }
    });
    // graph outputs: dequantized floats, under their public names
    const outs: onnx.IValueInfoProto[] = [];
    const taken = new Set<string>([inputName]);
    cap.outputs.forEach((t, i) => {
      let name = this.floatName(this.valueOf(t), '');
      const want = i === 0 ? outputName : `${outputName}_${i}`;
      if (taken.has(name) || !g.nodes.some((n) => n.output?.includes(name))) {
        name = g.op('Identity', [name], `/Identity_${want}`);
      }
      g.rename(name, want);
      for (const v of this.values.values()) if (v.name === name) v.name = want;
      for (const [k, d] of this.dequantized) if (d === name) this.dequantized.set(k, want);
      taken.add(want);
      outs.push(valueInfo(want, DT.FLOAT, this.dims(t.shape)));
    });
    return {
      name: this.model.typeName(),
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(inputName, cap.input.dtype === 'int32' ? DT.INT32 : DT.FLOAT, this.dims(cap.input.shape))],
      output: outs,
    };
  }

  /** Static dims, with dim 0 symbolic when it is the batch. */
  private dims(shape: number[]): (number | string)[] {
    return shape.map((d, i) => (i === 0 && this.dynamicBatch && d === this.batch ? 'batch' : d));
  }

  private setValue(t: Tensor, v: Value): void {
    this.values.set(t, v);
    this.byRaw.set(t.raw, [...(this.byRaw.get(t.raw) ?? []), t]);
  }

  /** The graph value of a tensor: produced by an earlier call, an alias of one, or a constant. */
  private valueOf(t: Tensor | number): Value {
    if (typeof t === 'number') return { name: this.g.scalar(t) };
    const v = this.values.get(t);
    if (v) return v;
    // detach() and friends: a new Tensor object over the same data and layout
    const alias = this.byRaw.get(t.raw)?.find((a) => (a.perm ?? []).join() === (t.perm ?? []).join());
    if (alias) return this.values.get(alias)!;
    const { dims, values } = logicalValues(t.raw, t.perm);
    const base = this.paramNames.get(t.raw) ?? 'const';
    const name = this.g.initializer(base, dims, t.dtype === 'int32' ? DT.INT32 : DT.FLOAT, values);
    const value = { name };
    this.setValue(t, value);
    return value;
  }

  /** A float view of a value (thinker int8 values get a Dequant, once). */
  private floatName(v: Value, where: string): string {
    if (v.int8Scale === undefined) return v.name;
    let d = this.dequantized.get(v.name);
    if (!d) {
      d = this.g.op('Dequant', [v.name], `${where}/Dequant`, { scale_x: { float: v.int8Scale } }, THINKER);
      this.dequantized.set(v.name, d);
    }
    return d;
  }

  private out(c: CapturedCall, v: Value, i = 0): void {
    this.setValue(c.outputs[i], v);
  }

  // ---- dispatch -----------------------------------------------------------------------------
  private lower(c: CapturedCall): void {
    if (c.kind === 'op') return this.lowerOp(c);
    const m = c.module!;
    const scope = scopeName(c.target) || '';
    if (this.mode !== 'float' && isIntLayer(m)) {
      if (m instanceof Conv2dInt || m instanceof Conv1dInt || m instanceof ConvTranspose2dInt || m instanceof LinearInt) {
        return this.mode === 'qdq' ? this.qdqWeighted(c, m, scope) : this.thinkerWeighted(c, m, scope);
      }
      if (m instanceof BatchNormInt) return this.mode === 'qdq' ? this.qdqBatchNorm(c, m, scope) : this.thinkerBatchNorm(c, m, scope);
      if (m instanceof AvgPool2dInt) return this.mode === 'qdq' ? this.qdqAvgPool(c, m, scope) : this.thinkerAvgPool(c, m, scope);
      if (m instanceof IQAdd || m instanceof IQCat) return this.mode === 'qdq' ? this.qdqElementwise(c, m, scope) : this.thinkerElementwise(c, m, scope);
      if (m instanceof GRUInt || m instanceof LSTMInt) return lowerRecurrentInt(this.iqLowering(), c, m, scope);
      if (isIqOp(m)) return lowerIqOp(this.iqLowering(), c, m, scope);
      if (isSequenceInt(m)) return lowerSequenceInt(this.seqLowering(), c, m, scope);
    }
    if (!isPlainLayer(m)) throw new Error(`no ONNX export for a ${m.typeName()} module`);
    this.lowerFloatModule(c, m, scope);
  }

  /**
   * nn.LSTM / nn.GRU as ONNX's LSTM / GRU, one node per layer (both directions in it): PyTorch's
   * gate rows reordered to ONNX's (LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h with
   * linear_before_reset = 1, PyTorch's n-gate), biases as [W_b, R_b]; layers chained through
   * Y [T, D, B, H] → [T, B, D·H].
   */
  private recurrent(c: CapturedCall, m: LSTM | GRU, x: string, scope: string): void {
    const g = this.g;
    const isLstm = m instanceof LSTM;
    if (c.inputs[0] instanceof Tensor && c.inputs[0].rank !== 3) throw new Error(`${m.typeName()}: export needs a batched input [seq, batch, features] (or [batch, seq, features] with batchFirst)`);
    const H = m.hiddenSize, D = m.directions, G = isLstm ? 4 : 3;
    const order = isLstm ? [0, 3, 1, 2] : [1, 0, 2];
    const rows = (v: Float32Array | Int32Array, cols: number) => {
      const out = new Float32Array(G * H * cols);
      order.forEach((src, dst) => out.set(v.subarray(src * H * cols, (src + 1) * H * cols), dst * H * cols));
      return out;
    };
    const param = (k: string) => (m as unknown as Record<string, Parameter | undefined>)[k];
    const [h0, c0] = c.inputs.slice(1).map((t) => this.valueOf(t).name);
    let inp = m.batchFirst ? g.op('Transpose', [x], `${scope}/Transpose`, { perm: [1, 0, 2] }) : x;
    const hs: string[] = [], cs: string[] = [];
    for (let l = 0; l < m.numLayers; l++) {
      const sfx = D === 2 ? ['', '_reverse'] : [''];
      const inF = l === 0 ? m.inputSize : H * D;
      const W: Float32Array[] = [], R: Float32Array[] = [], B: Float32Array[] = [];
      for (const d of sfx) {
        const wih = param(`weight_ih_l${l}${d}`)!, whh = param(`weight_hh_l${l}${d}`)!;
        W.push(rows(logicalValues(wih.raw, wih.perm).values, inF));
        R.push(rows(logicalValues(whh.raw, whh.perm).values, H));
        const bih = param(`bias_ih_l${l}${d}`), bhh = param(`bias_hh_l${l}${d}`);
        B.push(bih ? rows(bih.dataSync(), 1) : new Float32Array(G * H), bhh ? rows(bhh.dataSync(), 1) : new Float32Array(G * H));
      }
      const joined = (parts: Float32Array[]) => {
        const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
        parts.reduce((off, p) => { out.set(p, off); return off + p.length; }, 0);
        return out;
      };
      const init = (v: string | undefined, what: string) => (v === undefined ? '' :
        g.op('Slice', [v, g.initializer(`${c.target}.${what}_l${l}_start`, [1], DT.INT64, [l * D]), g.initializer(`${c.target}.${what}_l${l}_end`, [1], DT.INT64, [(l + 1) * D]),
          g.initializer(`${c.target}.${what}_l${l}_axes`, [1], DT.INT64, [0])], `${scope}/Slice`));
      const ins = [inp, g.initializer(`${c.target}.W_l${l}`, [D, G * H, inF], DT.FLOAT, joined(W)), g.initializer(`${c.target}.R_l${l}`, [D, G * H, H], DT.FLOAT, joined(R)),
        g.initializer(`${c.target}.B_l${l}`, [D, 2 * G * H], DT.FLOAT, joined(B)), '', init(h0, 'h0'), ...(isLstm ? [init(c0, 'c0')] : [])];
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
    this.out(c, { name: y }, 0);
    this.out(c, { name: cat(hs) }, 1);
    if (isLstm) this.out(c, { name: cat(cs) }, 2);
  }

  /** Float modules (all stages; in a fixed model these are the layers left in float). */
  private lowerFloatModule(c: CapturedCall, m: Module, scope: string): void {
    const g = this.g;
    const x = c.inputs[0] as Tensor;
    // ops that keep int8 codes as they are (thinker): ReLU, max-pool, flatten, identity
    const keepsCodes = m instanceof ReLU || m instanceof MaxPool2d || m instanceof Flatten || m instanceof Identity || m instanceof Dropout ||
      m instanceof EmptyBatchNorm || (m instanceof Sequential);
    const xin = this.valueOf(x);
    const xs = keepsCodes && this.mode === 'thinker' ? xin : { name: this.floatName(xin, scope) };
    const carry = (name: string): Value => ({ name, ...(xs.int8Scale !== undefined ? { int8Scale: xs.int8Scale } : {}) });
    const clip = (name: string, s: { normalizeData?: number | null }) =>
      s.normalizeData === null || s.normalizeData === undefined ? name : g.op('Clip', [name, g.scalar(-s.normalizeData), g.scalar(s.normalizeData)], `${scope}/Clip`);

    if (m instanceof Identity || m instanceof Dropout || m instanceof EmptyBatchNorm || m instanceof Sequential) {
      return this.out(c, xs);
    }
    if (m instanceof LSTM || m instanceof GRU) return this.recurrent(c, m, xs.name, scope);
    if (m instanceof Embedding) {
      const w = g.initializer(`${c.target}.weight`, [m.numEmbeddings, m.embeddingDim], DT.FLOAT, m.weight.dataSync());
      return this.out(c, { name: g.op('Gather', [w, xin.name], `${scope}/Gather`, { axis: 0 }) });
    }
    if (m instanceof LayerNorm) {
      // opset 17 has LayerNormalization; below it, PyTorch's decomposition
      const k = m.normalizedShape.length;
      const axes = Array.from({ length: k }, (_, i) => x.rank - k + i);
      const n = m.normalizedShape.reduce((a, b) => a * b, 1);
      const w = m.weight ? g.initializer(`${c.target}.weight`, m.normalizedShape, DT.FLOAT, m.weight.dataSync()) : null;
      const b = m.bias ? g.initializer(`${c.target}.bias`, m.normalizedShape, DT.FLOAT, m.bias.dataSync()) : null;
      if (this.opset >= 17) {
        const ins = [xs.name, w ?? g.initializer(`${c.target}.weight`, m.normalizedShape, DT.FLOAT, new Float32Array(n).fill(1)), ...(b ? [b] : [])];
        return this.out(c, { name: g.op('LayerNormalization', ins, `${scope}/LayerNormalization`, { axis: -k, epsilon: { float: m.eps } }) });
      }
      const mean = this.reduceNode('ReduceMean', xs.name, axes, true, scope);
      const d = g.op('Sub', [xs.name, mean], `${scope}/Sub`);
      const variance = this.reduceNode('ReduceMean', g.op('Mul', [d, d], `${scope}/Mul`), axes, true, scope);
      let y = g.op('Div', [d, g.op('Sqrt', [g.op('Add', [variance, g.scalar(m.eps)], `${scope}/Add`)], `${scope}/Sqrt`)], `${scope}/Div`);
      if (w) y = g.op('Mul', [y, w], `${scope}/Mul`);
      if (b) y = g.op('Add', [y, b], `${scope}/Add`);
      return this.out(c, { name: y });
    }
    if (m instanceof NormalizeConvBNBase) {
      const { w, b } = m.foldedWithRunningStats();
      const wv = logicalValues(w, m.conv.weight.perm);
      const bv = logicalValues(b, null);
      const y = this.convNode(xs.name, m.conv, wv, bv.values, scope, c.target);
      return this.out(c, { name: clip(y, m) });
    }
    if (m instanceof ConvNd) {
      const wv = logicalValues(m.effectiveWeight(), m.weight.perm);
      const b = m.effectiveBias();
      const y = this.convNode(xs.name, m, wv, b ? logicalValues(b, null).values : null, scope, c.target);
      return this.out(c, { name: clip(y, m as { normalizeData?: number | null }) });
    }
    if (m instanceof Linear) {
      const wv = logicalValues(m.effectiveWeight(), m.weight.perm);
      const b = m.effectiveBias();
      const y = this.linearNode(xs.name, x.rank, wv, b ? logicalValues(b, null).values : null, scope, c.target);
      return this.out(c, { name: clip(y, m as { normalizeData?: number | null }) });
    }
    if (m instanceof BatchNormNd) {
      if (!m.trackRunningStats) throw new Error('a BatchNorm without running statistics normalizes with batch statistics in eval; ONNX export needs running statistics');
      const n = m.numFeatures;
      const w = m.effectiveWeight(), b = m.effectiveBias();
      const inits = [
        w ? g.initializer(`${c.target}.weight`, [n], DT.FLOAT, logicalValues(w, null).values) : g.initializer(`${c.target}.weight`, [n], DT.FLOAT, new Float32Array(n).fill(1)),
        b ? g.initializer(`${c.target}.bias`, [n], DT.FLOAT, logicalValues(b, null).values) : g.initializer(`${c.target}.bias`, [n], DT.FLOAT, new Float32Array(n)),
        g.initializer(`${c.target}.running_mean`, [n], DT.FLOAT, m.running_mean!.dataSync()),
        g.initializer(`${c.target}.running_var`, [n], DT.FLOAT, m.running_var!.dataSync()),
      ];
      const y = g.op('BatchNormalization', [xs.name, ...inits], `${scope}/BatchNormalization`, { epsilon: { float: m.eps } });
      return this.out(c, { name: clip(y, m as { normalizeData?: number | null }) });
    }
    if (m instanceof ReLU) return this.out(c, carry(g.op('Relu', [xs.name], `${scope}/Relu`)));
    if (m instanceof ReLU6) return this.out(c, { name: g.op('Clip', [xs.name, g.scalar(0), g.scalar(6)], `${scope}/Clip`) });
    if (m instanceof Sigmoid) return this.out(c, { name: g.op('Sigmoid', [xs.name], `${scope}/Sigmoid`) });
    if (m instanceof Tanh) return this.out(c, { name: g.op('Tanh', [xs.name], `${scope}/Tanh`) });
    if (m instanceof Softmax) {
      const dim = m.dim ?? (x.rank <= 1 || x.rank === 3 ? 0 : 1);
      return this.out(c, { name: g.op('Softmax', [xs.name], `${scope}/Softmax`, { axis: normAxis(dim, x.rank) }) });
    }
    if (m instanceof Flatten) {
      const a = normAxis(m.startDim, x.rank), e = normAxis(m.endDim, x.rank);
      if (a === 1 && e === x.rank - 1) return this.out(c, carry(g.op('Flatten', [xs.name], `${scope}/Flatten`, { axis: 1 })));
      return this.out(c, carry(this.reshapeNode(xs.name, x.shape, c.outputs[0].shape, scope)));
    }
    if (m instanceof MaxPool2d) {
      const k = pair(m.kernelSize, 'kernel_size'), s = pair(m.stride, 'stride'), p = pair(m.padding, 'padding');
      return this.out(c, carry(g.op('MaxPool', [xs.name], `${scope}/MaxPool`, {
        kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]], ceil_mode: m.ceilMode ? 1 : 0,
      })));
    }
    if (m instanceof AvgPool2d) {
      const k = pair(m.kernelSize, 'kernel_size'), s = pair(m.stride, 'stride'), p = pair(m.padding, 'padding');
      return this.out(c, { name: g.op('AveragePool', [xs.name], `${scope}/AveragePool`, { kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]], count_include_pad: 1 }) });
    }
    if (m instanceof AdaptiveAvgPool2d) return this.out(c, { name: this.adaptiveAvgPool(xs.name, x.shape, pair(m.outputSize, 'output_size'), scope) });
    throw new Error(`no ONNX export for a ${m.typeName()} module`);
  }

  // ---- float building blocks ----------------------------------------------------------------

  /** Conv / ConvTranspose with constant weight (logical values) and bias. */
  private convNode(x: string, m: ConvNd, w: { dims: number[]; values: ArrayLike<number> }, b: ArrayLike<number> | null, scope: string, path: string,
    dataType: number = DT.FLOAT, wName = 'weight', bName = 'bias'): string {
    const g = this.g;
    const ins = [x, g.initializer(`${path}.${wName}`, w.dims, dataType, w.values)];
    if (b) ins.push(g.initializer(`${path}.${bName}`, [b.length], dataType, b));
    return g.op(m instanceof ConvTranspose2d ? 'ConvTranspose' : 'Conv', ins, `${scope}/${m instanceof ConvTranspose2d ? 'ConvTranspose' : 'Conv'}`, convAttrs(m));
  }

  /** Linear: Gemm for 2-d inputs, else MatMul with the transposed weight (+ Add). */
  private linearNode(x: string, rank: number, w: { dims: number[]; values: ArrayLike<number> }, b: ArrayLike<number> | null, scope: string, path: string,
    wName = 'weight', bName = 'bias'): string {
    const g = this.g;
    if (rank === 2) {
      const ins = [x, g.initializer(`${path}.${wName}`, w.dims, DT.FLOAT, w.values)];
      if (b) ins.push(g.initializer(`${path}.${bName}`, [b.length], DT.FLOAT, b));
      return g.op('Gemm', ins, `${scope}/Gemm`, { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
    }
    const [out, inF] = w.dims;
    const wt = new Float32Array(out * inF);
    for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) wt[i * out + o] = w.values[o * inF + i];
    let y = g.op('MatMul', [x, g.initializer(`${path}.${wName}_t`, [inF, out], DT.FLOAT, wt)], `${scope}/MatMul`);
    if (b) y = g.op('Add', [y, g.initializer(`${path}.${bName}`, [b.length], DT.FLOAT, b)], `${scope}/Add`);
    return y;
  }

  /** Reshape to the traced output shape; dim 0 copies the input's when it is the batch. */
  private reshapeNode(x: string, inShape: number[], outShape: number[], scope: string, asked?: number[]): string {
    const infer = this.dynamicBatch && asked?.length === outShape.length ? asked.indexOf(-1) : -1;
    const target = outShape.map((d, i) => (i === infer ? -1 : i === 0 && this.dynamicBatch && inShape.length > 0 && inShape[0] === d && d === this.batch ? 0 : d));
    return this.g.op('Reshape', [x, this.g.initializer('shape', [target.length], DT.INT64, target)], `${scope}/Reshape`);
  }

  private adaptiveAvgPool(x: string, inShape: number[], out: [number, number], scope: string): string {
    const [, , h, w] = inShape;
    if (out[0] === 1 && out[1] === 1) return this.g.op('GlobalAveragePool', [x], `${scope}/GlobalAveragePool`);
    if (h % out[0] === 0 && w % out[1] === 0) {
      const k = [h / out[0], w / out[1]];
      return this.g.op('AveragePool', [x], `${scope}/AveragePool`, { kernel_shape: k, strides: k });
    }
    throw new Error(`adaptive average pooling ${h}×${w} → ${out.join('×')} has uneven bins, which ONNX pooling cannot express`);
  }

  private reduceNode(op: string, x: string, axes: number[] | null, keep: boolean, scope: string): string {
    const g = this.g;
    const attrs: Record<string, number | number[]> = { keepdims: keep ? 1 : 0 };
    const asInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    const ins = [x];
    if (axes) {
      if (asInput) ins.push(g.initializer('axes', [axes.length], DT.INT64, axes));
      else attrs.axes = axes;
    }
    return g.op(op, ins, `${scope}/${op}`, attrs);
  }

  // ---- functional and tensor ops --------------------------------------------------------------
  private lowerOp(c: CapturedCall): void {
    const g = this.g;
    const op = c.target;
    const scope = '';
    const inT = c.inputs;
    const x0 = inT[0];
    const f = (i: number) => this.floatName(this.valueOf(inT[i]), `/${op}`);
    const outT = c.outputs[0];
    const single = (type: string, attrs: Record<string, number | number[]> = {}) => this.out(c, { name: g.op(type, [f(0)], `${scope}/${type}`, attrs) });
    const binary: Record<string, string> = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div' };
    const unary: Record<string, string> = { neg: 'Neg', abs: 'Abs', exp: 'Exp', log: 'Log', sqrt: 'Sqrt', relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh' };
    if (binary[op]) return this.out(c, { name: g.op(binary[op], [f(0), f(1)], `/${binary[op]}`) });
    if (op === 'relu' && this.mode === 'thinker') {
      const v = this.valueOf(x0);
      return this.out(c, { name: g.op('Relu', [v.name], '/Relu'), ...(v.int8Scale !== undefined ? { int8Scale: v.int8Scale } : {}) });
    }
    if (unary[op]) return single(unary[op]);
    const xT = x0 as Tensor;
    switch (op) {
      case 'relu6': return this.out(c, { name: g.op('Clip', [f(0), g.scalar(0), g.scalar(6)], '/Clip') });
      case 'clamp': {
        const { min, max } = clampBounds(c);
        const ins = [f(0), min === null ? '' : g.scalar(min), max === null ? '' : g.scalar(max)];
        while (ins[ins.length - 1] === '') ins.pop();
        return this.out(c, { name: g.op('Clip', ins, '/Clip') });
      }
      case 'pow': return this.out(c, { name: g.op('Pow', [f(0), g.scalar(powExponent(c))], '/Pow') });
      case 'reshape': case 'flatten': {
        const v = this.valueOf(xT);
        const src = this.mode === 'thinker' ? v : { name: f(0) };
        // a dimension the model asked to infer (reshape(-1, …), e.g. the batch) stays inferred
        const asked = op === 'reshape' ? (c.attrs?.shape as number[] | undefined) : undefined;
        return this.out(c, { name: this.reshapeNode(src.name, xT.shape, outT.shape, '', asked), ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}) });
      }
      case 'narrow': {
        const v = this.valueOf(xT);
        const src = this.mode === 'thinker' ? v : { name: f(0) };
        const a = c.attrs as { dim: number; start: number; length: number };
        const i64 = (what: string, x: number) => g.initializer(what, [1], DT.INT64, [x]);
        const y = g.op('Slice', [src.name, i64('starts', a.start), i64('ends', a.start + a.length), i64('axes', a.dim)], '/Slice');
        return this.out(c, { name: y, ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}) });
      }
      case 'permute': {
        const cur = xT.perm ?? identity(xT.rank);
        const inv = inverse(cur);
        const perm = (outT.perm ?? identity(outT.rank)).map((p) => inv[p]);
        const v = this.valueOf(xT);
        const src = this.mode === 'thinker' ? v : { name: f(0) };
        if (isIdentity(perm)) return this.out(c, src);
        return this.out(c, { name: g.op('Transpose', [src.name], '/Transpose', { perm }), ...(src.int8Scale !== undefined ? { int8Scale: src.int8Scale } : {}) });
      }
      case 'matmul': case 'bmm': return this.out(c, { name: g.op('MatMul', [f(0), f(1)], '/MatMul') });
      case 'sum': case 'mean': case 'max': case 'min': {
        const { axes, keep } = reductionAxes(c);
        const type = { sum: 'ReduceSum', mean: 'ReduceMean', max: 'ReduceMax', min: 'ReduceMin' }[op];
        if (axes && axes.length === 0) return this.out(c, { name: g.op('Identity', [f(0)], '/Identity') });
        return this.out(c, { name: this.reduceNode(type, f(0), axes, keep, '') });
      }
      case 'cat': {
        const dim = normAxis(Number(c.attrs?.dim ?? 0), xT.rank);
        return this.out(c, { name: g.op('Concat', inT.map((_, i) => f(i)), '/Concat', { axis: dim }) });
      }
      case 'softmax': case 'log_softmax': {
        const dim = normAxis(Number(c.attrs?.dim ?? -1), xT.rank);
        return single(op === 'softmax' ? 'Softmax' : 'LogSoftmax', { axis: dim });
      }
      case 'linear': {
        const [, w, b] = inT as Tensor[];
        const wv = this.values.has(w) ? null : logicalValues(w.raw, w.perm);
        if (wv && (!b || !this.values.has(b))) {
          return this.out(c, { name: this.linearNode(f(0), xT.rank, wv, b ? logicalValues(b.raw, b.perm).values : null, '', 'linear') });
        }
        let y = g.op('MatMul', [f(0), g.op('Transpose', [f(1)], '/Transpose', { perm: [1, 0] })], '/MatMul');
        if (b) y = g.op('Add', [y, f(2)], '/Add');
        return this.out(c, { name: y });
      }
      case 'conv2d': case 'conv_transpose2d': {
        const a = (c.attrs ?? {}) as { stride?: number | number[]; padding?: number | number[] | string; dilation?: number | number[]; groups?: number; outputPadding?: number | number[] };
        const w = inT[1] as Tensor;
        const [, , kh, kw] = w.shape;
        const k: [number, number] = [kh, kw];
        const d = pair(a.dilation ?? 1, 'dilation');
        const s = pair(a.stride ?? 1, 'stride');
        const ins = inT.map((_, i) => f(i));
        if (op === 'conv2d') {
          const p = a.padding ?? 0;
          const pads = explicitPads(typeof p === 'string' ? (p as 'same' | 'valid') : pair(p, 'padding'), k, d);
          return this.out(c, { name: g.op('Conv', ins, '/Conv', { dilations: d, group: a.groups ?? 1, kernel_shape: k, pads: [pads[0][0], pads[1][0], pads[0][1], pads[1][1]], strides: s }) });
        }
        const p = pair((a.padding as number | number[]) ?? 0, 'padding');
        return this.out(c, { name: g.op('ConvTranspose', ins, '/ConvTranspose', {
          dilations: d, group: a.groups ?? 1, kernel_shape: k, pads: [p[0], p[1], p[0], p[1]], strides: s, output_padding: pair(a.outputPadding ?? 0, 'output_padding'),
        }) });
      }
      case 'max_pool2d': case 'avg_pool2d': case 'adaptive_avg_pool2d': {
        const a = c.attrs as { kernelSize?: number | number[]; stride?: number | number[] | null; padding?: number | number[]; ceilMode?: boolean; outputSize?: number | number[] } | undefined;
        if (op === 'adaptive_avg_pool2d' && a?.outputSize !== undefined) {
          return this.out(c, { name: this.adaptiveAvgPool(f(0), xT.shape, pair(a.outputSize, 'output_size'), '') });
        }
        if (!a || a.kernelSize === undefined) {
          throw new Error(`F.${op === 'max_pool2d' ? 'maxPool2d' : op === 'avg_pool2d' ? 'avgPool2d' : 'adaptiveAvgPool2d'} records no window attributes in this engine version; use the nn module (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d) in the model`);
        }
        const k = pair(a.kernelSize, 'kernel_size'), s = pair(a.stride ?? a.kernelSize, 'stride'), p = pair(a.padding ?? 0, 'padding');
        const type = op === 'max_pool2d' ? 'MaxPool' : 'AveragePool';
        return single(type, { kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]], ...(op === 'max_pool2d' ? { ceil_mode: a.ceilMode ? 1 : 0 } : { count_include_pad: 1 }) });
      }
      default:
        throw new Error(`no ONNX export for the op '${op}'`);
    }
  }

  // ---- fixed stage, qdq dialect -------------------------------------------------------------
  //
  // Every tensor between layers is the engine's value q/s (float32), so float layers, reshapes
  // and the graph output need nothing special. A quantized layer:
  //   codes  q_x = Mul(x, s_x) when x carries s_x (exact: s_x is a power of two), else
  //          Clip(Floor(Mul(x, s_x) + 0.5), −B−1, B) in float32, the engine's own ops in order;
  //   acc    Conv/MatMul of integer-valued floats with the integer bias — exact while every
  //          partial sum stays under 2^24, which 128·Σ|q_w| + |q_b| bounds per output channel;
  //          beyond it ConvInteger/MatMulInteger (int32), or for ConvTranspose a split of the
  //          input channels into chunks that stay under the bound, summed in int32;
  //   out    Cast to double, Mul 2^k, Add 0.5, Floor, Clip(−B−1, B): exact in double for any
  //          int32 accumulator (the shifted sum needs at most 33 significant bits), so it equals
  //          the engine's shift with int32 floor division; then Cast to float and Div by s_o.
  // No QuantizeLinear/DequantizeLinear appears, so onnxruntime's QDQ fusions (which round half to
  // even with float scales) have no pattern to rewrite, and float Conv/MatMul stay exact under
  // any graph optimization level or kernel blocking because every partial sum is an exact integer.

  /** Input codes of a quantized layer, as float32 integers. */
  private inputCodes(x: Tensor, sx: number, bits: number, scope: string): string {
    const g = this.g;
    const v = this.floatName(this.valueOf(x), scope);
    const scaled = g.op('Mul', [v, g.scalar(sx)], `${scope}/QuantizeInput/Mul`);
    if (x.quantScale !== undefined) return scaled;
    const b = qmax(bits);
    const r = g.op('Floor', [g.op('Add', [scaled, g.scalar(0.5)], `${scope}/QuantizeInput/Add`)], `${scope}/QuantizeInput/Floor`);
    return g.op('Clip', [r, g.scalar(-b - 1), g.scalar(b)], `${scope}/QuantizeInput/Clip`);
  }

  /** q = clamp(⌊acc·2^k + 0.5⌋, −B−1, B) in double from a float or int32 accumulator; returns q/s_o as float. */
  private requantize(acc: string, k: number, bits: number, so: number, scope: string): string {
    const g = this.g;
    const b = qmax(bits);
    const d = g.op('Cast', [acc], `${scope}/Requantize/Cast`, { to: DT.DOUBLE });
    // the engine's shift returns 0 for k < −30 (|acc|·2^k < 1/2 for any int32 accumulator)
    const shifted = g.op('Mul', [d, g.scalar(k < -30 ? 0 : 2 ** k, DT.DOUBLE)], `${scope}/Requantize/Mul`);
    const rounded = g.op('Floor', [g.op('Add', [shifted, g.scalar(0.5, DT.DOUBLE)], `${scope}/Requantize/Add`)], `${scope}/Requantize/Floor`);
    const q = g.op('Clip', [rounded, g.scalar(-b - 1, DT.DOUBLE), g.scalar(b, DT.DOUBLE)], `${scope}/Requantize/Clip`);
    const qf = g.op('Cast', [q], `${scope}/Requantize/CastFloat`, { to: DT.FLOAT });
    return g.op('Div', [qf, g.scalar(so)], `${scope}/Dequantize/Div`);
  }

  private qdqWeighted(c: CapturedCall, m: Conv2dInt | Conv1dInt | ConvTranspose2dInt | LinearInt, scope: string): void {
    const g = this.g;
    const x = c.inputs[0] as Tensor;
    const { sx, sw, so } = this.scales(c, true);
    const q = weightCodes(m, sx, sw);
    const codes = this.inputCodes(x, sx, m.dataBits, scope);
    const exact = q.bound < 2 ** 24;
    let acc: string;
    let accIsInt = false;
    const path = c.target;
    if (m instanceof LinearInt) {
      const [out, inF] = q.w.dims;
      if (exact) {
        acc = this.linearNode(codes, x.rank, q.w, q.b, scope, path, 'weight_q', 'bias_q');
      } else {
        const wt = new Array<number>(out * inF);
        for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) wt[i * out + o] = q.w.values[o * inF + i];
        const xi = g.op('Cast', [codes], `${scope}/CastInt8`, { to: DT.INT8 });
        acc = g.op('MatMulInteger', [xi, g.initializer(`${path}.weight_q_t`, [inF, out], DT.INT8, wt)], `${scope}/MatMulInteger`);
        if (q.b) acc = g.op('Add', [acc, g.initializer(`${path}.bias_q`, [out], DT.INT32, q.b)], `${scope}/AddBias`);
        accIsInt = true;
      }
    } else if (exact) {
      acc = this.convNode(codes, m, q.w, q.b, scope, path, DT.FLOAT, 'weight_q', 'bias_q');
    } else if (!(m instanceof ConvTranspose2dInt)) {
      const xi = g.op('Cast', [codes], `${scope}/CastInt8`, { to: DT.INT8 });
      acc = g.op('ConvInteger', [xi, g.initializer(`${path}.weight_q`, q.w.dims, DT.INT8, q.w.values)], `${scope}/ConvInteger`, convAttrs(m));
      if (q.b) acc = g.op('Add', [acc, g.initializer(`${path}.bias_q`, [q.b.length, ...Array(x.rank - 2).fill(1)], DT.INT32, q.b)], `${scope}/AddBias`);
      accIsInt = true;
    } else {
      acc = this.splitConvTranspose(codes, m, q, scope, path, x.rank);
      accIsInt = true;
    }
    if (m.normalizeData !== null) {
      const lim = Math.floor(m.normalizeData * sx * sw);
      const t = accIsInt ? DT.INT32 : DT.FLOAT;
      acc = g.op('Clip', [acc, g.scalar(-lim, t), g.scalar(lim, t)], `${scope}/ClampData`);
    }
    const k = floorLog2(so) - floorLog2(sx) - floorLog2(sw);
    this.out(c, { name: this.requantize(acc, k, m.outBits, so, scope) });
  }

  /** A ConvTranspose whose accumulator can pass 2^24: input-channel chunks, each exact, summed in int32. */
  private splitConvTranspose(codes: string, m: ConvTranspose2dInt, q: WeightCodes, scope: string, path: string, rank: number): string {
    const g = this.g;
    if (m.groups !== 1) throw new Error('a grouped ConvTranspose2dInt whose accumulator can pass 2^24 is not supported (the engine neither)');
    const [inC, outC, kh, kw] = q.w.dims;
    const per = kh * kw;
    const perIn = Array.from({ length: inC }, (_, i) => {
      let best = 0;
      for (let o = 0; o < outC; o++) {
        let s = 0;
        for (let j = 0; j < per; j++) s += Math.abs(q.w.values[(i * outC + o) * per + j]);
        best = Math.max(best, s);
      }
      return 128 * best;
    });
    const chunks: [number, number][] = [];
    let start = 0, sum = 0;
    for (let i = 0; i < inC; i++) {
      if (i > start && sum + perIn[i] >= 2 ** 24) { chunks.push([start, i]); start = i; sum = 0; }
      sum += perIn[i];
    }
    chunks.push([start, inC]);
    let acc: string | null = null;
    for (const [c0, c1] of chunks) {
      const xs = g.op('Slice', [codes, g.initializer('starts', [1], DT.INT64, [c0]), g.initializer('ends', [1], DT.INT64, [c1]), g.initializer('axes', [1], DT.INT64, [1])], `${scope}/Slice`);
      const wPart = { dims: [c1 - c0, outC, kh, kw], values: Array.prototype.slice.call(q.w.values, c0 * outC * per, c1 * outC * per) as number[] };
      const part = g.op('Cast', [this.convNode(xs, m, wPart, null, scope, `${path}.chunk${c0}`, DT.FLOAT, 'weight_q')], `${scope}/CastInt32`, { to: DT.INT32 });
      acc = acc ? g.op('Add', [acc, part], `${scope}/AddChunk`) : part;
    }
    if (q.b) acc = g.op('Add', [acc!, g.initializer(`${path}.bias_q`, [q.b.length, ...Array(rank - 2).fill(1)], DT.INT32, q.b)], `${scope}/AddBias`);
    return acc!;
  }

  private qdqBatchNorm(c: CapturedCall, m: BatchNormInt, scope: string): void {
    const g = this.g;
    const x = c.inputs[0] as Tensor;
    const { sx, sw: sa, so } = this.scales(c, true);
    const { qa, qc } = batchNormCodes(m, sx, sa);
    const n = m.numFeatures;
    const codes = this.inputCodes(x, sx, m.dataBits, scope);
    const d = g.op('Cast', [codes], `${scope}/CastDouble`, { to: DT.DOUBLE });
    const prod = g.op('Mul', [d, g.initializer(`${c.target}.weight_q`, [n, 1, 1], DT.DOUBLE, qa)], `${scope}/MulWeight`);
    let acc = g.op('Add', [prod, g.initializer(`${c.target}.bias_q`, [n, 1, 1], DT.DOUBLE, qc)], `${scope}/AddBias`);
    if (m.normalizeData !== null) {
      const lim = Math.floor(m.normalizeData * sx * sa);
      acc = g.op('Clip', [acc, g.scalar(-lim, DT.DOUBLE), g.scalar(lim, DT.DOUBLE)], `${scope}/ClampData`);
    }
    this.out(c, { name: this.requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sa), m.outBits, so, scope) });
  }

  private qdqAvgPool(c: CapturedCall, m: AvgPool2dInt, scope: string): void {
    const g = this.g;
    const x = c.inputs[0] as Tensor;
    const { sx, so } = this.scales(c, false);
    const k = pair(m.kernelSize, 'kernel_size'), s = pair(m.stride, 'stride'), p = pair(m.padding, 'padding');
    const codes = this.inputCodes(x, sx, m.dataBits, scope);
    const area = k[0] * k[1];
    // window sums of codes are exact integers: recover them from the average (error ≪ 1/2)
    const avg = g.op('AveragePool', [codes], `${scope}/AveragePool`, { kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]], count_include_pad: 1 });
    const sum = g.op('Round', [g.op('Mul', [avg, g.scalar(area)], `${scope}/WindowSum`)], `${scope}/Round`);
    // q = ⌊(2·sum·num + den) / (2·den)⌋, the engine's integer division, in double
    const e = floorLog2(so) - floorLog2(sx);
    const num = e >= 0 ? 2 ** e : 1, den = area * (e >= 0 ? 1 : 2 ** -e);
    const d = g.op('Cast', [sum], `${scope}/CastDouble`, { to: DT.DOUBLE });
    const t = g.op('Add', [g.op('Mul', [d, g.scalar(2 * num, DT.DOUBLE)], `${scope}/Mul`), g.scalar(den, DT.DOUBLE)], `${scope}/Add`);
    const qd = g.op('Floor', [g.op('Div', [t, g.scalar(2 * den, DT.DOUBLE)], `${scope}/Div`)], `${scope}/Floor`);
    const b = qmax(m.outBits);
    const qc = g.op('Clip', [qd, g.scalar(-b - 1, DT.DOUBLE), g.scalar(b, DT.DOUBLE)], `${scope}/Clip`);
    const qf = g.op('Cast', [qc], `${scope}/CastFloat`, { to: DT.FLOAT });
    this.out(c, { name: g.op('Div', [qf, g.scalar(so)], `${scope}/Dequantize/Div`) });
  }

  private qdqElementwise(c: CapturedCall, m: IQAdd | IQCat, scope: string): void {
    const g = this.g;
    const sz = c.scales?.o;
    if (!sz) throw new Error('no output scale was recorded');
    const b = qmax(m.outBits);
    // ⌊q·s_z/s_in + 0.5⌋ = ⌊x·s_z + 0.5⌋ for x = q/s_in, in float32 as the engine computes it
    const rescaled = (c.inputs as Tensor[]).map((t, i) => g.op('Floor', [g.op('Add', [g.op('Mul', [this.floatName(this.valueOf(t), scope), g.scalar(sz)], `${scope}/Rescale${i}/Mul`), g.scalar(0.5)], `${scope}/Rescale${i}/Add`)], `${scope}/Rescale${i}/Floor`));
    let z: string;
    if (m instanceof IQAdd) z = g.op('Add', rescaled, `${scope}/Add`);
    else {
      const x0 = c.inputs[0] as Tensor;
      z = g.op('Concat', rescaled, `${scope}/Concat`, { axis: normAxis(Number(c.args?.[0] ?? 0), x0.rank) });
    }
    const q = g.op('Clip', [z, g.scalar(-b - 1), g.scalar(b)], `${scope}/Clip`);
    this.out(c, { name: g.op('Div', [q, g.scalar(sz)], `${scope}/Dequantize/Div`) });
  }

  private scales(c: CapturedCall, withWeight: boolean): { sx: number; sw: number; so: number } {
    const s = c.scales ?? {};
    if (!s.x || !s.o || (withWeight && !s.w)) throw new Error('its scales were not recorded (was the layer run in eval after calibration?)');
    return { sx: s.x, sw: s.w ?? 1, so: s.o };
  }

  /** What iqOpsExport.ts needs to lower iqMul/iqSum/iqSigmoid/iqTanh/iqClamp/ReLU6Int. */
  private iqLowering(): IqLowering {
    return {
      g: this.g, mode: this.mode as 'qdq' | 'thinker', shared: this.iqShared,
      value: (t) => this.valueOf(t), floatName: (v, where) => this.floatName(v, where),
      int8Input: (x, sx, bits, scope) => this.int8Input(x, sx, bits, scope),
      inputCodes: (x, sx, bits, scope) => this.inputCodes(x, sx, bits, scope),
      requantize: (acc, k, bits, so, scope) => this.requantize(acc, k, bits, so, scope),
      out: (c, v, i) => this.out(c, v, i),
    };
  }

  /** What sequenceIntExport.ts needs to lower LayerNormInt/EmbeddingInt/BmmInt. */
  private seqLowering(): SeqLowering {
    return {
      g: this.g, mode: this.mode as 'qdq' | 'thinker', value: (t) => this.valueOf(t),
      int8Input: (x, sx, bits, scope) => this.int8Input(x, sx, bits, scope),
      inputCodes: (x, sx, bits, scope) => this.inputCodes(x, sx, bits, scope),
      requantize: (acc, k, bits, so, scope) => this.requantize(acc, k, bits, so, scope),
      out: (c, v) => this.out(c, v),
    };
  }

  // ---- fixed stage, thinker dialect -------------------------------------------------------------

  /** An int8 input for a thinker op: the value's codes when it has them at scale sx, else a Quant. */
  private int8Input(x: Tensor, sx: number, bits: number, scope: string): string {
    const v = this.valueOf(x);
    if (v.int8Scale !== undefined && v.int8Scale === sx) return v.name;
    const f = this.floatName(v, scope);
    return this.g.op('Quant', [f], `${scope}/Quant`, { data_bits: bits, scale_x: { float: sx }, ...PLATFORM }, THINKER);
  }

  private thinkerWeighted(c: CapturedCall, m: Conv2dInt | Conv1dInt | ConvTranspose2dInt | LinearInt, scope: string): void {
    const g = this.g;
    const x = c.inputs[0] as Tensor;
    const { sx, sw, so } = this.scales(c, true);
    const q = weightCodes(m, sx, sw);
    const ins = [this.int8Input(x, sx, m.dataBits, scope), g.initializer(`${c.target}.weight`, q.w.dims, DT.INT8, q.w.values)];
    if (q.b) ins.push(g.initializer(`${c.target}.bias`, [q.b.length], DT.INT32, q.b));
    const common = {
      scale_x: { float: sx }, scale_w: { float: sw }, scale_o: { float: so },
      data_bits: m.dataBits, parameter_bits: m.parameterBits, o_bits: m.outBits, ...PLATFORM,
    };
    let type: string;
    let geom: Record<string, number | number[]> = {};
    if (m instanceof LinearInt) type = 'LinearInt';
    else {
      type = m instanceof ConvTranspose2dInt ? 'ConvTranspose2dInt' : m instanceof Conv1dInt ? 'Conv1dInt' : 'Conv2dInt';
      geom = convAttrs(m);
    }
    const y = g.op(type, ins, `${scope}/${type}`, { ...geom, ...common, castor_mode: 'luna' }, THINKER);
    this.out(c, { name: y, int8Scale: so });
  }

  private thinkerBatchNorm(c: CapturedCall, m: BatchNormInt, scope: string): void {
    const g = this.g;
    const { sx, sw: sa, so } = this.scales(c, true);
    const { qa, qc } = batchNormCodes(m, sx, sa);
    const n = m.numFeatures;
    const y = g.op('BatchNorm2dInt', [this.int8Input(c.inputs[0] as Tensor, sx, m.dataBits, scope),
      g.initializer(`${c.target}.weight`, [n], DT.INT8, qa), g.initializer(`${c.target}.bias`, [n], DT.INT32, qc)], `${scope}/BatchNorm2dInt`, {
      scale_x: { float: sx }, scale_w: { float: sa }, scale_o: { float: so }, data_bits: m.dataBits, parameter_bits: m.parameterBits, o_bits: m.outBits, ...PLATFORM,
    }, THINKER);
    this.out(c, { name: y, int8Scale: so });
  }

  private thinkerAvgPool(c: CapturedCall, m: AvgPool2dInt, scope: string): void {
    const { sx, so } = this.scales(c, false);
    const k = pair(m.kernelSize, 'kernel_size'), s = pair(m.stride, 'stride'), p = pair(m.padding, 'padding');
    const y = this.g.op('AvgPool2dInt', [this.int8Input(c.inputs[0] as Tensor, sx, m.dataBits, scope)], `${scope}/AvgPool2dInt`, {
      kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]], ceil_mode: 0, data_bits: m.dataBits,
      scale_x: { float: sx }, scale_o: { float: so }, o_bits: m.outBits, ...PLATFORM,
    }, THINKER);
    this.out(c, { name: y, int8Scale: so });
  }

  private thinkerElementwise(c: CapturedCall, m: IQAdd | IQCat, scope: string): void {
    const sz = c.scales?.o;
    if (!sz) throw new Error('no output scale was recorded');
    const xs = c.inputs as Tensor[];
    const ins = xs.map((t) => this.int8Input(t, t.quantScale!, m.dataBits, scope));
    if (m instanceof IQAdd) {
      const y = this.g.op('iqAdd', ins, `${scope}/iqAdd`, {
        scale_x: { float: xs[0].quantScale! }, scale_y: { float: xs[1].quantScale! }, scale_o: { float: sz }, ...PLATFORM,
      }, THINKER);
      return this.out(c, { name: y, int8Scale: sz });
    }
    const attrs: Record<string, { float: number } | number | string> = {};
    xs.forEach((t, i) => { attrs[`scale_x_${i}`] = { float: t.quantScale! }; });
    const y = this.g.op('iqCat', ins, `${scope}/iqCat`, { ...attrs, scale_o: { float: sz }, dim: normAxis(Number(c.args?.[0] ?? 0), xs[0].rank), ...PLATFORM }, THINKER);
    this.out(c, { name: y, int8Scale: sz });
  }
}

// ---- pure helpers -----------------------------------------------------------------------------

/**
 * Every tensor the forward used without a recorded producer must be a constant: a parameter or
 * buffer, or a value that did not change when the input did. Anything else was computed by an op
 * the engine does not record, and exporting it as a constant would be silently wrong.
 */
function checkUnrecorded(model: Module, a: Capture, b: Capture): void {
  const params = new Set<tf.Tensor>([...model.namedParameters(), ...model.namedBuffers()].map(([, p]) => p.raw));
  const same = a.calls.length === b.calls.length && a.calls.every((c, i) => c.target === b.calls[i].target && c.inputs.length === b.calls[i].inputs.length) &&
    a.outputs.length === b.outputs.length;
  if (!same) throw new OnnxExportError('exportOnnx: the forward pass runs different layers or ops for different inputs (data-dependent control flow), which one ONNX graph cannot express');
  const produced = new Set<tf.Tensor>([a.input.raw]);
  const check = (t: Tensor | number, twin: Tensor | number, where: string) => {
    if (typeof t === 'number' || produced.has(t.raw) || params.has(t.raw)) return;
    const u = (twin as Tensor).dataSync(), v = t.dataSync();
    if (u.length !== v.length || v.some((x, i) => !Object.is(x, u[i]))) {
      throw new OnnxExportError(`exportOnnx: ${where} is computed by an op this engine does not record (e.g. argmax, eq, a dtype cast, clone), so it cannot be exported; compute it with recorded tensor ops or outside the model`);
    }
  };
  a.calls.forEach((c, i) => {
    c.inputs.forEach((t, j) => check(t, b.calls[i].inputs[j], `input ${j} of ${describe(c, i)}`));
    for (const o of c.outputs) produced.add(o.raw);
  });
  a.outputs.forEach((t, i) => check(t, b.outputs[i], `output ${i} of the model`));
}

/** tf.tidy for a function that returns plain data. */
function tidyValue<T>(fn: () => T): T {
  let out!: T;
  tf.tidy(() => { out = fn(); });
  return out;
}

function describe(c: CapturedCall, i: number): string {
  return c.kind === 'module' ? `${c.module!.typeName()} at '${c.target || '(root)'}'` : `op '${c.target}' (call ${i})`;
}

/** ONNX conv attributes of a conv layer (2-d, 1-d, transposed). */
function convAttrs(m: ConvNd): Record<string, number | number[]> {
  if (m instanceof ConvTranspose2d) {
    return {
      dilations: [...m.dilation], group: m.groups, kernel_shape: [...m.kernelSize], output_padding: [...m.outputPadding],
      pads: [m.padding[0], m.padding[1], m.padding[0], m.padding[1]], strides: [...m.stride],
    };
  }
  if (m instanceof Conv1d) {
    const g = m.geometry();
    return { dilations: [m.dilation], group: m.groups, kernel_shape: [m.kernelSize], pads: [g.pads[1][0], g.pads[1][1]], strides: [m.stride] };
  }
  const c = m as Conv2d;
  const g = c.geometry();
  return { dilations: [...c.dilation], group: c.groups, kernel_shape: [...c.kernelSize], pads: [g.pads[0][0], g.pads[1][0], g.pads[0][1], g.pads[1][1]], strides: [...c.stride] };
}

interface WeightCodes {
  w: { dims: number[]; values: number[] };
  b: number[] | null;
  /** max over output channels of 128·Σ|q_w| + |q_b|: every partial sum of the accumulator is below it */
  bound: number;
}

/** The integer weight and bias codes the engine's eval uses (same tf ops, so the same values). */
function weightCodes(m: Conv2dInt | Conv1dInt | ConvTranspose2dInt | LinearInt, sx: number, sw: number): WeightCodes {
  return tidyValue(() => {
    const w = clampSym(m.weight.raw, m.normalizeWeight);
    const check = trainScale(maxAbs(w), m.parameterBits);
    if (check !== sw) throw new Error(`internal: weight scale ${check} differs from the recorded ${sw}`);
    const qw = logicalValues(quantizeCodes(w, sw, m.parameterBits), m.weight.perm);
    const b = m.bias ? clampSym(m.bias.raw, m.normalizeBias) : null;
    const qb = b ? Array.from(tf.cast(tf.floor(tf.add(tf.mul(b, sx * sw), 0.5)), 'int32').dataSync()) : null;
    const values = Array.from(qw.values);
    const outC = m instanceof ConvTranspose2dInt ? m.outChannels : qw.dims[0];
    const sums = new Float64Array(outC);
    if (m instanceof ConvTranspose2dInt) {
      const [inC, outG] = qw.dims;
      const per = qw.dims.slice(2).reduce((a, v) => a * v, 1);
      const inG = inC / m.groups;
      for (let i = 0; i < inC; i++) {
        const grp = Math.floor(i / inG);
        for (let j = 0; j < outG; j++) for (let t = 0; t < per; t++) sums[grp * outG + j] += Math.abs(values[(i * outG + j) * per + t]);
      }
    } else {
      const per = values.length / outC;
      for (let o = 0; o < outC; o++) for (let t = 0; t < per; t++) sums[o] += Math.abs(values[o * per + t]);
    }
    let bound = 0;
    for (let o = 0; o < outC; o++) bound = Math.max(bound, 128 * sums[o] + (qb ? Math.abs(qb[o]) : 0));
    return { w: { dims: qw.dims, values }, b: qb, bound };
  });
}

/** BatchNormInt's multiplier and offset codes, as the engine's eval computes them. */
function batchNormCodes(m: BatchNormInt, sx: number, sa: number): { qa: number[]; qc: number[] } {
  return tidyValue(() => {
    const n = m.numFeatures;
    const gamma = m.weight ? clampSym(m.weight.raw, m.normalizeWeight) : tf.ones([n]);
    const beta = m.bias ? clampSym(m.bias.raw, m.normalizeBias) : tf.zeros([n]);
    const a = tf.mul(gamma, tf.rsqrt(tf.add(m.running_var!.raw, m.eps)));
    const c = tf.sub(beta, tf.mul(m.running_mean!.raw, a));
    if (trainScale(maxAbs(a), m.parameterBits) !== sa) throw new Error(`internal: BN multiplier scale differs from the recorded ${sa}`);
    const qa = Array.from(tf.cast(quantizeCodes(a, sa, m.parameterBits), 'int32').dataSync());
    const qc = Array.from(tf.cast(tf.floor(tf.add(tf.mul(c, sx * sa), 0.5)), 'int32').dataSync());
    return { qa, qc };
  });
}

/** Tensor.clamp's bounds: recorded ones, else read off the traced values where they are hit. */
function clampBounds(c: CapturedCall): { min: number | null; max: number | null } {
  const a = c.attrs as { min?: number | null; max?: number | null } | undefined;
  if (a && ('min' in a || 'max' in a)) return { min: a.min ?? null, max: a.max ?? null };
  const x = (c.inputs[0] as Tensor).dataSync(), y = c.outputs[0].dataSync();
  let lo: number | null = null, hi: number | null = null;
  for (let i = 0; i < x.length; i++) {
    if (y[i] > x[i]) lo = y[i];
    else if (y[i] < x[i]) hi = y[i];
  }
  if (lo === null || hi === null) {
    throw new Error('this engine version records no clamp bounds and the dummy input does not reach ' +
      `${lo === null && hi === null ? 'either bound' : lo === null ? 'the lower bound' : 'the upper bound'}; use a dummy input that is clamped on both sides, or a normalize layer`);
  }
  return { min: lo, max: hi };
}

/** Tensor.pow's exponent: recorded, else the common exponent that reproduces the traced values. */
function powExponent(c: CapturedCall): number {
  const a = c.attrs as { exponent?: number } | undefined;
  if (a?.exponent !== undefined) return a.exponent;
  const x = (c.inputs[0] as Tensor).dataSync(), y = c.outputs[0].dataSync();
  for (const e of [2, 3, 0.5, -1, 4, -0.5, -2, 1, 0]) {
    let ok = true;
    for (let i = 0; i < x.length && ok; i++) {
      const want = Math.pow(x[i], e);
      ok = Number.isNaN(want) ? Number.isNaN(y[i]) : Math.abs(want - y[i]) <= 1e-5 * Math.max(1, Math.abs(want));
    }
    if (ok) return e;
  }
  throw new Error('this engine version records no pow exponent and it is none of 2, 3, 0.5, −1, 4, −0.5, −2');
}

/**
 * The axes of a sum/mean/max/min (this engine version records none): from the shapes, and where
 * two choices of axes fit the shapes, from the traced values.
 */
function reductionAxes(c: CapturedCall): { axes: number[] | null; keep: boolean } {
  const a = c.attrs as { dim?: number | number[]; keepdim?: boolean } | undefined;
  const x = c.inputs[0] as Tensor;
  const inS = x.shape, outS = c.outputs[0].shape;
  if (a && a.dim !== undefined) {
    const dims = (Array.isArray(a.dim) ? a.dim : [a.dim]).map((d) => normAxis(d, inS.length));
    return { axes: dims, keep: a.keepdim ?? false };
  }
  if (outS.length === 0) return { axes: null, keep: false };
  if (outS.length === inS.length) {
    // keepdim: reduced axes are size 1 in the output
    const axes = inS.map((_, i) => i).filter((i) => outS[i] === 1 && inS[i] !== 1);
    return { axes, keep: true };
  }
  const drop = inS.length - outS.length;
  const cands: number[][] = [];
  const choose = (start: number, left: number, acc: number[]) => {
    if (left === 0) {
      const kept = inS.filter((_, i) => !acc.includes(i));
      if (kept.join() === outS.join()) cands.push([...acc]);
      return;
    }
    for (let i = start; i < inS.length; i++) choose(i + 1, left - 1, [...acc, i]);
  };
  choose(0, drop, []);
  if (cands.length === 0) throw new Error(`cannot tell which axes reduce [${inS.join(', ')}] to [${outS.join(', ')}]`);
  const distinct = new Map<string, number[]>();
  for (const cand of cands) distinct.set(cand.filter((i) => inS[i] !== 1).join(), cand);
  if (distinct.size === 1) return { axes: cands[0], keep: false };
  const fn = { sum: tf.sum, mean: tf.mean, max: tf.max, min: tf.min }[c.target as 'sum' | 'mean' | 'max' | 'min'];
  const got = c.outputs[0].dataSync();
  const fits = [...distinct.values()].filter((axes) => tidyValue(() => {
    const r = fn(x.logical(), axes, false).dataSync();
    return r.every((v, i) => Math.abs(v - got[i]) <= 1e-6 * Math.max(1, Math.abs(v)));
  }));
  if (fits.length !== 1) throw new Error(`cannot tell which axes reduce [${inS.join(', ')}] to [${outS.join(', ')}] (this engine version records none)`);
  return { axes: fits[0], keep: false };
}
