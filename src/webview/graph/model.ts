// What the graph editor draws, computed from plain data (no DOM, no vscode): the traced dataflow
// graph (linger.graphOf / a checkpoint's linger.graph) and the module tree after traceLayers, which
// says which Conv+BN pairs were fused and which layers carry the ahead-ReLU mark.
import type { Graph } from '../../engine/trace/graph';
import type { ModuleTreeEntry } from '../../engine/state/checkpoint';

export interface GraphPayload {
  title: string;
  graph: Graph;
  modules: ModuleTreeEntry[];
  /** the model file drawn (the chip's findings for it join the drawing) */
  file?: string;
  chip?: GraphChip;
}

/** The chip's verdict and memory plan per layer (docs/chip-rules.md, "In VS Code"). */
export interface GraphChip {
  platform: string;
  layers: Record<
    string,
    {
      activationBytes: number;
      weightBytes: number;
      workspaceBytes?: number;
      findings: { severity: 'error' | 'warning'; rule: string; message: string; suggestion?: string }[];
    }
  >;
  sramPeakBytes: number;
  sramBytes: number;
  weightBytes: number;
  psramBytes: number;
}

export interface DrawNode {
  id: string;
  label: string;
  sub: string;
  kind: 'input' | 'output' | 'module' | 'op';
  path?: string;
  fused?: string;
  ahead?: boolean;
  /** the chip's worst finding on this layer */
  chip?: 'error' | 'warning';
  /** its activation + weight bytes over the largest layer's (0–1), for colour by memory */
  memory?: number;
}
export interface DrawEdge {
  from: string;
  to: string;
  ahead: boolean;
  shape?: string;
}
export interface DrawCluster {
  id: string;
  label: string;
  members: string[];
}
export interface DrawGraph {
  nodes: DrawNode[];
  edges: DrawEdge[];
  clusters: DrawCluster[];
}

export function toDrawGraph(p: GraphPayload): DrawGraph {
  const after = new Map(p.modules.map((e) => [e.path, e]));
  const nodes: DrawNode[] = [];
  const edges: DrawEdge[] = [];
  const clusters: DrawCluster[] = [];
  p.graph.inputs.forEach((inp, i) => nodes.push({ id: `in${i}`, label: `input ${i}`, sub: `[${inp.shape.join(', ')}]`, kind: 'input' }));
  const idOf = (ref: { input: number } | { node: number; output: number } | { constant: number }): string | undefined =>
    'input' in ref ? `in${ref.input}` : 'node' in ref ? `n${ref.node}` : undefined;
  for (const n of p.graph.nodes) {
    const m = n.kind === 'module' ? after.get(n.target) : undefined;
    const type = m?.type ?? n.type;
    nodes.push({
      id: `n${n.id}`,
      kind: n.kind,
      label: n.kind === 'module' ? n.target : n.type,
      sub: n.kind === 'module' ? (type === n.type ? type : `${n.type} → ${type}`) : `[${(n.outputShapes[0] ?? []).join(', ')}]`,
      ...(n.kind === 'module' ? { path: n.target } : {}),
      ...(m?.aheadRelu ? { ahead: true } : {}),
    });
    n.inputs.forEach((ref, i) => {
      const from = idOf(ref);
      if (from) edges.push({ from, to: `n${n.id}`, ahead: false, shape: `[${(n.inputShapes[i] ?? []).join(', ')}]` });
    });
  }
  p.graph.outputs.forEach((ref, i) => {
    nodes.push({ id: `out${i}`, label: `output ${i}`, sub: '', kind: 'output' });
    const from = idOf(ref);
    if (from) edges.push({ from, to: `out${i}`, ahead: false });
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  if (p.chip) {
    const bytes = (l: { activationBytes: number; weightBytes: number }) => l.activationBytes + l.weightBytes;
    const max = Math.max(1, ...Object.values(p.chip.layers).map(bytes));
    for (const n of nodes) {
      const l = n.path !== undefined ? p.chip.layers[n.path] : undefined;
      if (!l) continue;
      n.memory = bytes(l) / max;
      if (l.findings.length) n.chip = l.findings.some((f) => f.severity === 'error') ? 'error' : 'warning';
    }
  }
  // fused pairs: a conv that became NormalizeConvBN* and the BN (now EmptyBatchNorm) it feeds
  const fusedTail = new Map<string, DrawNode>(); // the BN of a fused pair → its conv
  for (const n of nodes) {
    if (!n.path || !/^NormalizeConv.*BN/.test(after.get(n.path)?.type ?? '')) continue;
    const bn = edges
      .filter((e) => e.from === n.id)
      .map((e) => byId.get(e.to))
      .find((t) => t?.path && after.get(t.path)?.type === 'EmptyBatchNorm');
    const members = [n.id, ...(bn ? [bn.id] : [])];
    for (const id of members) byId.get(id)!.fused = `c${n.id}`;
    if (bn) fusedTail.set(bn.id, n);
    clusters.push({ id: `c${n.id}`, label: `${after.get(n.path)!.type} (fused)`, members });
  }
  // ahead-ReLU: the edge into the ReLU that consumes a marked layer (for a fused pair, from its BN)
  for (const e of edges) {
    const a = byId.get(e.from),
      b = byId.get(e.to);
    const marked = a?.ahead || fusedTail.get(e.from)?.ahead;
    if (marked && b && /relu/i.test(b.sub + b.label)) e.ahead = true;
  }
  return { nodes, edges, clusters };
}
