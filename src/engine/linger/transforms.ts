// The float-stage transforms: traceLayers (fusion + ahead-ReLU marks) and normalizeLayers.
import { BatchNorm1d, BatchNorm2d, BatchNormNd } from '../nn/batchnorm';
import { ClassTable } from '../nn/classTable';
import { Conv1d, Conv2d, ConvNd, ConvTranspose2d } from '../nn/conv';
import { Linear } from '../nn/linear';
import { lastLoadAt, Module, recordTransform, TransformName, transformsOf } from '../nn/module';
import { ReLU } from '../nn/activation';
import { Tensor } from '../tensor';
import { captureGraph, consumersOf, Graph, GraphNode } from '../trace/graph';
import { EmptyBatchNorm, NormalizeConvBN1d, NormalizeConvBN2d, NormalizeConvBNBase, NormalizeConvTransposeBN2d } from './convbn';
import { aheadReluOf, NORMALIZE_TABLE, NormalizeSettings } from './normalize';

export const LINGER_STAGE_ORDER = 'LINGER_STAGE_ORDER';
export const LINGER_LOAD_ORDER = 'LINGER_LOAD_ORDER';

const NAMES: Record<TransformName, string> = { trace: 'linger.traceLayers', normalize: 'linger.normalizeLayers', init: 'linger.init' };

/** docs/contract.md#load-order: the order errors and warnings every transform checks first. */
export function checkTransformOrder(root: Module, t: TransformName): void {
  const done = transformsOf(root);
  const name = NAMES[t];
  if (t === 'init' && done.includes('init')) {
    throw new Error(`${name}: the model is already initialized for fixed point; init runs once, as the last transform`);
  }
  if (t !== 'init' && done.includes('init')) {
    throw new Error(
      `${name} after linger.init: the model is already fixed-point; apply ${name} before init (traceLayers → normalizeLayers → init)`,
    );
  }
  if (t === 'trace' && done.includes('trace')) {
    throw new Error(`${name}: the model is already traced; trace once, before any other transform (traceLayers → normalizeLayers → init)`);
  }
  if (t === 'trace' && done.includes('normalize')) {
    process.emitWarning(
      `${name} after linger.normalizeLayers: put traceLayers first, before all other configuration (traceLayers → normalizeLayers → init)`,
      { code: LINGER_STAGE_ORDER, type: 'LingerWarning' },
    );
  }
  if (lastLoadAt(root) !== undefined) {
    process.emitWarning(
      `${name} after loadStateDict(): load the state dict after the last transform. This engine carries the loaded weights over, ` +
        'but Python linger rebuilds the layers and would lose them',
      { code: LINGER_LOAD_ORDER, type: 'LingerWarning' },
    );
  }
}

export interface TraceOptions {
  fuseBn?: boolean;
  aheadConvRelu?: boolean;
  aheadBnRelu?: boolean;
  /**
   * Mark a Linear followed by ReLU. Off by default: real linger 1.1.1 never marks a Linear, whatever its
   * `ahead_linear_relu` says (docs/contract.md#ahead-relu-marks).
   */
  aheadLinearRelu?: boolean;
}

const GRAPHS = new WeakMap<Module, Graph>();
/** The dataflow graph traceLayers recorded for this model (plain data), if it was traced. */
export function graphOf(model: Module): Graph | undefined {
  return GRAPHS.get(model);
}

/** What traceLayers fuses, by the conv's nearest registered class: the BN class it takes, the fused layer. */
interface Fusion {
  bn: abstract new (...args: never[]) => BatchNormNd;
  fuse(conv: ConvNd, bn: BatchNormNd, where: { path: string; bnPath: string }): NormalizeConvBNBase;
}
const FUSIONS = new ClassTable<Fusion>();
FUSIONS.set(Conv2d, { bn: BatchNorm2d, fuse: (c, b, w) => new NormalizeConvBN2d(c as Conv2d, b as BatchNorm2d, w) });
FUSIONS.set(Conv1d, { bn: BatchNorm1d, fuse: (c, b, w) => new NormalizeConvBN1d(c as Conv1d, b as BatchNorm1d, w) });
FUSIONS.set(ConvTranspose2d, {
  bn: BatchNorm2d,
  fuse: (c, b, w) => new NormalizeConvTransposeBN2d(c as ConvTranspose2d, b as BatchNorm2d, w),
});

/** Which ahead-ReLU option (TraceOptions) a layer followed by a ReLU falls under. */
const AHEAD_KIND = new ClassTable<'conv' | 'bn' | 'linear'>();
for (const c of [Conv2d, Conv1d, ConvTranspose2d]) AHEAD_KIND.set(c, 'conv');
AHEAD_KIND.set(BatchNormNd as never, 'bn');
AHEAD_KIND.set(Linear, 'linear');

function isReluNode(root: Module, n: GraphNode): boolean {
  if (n.kind === 'op') return n.target === 'relu';
  return n.target !== '?' && root.getSubmodule(n.target) instanceof ReLU;
}

/**
 * linger.trace_layers: runs `target` once on `dummyInput`, then rewrites `root` in place:
 * conservative Conv→BN fusion (docs/contract.md#fusion) and ahead-ReLU marks (docs/contract.md#ahead-relu-marks), both decided on the
 * original graph. Weights are carried over. Returns `root`.
 */
export function traceLayers(root: Module, target: Module, dummyInput: Tensor | Tensor[], opts: TraceOptions = {}): Module {
  const o = { fuseBn: true, aheadConvRelu: true, aheadBnRelu: true, aheadLinearRelu: false, ...opts };
  checkTransformOrder(root, 'trace');
  if (![...root.namedModules()].some(([, m]) => m === target)) {
    throw new Error('linger.traceLayers: the target model is not the root model nor one of its sub-modules');
  }
  const g = captureGraph(root, target, Array.isArray(dummyInput) ? dummyInput : [dummyInput]);

  const moduleNodes = g.nodes.filter((n) => n.kind === 'module' && n.target !== '?');
  const calls = new Map<string, number>();
  for (const n of moduleNodes) calls.set(n.target, (calls.get(n.target) ?? 0) + 1);
  const once = (n: GraphNode) => calls.get(n.target) === 1;
  const onlyConsumer = (n: GraphNode): GraphNode | undefined => {
    const c = consumersOf(g, { node: n.id, output: 0 });
    return c.length === 1 && c[0] >= 0 ? g.nodes[c[0]] : undefined;
  };
  const mod = (n: GraphNode) => root.getSubmodule(n.target);

  // Fusion: the conv's output has exactly one consumer, a BN module, both called once.
  const pairs: { conv: string; bn: string }[] = [];
  if (o.fuseBn) {
    for (const n of moduleNodes) {
      const m = mod(n);
      const fusion = FUSIONS.lookup(m);
      if (!fusion || !once(n)) continue;
      const c = onlyConsumer(n);
      if (!c || c.kind !== 'module' || c.target === '?' || !once(c)) continue;
      const bn = mod(c);
      if (!(bn instanceof fusion.bn) || !bn.affine || !bn.trackRunningStats || bn.numFeatures !== (m as ConvNd).outChannels) continue;
      pairs.push({ conv: n.target, bn: c.target });
    }
  }
  const fusedBn = new Map(pairs.map((p) => [p.bn, p.conv]));

  // Ahead-ReLU marks on the original graph: OPX whose only consumer is a ReLU.
  const marks = new Set<string>();
  for (const n of moduleNodes) {
    const c = onlyConsumer(n);
    if (!c || !isReluNode(root, c)) continue;
    const m = mod(n);
    const kind = AHEAD_KIND.lookup(m);
    if (kind === 'conv' && o.aheadConvRelu) marks.add(n.target);
    else if (kind === 'bn' && o.aheadBnRelu) marks.add(fusedBn.get(n.target) ?? n.target);
    else if (kind === 'linear' && o.aheadLinearRelu) marks.add(n.target);
  }

  for (const p of pairs) {
    const conv = root.getSubmodule(p.conv) as ConvNd;
    const bn = root.getSubmodule(p.bn) as BatchNormNd;
    const fused = FUSIONS.lookup(conv)!.fuse(conv, bn, { path: p.conv, bnPath: p.bn });
    fused.training = conv.training;
    // a conv normalized before the trace (the order traceLayers warns about) keeps its clamps
    if ('normalizeData' in conv) {
      const s = conv as unknown as NormalizeSettings;
      fused.normalizeData = s.normalizeData;
      fused.normalizeWeight = s.normalizeWeight;
      fused.normalizeBias = s.normalizeBias;
    }
    root.setSubmodule(p.conv, fused);
    const empty = new EmptyBatchNorm();
    empty.training = bn.training;
    root.setSubmodule(p.bn, empty);
  }
  for (const path of marks) (root.getSubmodule(path) as { aheadRelu?: boolean }).aheadRelu = true;

  GRAPHS.set(root, g);
  recordTransform(root, 'trace');
  return root;
}

export interface NormalizeOptions {
  normalizeWeightValue?: number | null;
  normalizeBiasValue?: number | null;
  normalizeOutputValue?: number | null;
}

const NO_NORMALIZE = new WeakSet<Module>();
/** linger.disable_normalize: excludes a module from normalizeLayers (call before it). */
export function disableNormalize(m: Module): Module {
  NO_NORMALIZE.add(m);
  return m;
}

/**
 * linger.normalize_layers: Conv2d/ConvTranspose2d/Conv1d/Linear/BatchNorm2d become their
 * Normalize* versions (same parameters), fused ConvBN layers get the values; clamps at ±value
 * (null = none) on weights, bias and outputs. Returns `model`.
 */
export function normalizeLayers(model: Module, opts: NormalizeOptions = {}): Module {
  checkTransformOrder(model, 'normalize');
  const v = (x: number | null | undefined, d: number | null) => (x === undefined ? d : x);
  const base = {
    normalizeWeight: v(opts.normalizeWeightValue, 8),
    normalizeBias: v(opts.normalizeBiasValue, null),
    normalizeData: v(opts.normalizeOutputValue, 8),
  };
  for (const [name, value] of Object.entries(base)) {
    if (value !== null && !(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
      throw new Error(`linger.normalizeLayers: ${name} must be a positive number or null, got ${value}`);
    }
  }
  const insideFused = new Set<Module>();
  for (const [, m] of model.namedModules()) {
    if (m instanceof NormalizeConvBNBase) for (const c of m.modules()) if (c !== m) insideFused.add(c);
  }
  for (const [path, m] of [...model.namedModules()]) {
    if (!path || insideFused.has(m) || NO_NORMALIZE.has(m)) continue;
    const s: NormalizeSettings = { ...base, aheadRelu: aheadReluOf(m) };
    const action = m instanceof NormalizeConvBNBase ? { settings: true as const } : NORMALIZE_TABLE.lookup(m);
    if (!action) continue;
    if ('settings' in action) {
      Object.assign(m, s);
      continue;
    }
    const replacement = action.from(m, s);
    replacement.training = m.training;
    model.setSubmodule(path, replacement);
  }
  recordTransform(model, 'normalize');
  return model;
}
