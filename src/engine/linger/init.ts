// linger.init (docs/contract.md#init): the fixed stage. Replaces layers with their Int versions and
// wires the tensor ops (iqAdd, iqCat, …, bmm) to theirs, as the op registry (linger/ops/) says; and
// provides calibrate and the per-layer quantization report.
import { tf } from '../backend/tf';
import { Module, recordTransform, setBeforeLoad, setCallWrapper, withModuleCallHook } from '../nn/module';
import { Tensor, withQuantizedOps } from '../tensor';
import { Batch, DataLoader, disposeBatch } from '../train/data';
import { captureGraph, Graph, GraphNode } from '../trace/graph';
import { NormalizeConvBNBase } from './convbn';
import { aheadReluOf } from './normalize';
import './ops';
import { IntOrigin, QuantBits, withRecordedScales } from './ops/base';
import {
  functionFlags,
  intOpOf,
  isFloatOnly,
  isIntLayer,
  opLayerName,
  opLists,
  optInNames,
  QuantReportRow,
  replacementOf,
  tensorOp,
  tensorOpOfNode,
} from './ops/registry';
import { WeightedOps } from './ops/weighted/layer';
import { checkTransformOrder, graphOf } from './transforms';

export type { QuantReportRow } from './ops/registry';

export interface InitOptions extends Partial<QuantBits> {
  /** an input to record the graph with, when the model was not traced (for iqAdd/iqCat) */
  dummyInput?: Tensor | Tensor[];
  /**
   * Layer types replaced only when asked (linger's `quant_modules`: supported, not default):
   * `'LayerNorm'` → LayerNormInt, `'Embedding'` → EmbeddingInt, e.g.
   * `init(model, { quantModules: ['LayerNorm', 'Embedding'] })`. disableQuant and quantModule apply
   * to them as to any layer.
   */
  quantModules?: string[];
  /**
   * Functions quantized only when asked (linger's SetFunction*Quant(True)): `'bmm'` — each F.bmm of
   * the traced graph gets a BmmInt, `_linger_round_tensor_function_bmm_<i>` of the module calling it (a bmm belongs to
   * the module whose forward calls it, so disableQuant on that module keeps it in float and
   * quantModule's bits on it apply); `'channel_shuffle'` — linger.channelShuffle of a quantized
   * tensor is exported to thinker as ShuffleChannel.
   */
  functions?: string[];
  /** the same as `functions: ['bmm']` */
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
    if (v !== undefined && (!Number.isInteger(v) || v < 2 || v > 16))
      throw new Error(`linger.quantModule: ${k} must be an integer from 2 to 16, got ${v}`);
  }
  LAYER_BITS.set(m, { ...LAYER_BITS.get(m), ...bits });
  return m;
}

function settingsOf(m: Module): Pick<IntOrigin, 'normalizeData' | 'normalizeWeight' | 'normalizeBias'> {
  const s = m as unknown as { normalizeData?: number | null; normalizeWeight?: number | null; normalizeBias?: number | null };
  return { normalizeData: s.normalizeData ?? null, normalizeWeight: s.normalizeWeight ?? null, normalizeBias: s.normalizeBias ?? null };
}

/**
 * linger.init: every module the op registry has an Int version of becomes it — Conv2d/
 * ConvTranspose2d/Conv1d/Linear/BatchNorm2d/AvgPool2d/ReLU6/GRU/LSTM (and their Normalize and fused
 * ConvBN versions; a fused ConvBN becomes one conv Int layer whose weight and bias are BN-folded
 * with the running statistics), LayerNorm/Embedding when asked. ReLU, max-pool, reshape and flatten
 * pass scales through; the tensor ops of the traced graph (add, cat, mul, sum, sigmoid, tanh, clamp
 * of quantized tensors; bmm when asked) get their iq layers. Returns `model`.
 */
export function init(model: Module, opts: InitOptions = {}): Module {
  const defaults: QuantBits = { dataBits: opts.dataBits ?? 8, parameterBits: opts.parameterBits ?? 8, outBits: opts.outBits ?? 8 };
  for (const [k, v] of Object.entries(defaults)) {
    if (!Number.isInteger(v) || v < 2 || v > 16) throw new Error(`linger.init: ${k} must be an integer from 2 to 16, got ${v}`);
  }
  const optIns = optInNames();
  for (const t of opts.quantModules ?? []) {
    if (!optIns.includes(t)) throw new Error(`linger.init: quantModules: unknown type '${String(t)}' (${optIns.join(' or ')})`);
  }
  const flags = functionFlags();
  for (const f of opts.functions ?? []) {
    if (!flags.includes(f)) throw new Error(`linger.init: functions: unknown function '${String(f)}' (${flags.join(', ')})`);
  }
  const asked = new Set(opts.quantModules ?? []);
  const functions = new Set([...(opts.functions ?? []), ...(opts.bmm ? ['bmm'] : [])]);
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
    if (isFloatOnly(m)) {
      float.push(`${path} (${m.typeName()})`);
      continue;
    }
    const r = replacementOf(m);
    if (!r || (r.def.optIn && !asked.has(r.def.optIn))) continue;
    const q = r.replacement.from(m, { ...defaults, ...LAYER_BITS.get(m), aheadRelu: aheadReluOf(m), ...settingsOf(m) });
    q.training = m.training;
    model.setSubmodule(path, q);
  }
  if (float.length) {
    process.emitWarning(`linger.init: no fixed-point version of ${float.join(', ')}; left in float (its input is dequantized)`, {
      code: 'LINGER_FLOAT_LEFT',
      type: 'LingerWarning',
    });
  }
  installQuantizedOps(model, graph, defaults, functions);
  recordTransform(model, 'init');
  return model;
}

function submodule(model: Module, path: string | undefined): Module | undefined {
  if (path === undefined) return undefined;
  try {
    return path ? model.getSubmodule(path) : model;
  } catch {
    return undefined;
  }
}

/** One call site of a tensor op: its layer (null: float), the module it belongs to and its name there. */
interface OpSlot {
  layer: Module | null;
  owner: Module;
  ownerPath: string;
  /** its name in `owner`: from the graph until its first call names it as linger's counter does */
  name: string;
  /** the call site's place in the graph (the order layers register in when a dict makes them) */
  seq: number;
}

let warnedOldOpLists = false;

/**
 * One layer per call site of each tensor op of the graph, in call order. As in linger, a layer is a
 * child of the module whose forward calls the op (nn.Sigmoid's own for nn.Sigmoid), named
 * `_linger_round_tensor_<op>_<i>` by a counter of that module (one for add, cat, mul, sum, sigmoid,
 * tanh and clamp; one for bmm, quantized when asked), and it becomes a child (a key of the state
 * dict, a line of the print) at its first call, or when a state dict holding its keys loads
 * (docs/fixed-point.md#conformance-with-linger-111). While the root runs, the k-th call reaching a
 * counter's ops goes to its k-th call site (the op's `call` decides whether it can take it:
 * quantized operands, supported bounds; else it is computed in float). An op in a module given to
 * disableQuant keeps a float slot.
 */
function installQuantizedOps(model: Module, graph: Graph | undefined, bits: QuantBits, functions: Set<string>): void {
  if (!graph) {
    process.emitWarning(
      'linger.init: the model was not traced, so element-wise ops (add, cat, mul, sum, sigmoid, tanh, clamp) stay in float; call linger.traceLayers first or pass { dummyInput } to init',
      { code: 'LINGER_NOT_TRACED', type: 'LingerWarning' },
    );
  }
  const enabled = (flag: string | undefined) => flag === undefined || functions.has(flag);
  const lists = opLists().filter((l) => enabled(l.flag));
  const slots = new Map<string, OpSlot[]>();
  const counters = new Map<string, number>();
  for (const { list } of lists) {
    const s: OpSlot[] = [];
    for (const n of graph?.nodes ?? []) {
      const def = tensorOpOfNode(n, n.kind === 'module' ? submodule(model, n.target) : undefined);
      if (!def || def.list !== list) continue;
      const ownerPath = n.kind === 'module' ? n.target : (n.scope ?? '');
      const owner = submodule(model, ownerPath) ?? model;
      const layer = layerFor(model, n, bits);
      const key = `${list}\0${ownerPath}`;
      const i = counters.get(key) ?? 0;
      // linger counts the calls it quantizes (where an operand is not quantized, the first call renames it)
      if (layer) counters.set(key, i + 1);
      s.push({ layer, owner, ownerPath, name: opLayerName(def, i), seq: n.id });
    }
    slots.set(list, s);
  }
  const stateless = [...functions].some((f) => enabled(f) && !lists.some((l) => l.flag === f));
  if (![...slots.values()].some((s) => s.some((l) => l.layer !== null)) && !stateless) return;
  const fields = (o: Module) => o as unknown as Record<string, Module | undefined>;
  const register = (s: OpSlot) => {
    if (s.layer && fields(s.owner)[s.name] !== s.layer) fields(s.owner)[s.name] = s.layer;
  };
  setCallWrapper(model, (run) => {
    const next = new Map<string, number>();
    // linger's counters: per module and forward, of the calls it quantizes
    const taken = new Map<string, number>();
    return withQuantizedOps((op, args, dim, attrs) => {
      const def = tensorOp(op);
      if (!def || !enabled(def.flag)) return undefined;
      if (!def.list) return def.call(null, args, dim, attrs);
      const k = next.get(def.list) ?? 0;
      next.set(def.list, k + 1);
      const slot = slots.get(def.list)?.[k];
      if (!slot?.layer) return def.call(null, args, dim, attrs);
      const counter = `${def.list}\0${slot.ownerPath}`;
      const i = taken.get(counter) ?? 0;
      // a child before it runs (as linger's setattr), kept only if the op was handed to it
      const fresh = fields(slot.owner)[slot.name] !== slot.layer;
      if (fresh) {
        slot.name = opLayerName(def, i);
        slot.layer.training = slot.owner.training; // as linger's; a child follows train()/eval() from here
        register(slot);
      }
      const y = def.call(slot.layer, args, dim, attrs);
      if (y !== undefined) taken.set(counter, i + 1);
      else if (fresh) delete fields(slot.owner)[slot.name];
      return y;
    }, run);
  });
  setBeforeLoad(model, (sd) => {
    const paths = new Map<Module, string>();
    for (const [p, m] of model.namedModules()) paths.set(m, p);
    const prefixOf = (s: OpSlot) => `${paths.get(s.owner) ? `${paths.get(s.owner)}.` : ''}${s.name}.`;
    // our older layout: the k-th layer of a counter was the root's `<list>.<k>`
    let renamed = '';
    for (const [list, s] of slots) {
      const made = s.filter((x) => x.layer);
      for (const key of [...sd.keys()]) {
        const m = key.startsWith(`${list}.`) ? /^(\d+)\.(.+)$/.exec(key.slice(list.length + 1)) : null;
        const slot = m ? made[Number(m[1])] : undefined;
        if (!m || !slot) continue;
        sd.set(prefixOf(slot) + m[2], sd.get(key)!);
        sd.delete(key);
        renamed ||= `${key} → ${prefixOf(slot)}${m[2]}`;
      }
    }
    if (renamed && !warnedOldOpLists) {
      warnedOldOpLists = true;
      console.warn(
        `linger: this state dict keeps the op layers in root lists (${renamed}), an earlier layout of ours; they are read under linger's names`,
      );
    }
    const keys = [...sd.keys()];
    const added: OpSlot[] = [];
    for (const s of [...slots.values()].flat().sort((a, b) => a.seq - b.seq)) {
      if (!s.layer || fields(s.owner)[s.name] === s.layer) continue;
      const pre = prefixOf(s);
      if (!keys.some((k) => k.startsWith(pre))) continue;
      s.layer.training = s.owner.training;
      register(s);
      added.push(s);
    }
    return () => {
      for (const s of added) delete fields(s.owner)[s.name];
    };
  });
}

/** The layer of one call site of a tensor op, or null where it stays float. */
function layerFor(model: Module, n: GraphNode, bits: QuantBits): Module | null {
  const owner = submodule(model, n.kind === 'module' ? n.target : n.scope);
  if (owner && NO_QUANT.has(owner)) return null;
  const def = tensorOpOfNode(n, n.kind === 'module' ? owner : undefined);
  const layer = def?.make?.({ ...bits, ...(owner ? LAYER_BITS.get(owner) : {}) }, n) ?? null;
  if (layer) layer.training = model.training;
  return layer;
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
      tf.tidy(() => {
        model(x);
      });
      // a DataLoader's batches belong to whoever iterates it: release them
      if (batches instanceof DataLoader && !(b instanceof Tensor)) disposeBatch(b as Batch);
      n++;
    }
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
  return n;
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
  // the report records the eval scales as an export does, then puts the buffers back: a plain eval
  // leaves linger's scale_* alone (docs/fixed-point.md#conformance-with-linger-111)
  const saved = model
    .namedBuffers()
    .filter(([k]) => /(^|\.)scale_/.test(k))
    .map(([, b]) => [b, b.raw.clone()] as const);
  model.eval();
  try {
    tf.tidy(() => {
      withRecordedScales(() =>
        withModuleCallHook(
          (m, args, run) => {
            const out = run();
            if (!isIntLayer(m)) return out;
            const buf = (k: string) => (m as unknown as Record<string, Tensor | undefined>)[k]?.raw.dataSync()[0] ?? NaN;
            const own = intOpOf(m)?.report;
            if (own) {
              rows.push(own(m, paths.get(m) ?? '?', args, out));
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
              path: paths.get(m) ?? '?',
              type: m.typeName(),
              bits: { dataBits: m.dataBits, parameterBits: m.parameterBits, outBits: m.outBits },
              aheadRelu: m.aheadRelu,
              scaleX: buf('scale_x'),
              scaleW: w.weight ? buf('scale_w') : null,
              scaleO: buf('scale_o'),
              weightRange: w.weight ? range(w.weight.raw) : null,
              biasRange: w.bias ? range(w.bias.raw) : null,
              sqnrDb: sqnr,
            });
            return out;
          },
          () => model(batch),
        ),
      );
    });
  } finally {
    for (const [m, t] of wasTraining) m.training = t;
    for (const [b, t] of saved) {
      b.raw.assign(t);
      t.dispose();
    }
  }
  return rows;
}

/** The report as a text table (what the demo prints). */
export function formatQuantReport(rows: QuantReportRow[]): string {
  const log2 = (v: number | null) => (v === null || !Number.isFinite(v) ? '-' : `2^${Math.round(Math.log2(v))}`);
  const rng = (r: [number, number] | null) => (r ? `[${r[0].toFixed(3)}, ${r[1].toFixed(3)}]` : '-');
  const head = ['layer', 'type', 'bits x/w/o', 'scale_x', 'scale_w', 'scale_o', 'weight range', 'bias range', 'SQNR dB'];
  const body = rows.map((r) => [
    r.path,
    r.type + (r.aheadRelu ? ' (ahead ReLU)' : ''),
    `${r.bits.dataBits}/${r.bits.parameterBits}/${r.bits.outBits}`,
    log2(r.scaleX),
    log2(r.scaleW),
    log2(r.scaleO),
    rng(r.weightRange),
    rng(r.biasRange),
    r.sqnrDb === null ? '-' : Number.isFinite(r.sqnrDb) ? r.sqnrDb.toFixed(1) : '∞',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
