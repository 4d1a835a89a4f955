// What the graph editor's node panel says about one node (Netron-like): plain data from the payload,
// no DOM. For an Int layer: its bits, its eval scales as 2^n with a Q-format, where a quantized
// input's scale comes from, the BatchNorm folded into it, its ahead-ReLU mark (docs/contract.md).
import type { GraphNode } from '../../engine/trace/graph';
import type { ModuleTreeEntry } from '../../engine/state/checkpoint';
import type { GraphPayload } from './model';

export interface NodeDetails {
  title: string;
  subtitle: string;
  rows: [string, string][];
  /** one-line explanations shown under the rows */
  notes: string[];
}

/** Modules and ops that pass a quantized tensor on with its scale (linger's IQTensor pass-through). */
const PASS_MODULES = new Set(['ReLU', 'MaxPool2d', 'Flatten', 'Dropout', 'EmptyBatchNorm', 'Identity']);
const PASS_OPS = new Set(['relu', 'maxPool2d', 'reshape', 'view', 'permute', 'transpose', 'dropout']);

/** 2^n, its Q-format for a signed `bits`-bit code (m integer bits, n fractional), and its step. */
export function scaleText(s: number, bits: number): string {
  const n = Math.round(Math.log2(s));
  const m = bits - 1 - n;
  // Qm.n (m integer bits besides the sign, n fractional) where both are ≥ 0, else the fractional bits
  const q = m >= 0 && n >= 0 ? ` · Q${m}.${n}` : ` · ${n} fractional bits`;
  const range = (2 ** (bits - 1) - 1) / s;
  return `2^${n}${q} (step 1/${s >= 1 ? s : `2^${n}`}, up to ±${+range.toPrecision(4)})`;
}

const shape = (s: number[] | undefined) => (s ? `[${s.join(', ')}]` : '?');

function fusedBn(p: GraphPayload, n: GraphNode, after: Map<string, ModuleTreeEntry>): string | undefined {
  // traced: a NormalizeConvBN*; fixed: an Int conv whose BN became an EmptyBatchNorm
  const bn = p.graph.nodes.find(
    (b) => b.kind === 'module' && after.get(b.target)?.type === 'EmptyBatchNorm' && b.inputs.some((r) => 'node' in r && r.node === n.id),
  );
  return bn ? bn.target : undefined;
}

/** The quantized layer whose output reaches `n`'s first input through pass-through nodes only. */
function carriedFrom(p: GraphPayload, n: GraphNode, after: Map<string, ModuleTreeEntry>): ModuleTreeEntry | undefined {
  const byId = new Map(p.graph.nodes.map((g) => [g.id, g]));
  let ref = n.inputs[0];
  for (let hops = 0; hops < 64 && ref && 'node' in ref; hops++) {
    const src = byId.get(ref.node);
    if (!src) return undefined;
    const e = src.kind === 'module' ? after.get(src.target) : undefined;
    if (e?.bits) return e.scales?.o !== undefined ? e : undefined;
    const passes = src.kind === 'module' ? PASS_MODULES.has(e?.type ?? src.type) : PASS_OPS.has(src.type);
    if (!passes) return undefined;
    ref = src.inputs[0];
  }
  return undefined;
}

/** The panel's content for the graph node with this id (the drawing's `n<id>`), or undefined. */
export function nodeDetails(p: GraphPayload, graphNodeId: number): NodeDetails | undefined {
  const n = p.graph.nodes.find((g) => g.id === graphNodeId);
  if (!n) return undefined;
  const after = new Map(p.modules.map((e) => [e.path, e]));
  const rows: [string, string][] = [];
  const notes: string[] = [];
  n.inputShapes.forEach((s, i) => rows.push([n.inputShapes.length > 1 ? `input ${i}` : 'input', shape(s)]));
  n.outputShapes.forEach((s, i) => rows.push([n.outputShapes.length > 1 ? `output ${i}` : 'output', shape(s)]));
  if (n.kind === 'op') {
    if (n.scope !== undefined) rows.push(['called in', n.scope || '(the model)']);
    for (const [k, v] of Object.entries(n.attrs ?? {})) rows.push([k, JSON.stringify(v)]);
    return { title: n.type, subtitle: 'tensor op', rows, notes };
  }
  const e = after.get(n.target);
  const type = e?.type ?? n.type;
  if (e) {
    // its own and its children's (a fused NormalizeConvBN2d holds its conv and BN as children)
    const inside = p.modules.filter((m) => m.path === e.path || (e.path === '' ? true : m.path.startsWith(`${e.path}.`)));
    rows.push(['parameters', inside.reduce((a, m) => a + m.parameters, 0).toLocaleString('en-US')]);
    if (e.repr) rows.push(['settings', e.repr]);
  }
  const bn = fusedBn(p, n, after);
  if (bn)
    notes.push(
      `BatchNorm '${bn}' is folded into this conv: its statistics and affine move into the weight and bias when a state dict loads.`,
    );
  if (e?.aheadRelu) notes.push('ahead ReLU: the output scale covers the positive range only (a ReLU follows).');
  if (e?.normalize) {
    const c = (v: number | null) => (v === null ? 'none' : `±${v}`);
    rows.push(['normalize (data, weight, bias)', `${c(e.normalize.data)}, ${c(e.normalize.weight)}, ${c(e.normalize.bias)}`]);
  }
  if (e?.bits) {
    rows.push(['bits (data, parameter, out)', `${e.bits.data}, ${e.bits.parameter}, ${e.bits.out}`]);
    const src = carriedFrom(p, n, after);
    if (src?.scales?.o !== undefined) rows.push(['scale x', `${scaleText(src.scales.o, e.bits.data)}, carried from ${src.path}`]);
    else if (e.scales?.x !== undefined) rows.push(['scale x', scaleText(e.scales.x, e.bits.data)]);
    if (e.scales?.w !== undefined) rows.push(['scale w', scaleText(e.scales.w, e.bits.parameter)]);
    if (e.scales?.o !== undefined) rows.push(['scale o', scaleText(e.scales.o, e.bits.out)]);
    if (!e.scales) notes.push('not calibrated yet: its scales come from the first training or calibration batches.');
  }
  const chip = p.chip?.layers[n.target];
  if (p.chip && chip) {
    const kb = (b: number) => (b >= 1024 ? `${(b / 1024).toFixed(1)} KB` : `${b} B`);
    const errors = chip.findings.filter((f) => f.severity === 'error');
    rows.push([
      `chip (${p.chip.platform})`,
      errors.length ? errors.map((f) => f.rule).join(', ') : chip.findings.length ? 'runs, with warnings' : 'fits',
    ]);
    rows.push(['activation (SRAM)', kb(chip.activationBytes)]);
    if (chip.weightBytes) rows.push(['weights (PSRAM, packed)', kb(chip.weightBytes)]);
    if (chip.workspaceBytes) rows.push(['workspace', kb(chip.workspaceBytes)]);
    for (const f of chip.findings)
      notes.push(`${f.severity === 'error' ? 'chip error' : 'chip warning'}: ${f.message}${f.suggestion ? ` — ${f.suggestion}` : ''}`);
  }
  return { title: n.target || '(the model)', subtitle: type === n.type ? type : `${n.type} → ${type}`, rows, notes };
}
