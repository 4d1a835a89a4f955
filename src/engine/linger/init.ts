// linger.init (SPEC §5): the fixed stage. Replaces layers with Int versions, wires iqAdd/iqCat,
// and provides calibrate and the per-layer quantization report.
import { tf } from '../backend/tf';
import { ReLU6, Sigmoid, Tanh } from '../nn/activation';
import { BatchNorm2d } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvTranspose2d } from '../nn/conv';
import { ModuleList } from '../nn/container';
import { Linear } from '../nn/linear';
import { Softmax } from '../nn/misc';
import { Module, recordTransform, setCallWrapper, withModuleCallHook } from '../nn/module';
import { AdaptiveAvgPool2d, AvgPool2d } from '../nn/pooling';
import { Tensor, withQuantizedOps } from '../tensor';
import { Batch, DataLoader } from '../train/data';
import { disposeBatch } from '../train/loop';
import { captureGraph, Graph } from '../trace/graph';
import { NormalizeConvBN1d, NormalizeConvBN2d, NormalizeConvBNBase, NormalizeConvTransposeBN2d } from './convbn';
import {
  AvgPool2dInt, BatchNormInt, Conv1dInt, Conv2dInt, ConvTranspose2dInt, IntOrigin, IQAdd, IQCat, isIntLayer, LinearInt, QuantBits, WeightedOps,
} from './intLayers';
import { aheadReluOf } from './normalize';
import { checkTransformOrder, graphOf } from './transforms';

export interface InitOptions extends Partial<QuantBits> {
  /** an input to record the graph with, when the model was not traced (for iqAdd/iqCat) */
  dummyInput?: Tensor | Tensor[];
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
  return m instanceof Sigmoid || m instanceof Tanh || m instanceof Softmax || m instanceof ReLU6 || m instanceof AdaptiveAvgPool2d;
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
    if (q) {
      q.training = m.training;
      model.setSubmodule(path, q);
    }
  }
  if (float.length) {
    process.emitWarning(`linger.init: no fixed-point version of ${float.join(', ')}; left in float (its input is dequantized)`,
      { code: 'LINGER_FLOAT_LEFT', type: 'LingerWarning' });
  }
  installQuantizedOps(model, graph, defaults);
  recordTransform(model, 'init');
  return model;
}

/**
 * One iqAdd/iqCat layer per tensor–tensor add/cat of the graph, in call order, kept in the root's
 * `linger_iq` list; while the root runs, the k-th such op goes to the k-th layer when its
 * operands are quantized (else it is computed in float).
 */
function installQuantizedOps(model: Module, graph: Graph | undefined, bits: QuantBits): void {
  const ops = (graph?.nodes ?? []).filter((n) => n.kind === 'op' && (n.target === 'add' || n.target === 'cat') &&
    n.inputs.filter((i) => !('constant' in i)).length >= 2);
  if (!graph) {
    process.emitWarning('linger.init: the model was not traced, so element-wise add/cat stay in float; call linger.traceLayers first or pass { dummyInput } to init',
      { code: 'LINGER_NOT_TRACED', type: 'LingerWarning' });
  }
  if (!ops.length) return;
  const list = new ModuleList(ops.map((n) => (n.target === 'add' ? new IQAdd(bits) : new IQCat(bits))));
  list.training = model.training;
  for (const m of list.modules()) m.training = model.training;
  (model as unknown as Record<string, Module>).linger_iq = list;
  setCallWrapper(model, (run) => {
    let k = 0;
    const layers = list.children();
    return withQuantizedOps((op, args, dim) => {
      const layer = layers[k++];
      if (!layer || !args.every((a) => a.quantScale !== undefined)) return undefined;
      if (op === 'add' && layer instanceof IQAdd) return layer(args[0], args[1]) as Tensor;
      if (op === 'cat' && layer instanceof IQCat) return layer(args, dim ?? 0) as Tensor;
      return undefined;
    }, run);
  });
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
        const y = out as Tensor;
        const buf = (k: string) => ((m as unknown as Record<string, Tensor | undefined>)[k])?.raw.dataSync()[0] ?? NaN;
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
