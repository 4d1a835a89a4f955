// linger.init (SPEC §5): the fixed stage. Replaces layers with Int versions, wires iqAdd/iqCat,
// and provides calibrate and the per-layer quantization report.
import { tf } from '../backend/tf';
import { ReLU6, Sigmoid, Tanh } from '../nn/activation';
import { BatchNorm2d } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvTranspose2d } from '../nn/conv';
import { ModuleList } from '../nn/container';
import { Linear } from '../nn/linear';
import { GRU, LSTM } from '../nn/recurrent';
import { Softmax } from '../nn/misc';
import { Module, recordTransform, setCallWrapper, withModuleCallHook } from '../nn/module';
import { AdaptiveAvgPool2d, AvgPool2d } from '../nn/pooling';
import { Embedding, LayerNorm } from '../nn/sequence';
import { Tensor, withQuantizedOps } from '../tensor';
import { Batch, DataLoader } from '../train/data';
import { disposeBatch } from '../train/loop';
import { captureGraph, Graph, GraphNode } from '../trace/graph';
import { NormalizeConvBN1d, NormalizeConvBN2d, NormalizeConvBNBase, NormalizeConvTransposeBN2d } from './convbn';
import {
  AvgPool2dInt, BatchNormInt, Conv1dInt, Conv2dInt, ConvTranspose2dInt, IntOrigin, IQAdd, IQCat, isIntLayer, LinearInt, QuantBits, WeightedOps,
} from './intLayers';
import { IQClamp, IQMul, IQSigmoid, IQSum, IQTanh, ReLU6Int } from './iqOps';
import { aheadReluOf } from './normalize';
import { GRUInt, LSTMInt } from './recurrentInt';
import { BmmInt, EmbeddingInt, LayerNormInt } from './sequenceInt';
import { checkTransformOrder, graphOf } from './transforms';

export interface InitOptions extends Partial<QuantBits> {
  /** an input to record the graph with, when the model was not traced (for iqAdd/iqCat) */
  dummyInput?: Tensor | Tensor[];
  /**
   * Layer types replaced only when asked (linger's `quant_modules`: supported, not default):
   * `'LayerNorm'` → LayerNormInt, `'Embedding'` → EmbeddingInt, e.g.
   * `init(model, { quantModules: ['LayerNorm', 'Embedding'] })`. disableQuant and quantModule apply
   * to them as to any layer.
   */
  quantModules?: ('LayerNorm' | 'Embedding')[];
  /**
   * Quantize F.bmm calls as BmmInt layers (linger's `SetFunctionBmmQuant(True)`; off by default).
   * Each bmm of the traced graph gets one, in call order, in the root's `linger_bmm` list; a bmm
   * belongs to the module whose forward calls it, so disableQuant on that module keeps it in
   * float and quantModule's bits on it apply.
   */
  bmm?: boolean;
}

const NO_QUANT = new WeakSet<Module>();
const LAYER_BITS = new WeakMap<Module, Partial<QuantBits>>();

/** linger.disable_quant: keep a module in float through init (call before init). */
export function disableQuant(m: Module): Module {
  NO_QUANT.add(m);
  return m;
}
/** linger.quant_module: per-layer bits for init (call before init). */
export function quantModule(m: Module, bits: Partial<QuantBits>): Module {
  for (const [k, v] of Object.entries(bits)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 2 || v > 16)) throw new Error(`linger.quantModule: ${k} must be an integer from 2 to 16, got ${v}`);
  }
  LAYER_BITS.set(m, { ...LAYER_BITS.get(m), ...bits });
  return m;
}

/** Modules init leaves in float because no Int version exists; it warns, naming them. */
function cannotQuantize(m: Module): boolean {
  return m instanceof Softmax || m instanceof AdaptiveAvgPool2d;
}

function settingsOf(m: Module): Pick<IntOrigin, 'normalizeData' | 'normalizeWeight' | 'normalizeBias'> {
  const s = m as unknown as { normalizeData?: number | null; normalizeWeight?: number | null; normalizeBias?: number | null };
  return { normalizeData: s.normalizeData ?? null, normalizeWeight: s.normalizeWeight ?? null, normalizeBias: s.normalizeBias ?? null };
}

/**
 * linger.init: Conv2d/ConvTranspose2d/Conv1d/Linear/BatchNorm2d/AvgPool2d (and their Normalize
 * and fused ConvBN versions) become Int layers; a fused ConvBN becomes one conv Int layer whose
 * weight and bias are BN-folded with the running statistics. ReLU, max-pool, reshape and flatten
 * pass scales through; element-wise add and cat of quantized tensors become iqAdd/iqCat layers
 * (from the traced graph). Returns `model`.
 */
export function init(model: Module, opts: InitOptions = {}): Module {
  const defaults: QuantBits = { dataBits: opts.dataBits ?? 8, parameterBits: opts.parameterBits ?? 8, outBits: opts.outBits ?? 8 };
  for (const [k, v] of Object.entries(defaults)) {
    if (!Number.isInteger(v) || v < 2 || v > 16) throw new Error(`linger.init: ${k} must be an integer from 2 to 16, got ${v}`);
  }
  for (const t of opts.quantModules ?? []) {
    if (t !== 'LayerNorm' && t !== 'Embedding') throw new Error(`linger.init: quantModules: unknown type '${String(t)}' (LayerNorm or Embedding)`);
  }
  const asked = new Set(opts.quantModules ?? []);
  checkTransformOrder(model, 'init');
  let graph: Graph | undefined = graphOf(model);
  if (!graph && opts.dummyInput) graph = captureGraph(model, model, Array.isArray(opts.dummyInput) ? opts.dummyInput : [opts.dummyInput]);

  const inside = new Set<Module>();
  for (const [, m] of model.namedModules()) {
    if (m instanceof NormalizeConvBNBase) for (const c of m.modules()) if (c !== m) inside.add(c);
  }
  const float: string[] = [];
  for (const [path, m] of [...model.namedModules()]) {
    if (!path || inside.has(m)) continue;
    if (NO_QUANT.has(m)) continue;
    if (cannotQuantize(m)) { float.push(`${path} (${m.typeName()})`); continue; }
    const o: IntOrigin = { ...defaults, ...LAYER_BITS.get(m), aheadRelu: aheadReluOf(m), ...settingsOf(m) };
    let q: Module | null = null;
    if (m instanceof NormalizeConvBNBase) {
      const fold = m.origin ? { path: m.origin.path, bnPath: m.origin.bnPath, eps: m.bn.eps } : undefined;
      const weights = tf.tidy(() => m.foldedWithRunningStats());
      const withFold = { ...o, fold };
      q = m instanceof NormalizeConvBN2d ? Conv2dInt.from(m.conv as Conv2d, withFold, weights)
        : m instanceof NormalizeConvBN1d ? Conv1dInt.from(m.conv as Conv1d, withFold, weights)
          : m instanceof NormalizeConvTransposeBN2d ? ConvTranspose2dInt.from(m.conv as ConvTranspose2d, withFold, weights) : null;
      weights.w.dispose();
      weights.b.dispose();
    } else if (m instanceof Conv2d) q = Conv2dInt.from(m, o);
    else if (m instanceof ConvTranspose2d) q = ConvTranspose2dInt.from(m, o);
    else if (m instanceof Conv1d) q = Conv1dInt.from(m, o);
    else if (m instanceof Linear) q = LinearInt.from(m, o);
    else if (m instanceof BatchNorm2d) q = BatchNormInt.from(m, o);
    else if (m instanceof AvgPool2d) q = AvgPool2dInt.from(m, o);
    else if (m instanceof ReLU6) q = ReLU6Int.from(m, o);
    else if (m instanceof LayerNorm && asked.has('LayerNorm')) q = LayerNormInt.from(m, o);
    else if (m instanceof Embedding && asked.has('Embedding')) q = EmbeddingInt.from(m, o);
    else if (m instanceof GRU) q = GRUInt.from(m, o);
    else if (m instanceof LSTM) q = LSTMInt.from(m, o);
    if (q) {
      q.training = m.training;
      model.setSubmodule(path, q);
    }
  }
  if (float.length) {
    process.emitWarning(`linger.init: no fixed-point version of ${float.join(', ')}; left in float (its input is dequantized)`,
      { code: 'LINGER_FLOAT_LEFT', type: 'LingerWarning' });
  }
  installQuantizedOps(model, graph, defaults, opts.bmm ? bmmLayers(model, graph, defaults) : []);
  recordTransform(model, 'init');
  return model;
}

/**
 * One iq layer per quantizable op of the graph, in call order, kept in the root's `linger_iq`
 * list: tensor–tensor add → IQAdd, cat → IQCat, mul (tensor or number) → IQMul, sum → IQSum,
 * sigmoid and nn.Sigmoid → IQSigmoid, tanh and nn.Tanh → IQTanh, clamp → IQClamp (only bounds
 * linger's iqClamp takes; others stay float). While the root runs, the k-th such op goes to the
 * k-th slot when its operands are quantized (else it is computed in float). An op in a module
 * given to disableQuant (or an nn.Sigmoid/Tanh given to it) keeps a float slot.
 */
function installQuantizedOps(model: Module, graph: Graph | undefined, bits: QuantBits, bmm: (BmmInt | null)[] = []): void {
  const ops = (graph?.nodes ?? []).filter((n) => isQuantizableOp(model, n));
  if (!graph) {
    process.emitWarning('linger.init: the model was not traced, so element-wise ops (add, cat, mul, sum, sigmoid, tanh, clamp) stay in float; call linger.traceLayers first or pass { dummyInput } to init',
      { code: 'LINGER_NOT_TRACED', type: 'LingerWarning' });
  }
  const slots = ops.map((n) => iqLayerFor(model, n, bits));
  const layers = slots.filter((l): l is Module => l !== null);
  if (!layers.length && !bmm.length) return;
  const list = new ModuleList(layers);
  list.training = model.training;
  for (const m of list.modules()) m.training = model.training;
  if (layers.length) (model as unknown as Record<string, Module>).linger_iq = list;
  setCallWrapper(model, (run) => {
    let k = 0, kb = 0;
    return withQuantizedOps((op, args, dim, attrs) => {
      // F.bmm: its own counter (slots of bmms kept in float are null)
      if (op === 'bmm') { const b = bmm[kb++]; return b ? b(args[0], args[1]) as Tensor : undefined; }
      const layer = slots[k++];
      if (!layer || !args.every((a) => a.quantScale !== undefined)) return undefined;
      if (op === 'add' && layer instanceof IQAdd) return layer(args[0], args[1]) as Tensor;
      if (op === 'cat' && layer instanceof IQCat) return layer(args, dim ?? 0) as Tensor;
      if (op === 'mul' && layer instanceof IQMul) return layer(args[0], args.length > 1 ? args[1] : attrs?.scalar) as Tensor;
      if (op === 'sum' && layer instanceof IQSum) return layer(args[0], { dim: attrs?.dim, keepdim: attrs?.keepdim }) as Tensor;
      if ((op === 'sigmoid' && layer instanceof IQSigmoid) || (op === 'tanh' && layer instanceof IQTanh)) return layer(args[0]) as Tensor;
      if (op === 'clamp' && layer instanceof IQClamp && attrs?.min === layer.min && attrs?.max === layer.max) return layer(args[0]) as Tensor;
      return undefined;
    }, run);
  });
}

/** The ops whose calls reach the quantized-op hook (tensor.ts), as the graph records them. */
function isQuantizableOp(model: Module, n: GraphNode): boolean {
  if (n.kind === 'module') {
    // nn.Sigmoid / nn.Tanh are leaf modules: the graph has the module, the hook sees its op
    const m = submodule(model, n.target);
    return m instanceof Sigmoid || m instanceof Tanh;
  }
  if (n.target === 'add') {
    // the hook sees tensor–tensor adds only (a tensor made in forward is a constant of NaN/null)
    const o = n.inputs[1] as { constant?: number | null } | undefined;
    return !!o && !(typeof o.constant === 'number' && !Number.isNaN(o.constant));
  }
  return ['cat', 'mul', 'sum', 'sigmoid', 'tanh', 'clamp'].includes(n.target);
}

function submodule(model: Module, path: string | undefined): Module | undefined {
  if (path === undefined) return undefined;
  try {
    return path ? model.getSubmodule(path) : model;
  } catch {
    return undefined;
  }
}

/** The iq layer of one graph op, or null where it stays float. */
function iqLayerFor(model: Module, n: GraphNode, bits: QuantBits): Module | null {
  const owner = submodule(model, n.kind === 'module' ? n.target : n.scope);
  if (owner && NO_QUANT.has(owner)) return null;
  const b = { ...bits, ...(owner ? LAYER_BITS.get(owner) : {}) };
  const kind = n.kind === 'module' ? (owner instanceof Sigmoid ? 'sigmoid' : 'tanh') : n.target;
  let layer: Module | null;
  switch (kind) {
    case 'add': layer = new IQAdd(b); break;
    case 'cat': layer = new IQCat(b); break;
    case 'mul': layer = new IQMul(b); break;
    case 'sum': layer = new IQSum(b); break;
    case 'sigmoid': layer = new IQSigmoid(b); break;
    case 'tanh': layer = new IQTanh(b); break;
    case 'clamp': {
      const a = (n.attrs ?? {}) as { min?: number | null; max?: number | null };
      layer = IQClamp.supports(a.min, a.max, b.outBits) ? new IQClamp(b, a.min!, a.max!) : null;
      break;
    }
    default: layer = null;
  }
  if (layer) layer.training = model.training;
  return layer;
}

/**
 * linger's SetFunctionBmmQuant(True): one BmmInt per F.bmm of the graph, in call order, kept in the
 * root's `linger_bmm` list. A bmm belongs to the module whose forward calls it (the graph's scope):
 * disableQuant on it keeps the bmm in float (a null slot), quantModule's bits on it apply.
 */
function bmmLayers(model: Module, graph: Graph | undefined, defaults: QuantBits): (BmmInt | null)[] {
  const slots = (graph?.nodes ?? []).filter((n) => n.kind === 'op' && n.target === 'bmm').map((n) => {
    let owner: Module | undefined;
    try {
      owner = n.scope === undefined ? undefined : model.getSubmodule(n.scope);
    } catch {
      owner = undefined;
    }
    if (owner && NO_QUANT.has(owner)) return null;
    const b = new BmmInt({ ...defaults, ...(owner ? LAYER_BITS.get(owner) : {}) });
    b.training = model.training;
    return b;
  });
  const layers = slots.filter((b): b is BmmInt => b !== null);
  if (layers.length) {
    const list = new ModuleList(layers);
    list.training = model.training;
    (model as unknown as Record<string, Module>).linger_bmm = list;
  }
  return slots;
}

/** Anything that yields batches: tensors, or {x} objects as DataLoader yields. */
export type Batches = Iterable<Tensor | { x: Tensor }>;

/**
 * linger.calibrate: forward passes in training mode without updating any weight, to collect the
 * quantizers' running statistics (and BN's). Restores each module's mode. Returns the batch count.
 */
export function calibrate(model: Module, batches: Batches, opts: { maxBatches?: number } = {}): number {
  const modes = model.modules().map((m) => [m, m.training] as const);
  let n = 0;
  try {
    model.train();
    for (const b of batches) {
      if (opts.maxBatches !== undefined && n >= opts.maxBatches) {
        if (batches instanceof DataLoader && !(b instanceof Tensor)) disposeBatch(b as Batch);
        break;
      }
      const x = b instanceof Tensor ? b : b.x;
      tf.tidy(() => { model(x); });
      // a DataLoader's batches belong to whoever iterates it: release them
      if (batches instanceof DataLoader && !(b instanceof Tensor)) disposeBatch(b as Batch);
      n++;
    }
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
  return n;
}

/** One row of linger.quantReport: where precision goes, layer by layer. */
export interface QuantReportRow {
  path: string;
  type: string;
  bits: QuantBits;
  aheadRelu: boolean;
  scaleX: number;
  scaleW: number | null;
  scaleO: number;
  weightRange: [number, number] | null;
  biasRange: [number, number] | null;
  /** signal-to-quantization-noise ratio of the output against the float layer on the same input, dB */
  sqnrDb: number | null;
}

function range(t: tf.Tensor): [number, number] {
  return tf.tidy(() => [tf.min(t).dataSync()[0], tf.max(t).dataSync()[0]]);
}

/**
 * Runs `batch` through the model in eval mode and reports each Int layer's scales, weight/bias
 * ranges and the SQNR of its output against the same layer computed in float (no quantization of
 * its input, weights or output) on the input it received.
 */
export function quantReport(model: Module, batch: Tensor): QuantReportRow[] {
  const paths = new Map<Module, string>();
  for (const [p, m] of model.namedModules()) paths.set(m, p);
  const rows: QuantReportRow[] = [];
  const wasTraining = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  try {
    tf.tidy(() => {
      withModuleCallHook((m, args, run) => {
        const out = run();
        if (!isIntLayer(m)) return out;
        const buf = (k: string) => ((m as unknown as Record<string, Tensor | undefined>)[k])?.raw.dataSync()[0] ?? NaN;
        if (m instanceof GRUInt || m instanceof LSTMInt) {
          rows.push(recurrentRow(m, paths.get(m) ?? '?', args, out as [Tensor, unknown], buf));
          return out;
        }
        const y = out as Tensor;
        const w = m as unknown as Partial<WeightedOps>;
        let sqnr: number | null = null;
        if (w.applyWith && w.weight) {
          const x = args[0] as Tensor;
          const ref = w.applyWith(x, w.weight.raw, w.bias?.raw ?? null);
          // with ahead-ReLU only the positive range is meant to survive: compare after the ReLU
          const yf = m.aheadRelu ? tf.relu(ref.physical(y.perm)) : ref.physical(y.perm);
          const yq = m.aheadRelu ? tf.relu(y.raw) : y.raw;
          const noise = tf.sum(tf.square(tf.sub(yf, yq))).dataSync()[0];
          const signal = tf.sum(tf.square(yf)).dataSync()[0];
          sqnr = noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
        }
        rows.push({
          path: paths.get(m) ?? '?', type: m.typeName(),
          bits: { dataBits: m.dataBits, parameterBits: m.parameterBits, outBits: m.outBits }, aheadRelu: m.aheadRelu,
          scaleX: buf('scale_x'), scaleW: w.weight ? buf('scale_w') : null, scaleO: buf('scale_o'),
          weightRange: w.weight ? range(w.weight.raw) : null, biasRange: w.bias ? range(w.bias.raw) : null, sqnrDb: sqnr,
        });
        return out;
      }, () => model(batch));
    });
  } finally {
    for (const [m, t] of wasTraining) m.training = t;
  }
  return rows;
}

/** A GRUInt/LSTMInt row: input, input-weight and output scales, all weights' range, SQNR of the output sequence. */
function recurrentRow(m: GRUInt | LSTMInt, path: string, args: unknown[], out: [Tensor, unknown], buf: (k: string) => number): QuantReportRow {
  const params = m.namedParameters();
  const span = (which: string): [number, number] | null => {
    const r = params.filter(([k]) => k.startsWith(which)).map(([, p]) => range(p.raw));
    return r.length ? [Math.min(...r.map((v) => v[0])), Math.max(...r.map((v) => v[1]))] : null;
  };
  // the float layer's forward on the same input, with the same weights
  const x = args[0] as Tensor;
  const ref = m instanceof GRUInt ? GRU.prototype.forward.call(m, x) : LSTM.prototype.forward.call(m, x);
  const yf = ref[0].logical(), yq = out[0].logical();
  const noise = tf.sum(tf.square(tf.sub(yf, yq))).dataSync()[0];
  const signal = tf.sum(tf.square(yf)).dataSync()[0];
  return {
    path, type: m.typeName(), bits: { dataBits: m.dataBits, parameterBits: m.parameterBits, outBits: m.outBits }, aheadRelu: false,
    scaleX: buf('scale_i'), scaleW: buf('scale_iw'), scaleO: buf('scale_o'), weightRange: span('weight'), biasRange: span('bias'),
    sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
  };
}

/** The report as a text table (what the demo prints). */
export function formatQuantReport(rows: QuantReportRow[]): string {
  const log2 = (v: number | null) => (v === null || !Number.isFinite(v) ? '-' : `2^${Math.round(Math.log2(v))}`);
  const rng = (r: [number, number] | null) => (r ? `[${r[0].toFixed(3)}, ${r[1].toFixed(3)}]` : '-');
  const head = ['layer', 'type', 'bits x/w/o', 'scale_x', 'scale_w', 'scale_o', 'weight range', 'bias range', 'SQNR dB'];
  const body = rows.map((r) => [
    r.path, r.type + (r.aheadRelu ? ' (ahead ReLU)' : ''), `${r.bits.dataBits}/${r.bits.parameterBits}/${r.bits.outBits}`,
    log2(r.scaleX), log2(r.scaleW), log2(r.scaleO), rng(r.weightRange), rng(r.biasRange),
    r.sqnrDb === null ? '-' : Number.isFinite(r.sqnrDb) ? r.sqnrDb.toFixed(1) : '∞',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
