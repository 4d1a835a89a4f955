// Planning an imported graph (docs/onnx.md, "Import from PyTorch"): which nodes become layers at
// which PyTorch module paths, which parameter-free nodes become modules of their own, which LSTM/GRU
// chains become one module call, and the program of steps the model's forward runs. Every op-specific
// decision is asked of the op's registration (ops/<Op>.ts); this file names no op.
import { Step, stepInputs } from './model';
import { Graph } from './read';
import { planRecurrent, RecurrentPlan } from './recurrent';
import { NodeInfo, opDef, PlanContext } from './registry';

export interface Plan {
  steps: Step[];
  /** each layer's path and the node that makes it (nodes sharing a weight share the first's layer) */
  layerPaths: Map<string, NodeInfo>;
  /** each module op's path and the nodes it is called for */
  modulePaths: Map<string, NodeInfo[]>;
  rnnPlans: RecurrentPlan[];
}

/** `layer1.0.conv1.weight` → `layer1.0.conv1`; anonymous names (onnx::Conv_55) give null. */
function pathOfParamName(name: string): string | null {
  const m = /^([A-Za-z_][\w]*(?:\.[\w]+)*)\.(weight|bias|running_mean|running_var)$/.exec(name);
  return m && !name.includes('::') ? m[1] : null;
}

/** Decides, for every remaining node, a layer (with its module path), a module op, an alias or an op. */
export function planGraph(g: Graph): Plan {
  const consumers = new Map<string, NodeInfo[]>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const absorbed = new Set<NodeInfo>();
  const aliased = new Set<NodeInfo>();
  const ctx: PlanContext = {
    consts: g.consts,
    consumers,
    opset: g.opset,
    isConst: (name) => !!name && g.consts.has(name),
    isOutput: (v) => g.outputNames.includes(v),
    absorb: (n, alias = false) => {
      absorbed.add(n);
      if (alias) aliased.add(n);
    },
  };
  const steps: Step[] = [];

  // LSTM/GRU: a chain of nodes (one per layer) and its glue become one module call
  const rnnPathSet = new Set<string>();
  const rnnPlans = planRecurrent(
    { nodes: g.nodes, consts: g.consts, consumers, outputNames: g.outputNames, paramNames: g.paramNames, opset: g.opset },
    rnnPathSet,
  );
  const rnnRole = new Map<NodeInfo, { plan: RecurrentPlan; width?: number }>();
  for (const p of rnnPlans) {
    for (const n of [...p.nodes, ...p.absorbed]) rnnRole.set(n, { plan: p });
    for (const { node, width } of p.shapes) rnnRole.set(node, { plan: p, width });
  }

  // layers: nodes whose weights are constants (the op decides, and may absorb a neighbour)
  const layerNodes: NodeInfo[] = [];
  for (const n of g.nodes) {
    const d = opDef(n.op)!;
    if (d.layer) {
      if (d.layer.accepts(n, ctx)) layerNodes.push(n);
    } else d.plan?.(n, ctx);
  }

  const layerPath = layerPathsOf(layerNodes, rnnPathSet);
  const modulePaths = moduleOpPaths(g, ctx, absorbed, layerNodes, new Set<string>([...layerPath.values(), ...rnnPathSet]));

  // steps in graph order
  for (const n of g.nodes) {
    const rr = rnnRole.get(n);
    if (rr) {
      const r = rr.plan.run;
      if (rr.width !== undefined)
        steps.push({ node: n, kind: 'shape', shape: { input: r.input, batchFirst: r.batchFirst, width: rr.width }, outputs: n.outputs });
      else if (n === rr.plan.nodes[rr.plan.nodes.length - 1]) {
        steps.push({
          node: rr.plan.nodes[0],
          kind: 'rnn',
          path: rr.plan.path,
          rnn: r,
          outputs: [r.y?.name ?? '', ...r.yh, ...r.yc].filter(Boolean),
        });
      }
      continue;
    }
    if (absorbed.has(n)) {
      if (aliased.has(n)) steps.push({ node: n, kind: 'alias', outputs: [n.outputs[0]] });
      continue;
    }
    if (layerPath.has(n)) {
      steps.push({ node: n, kind: 'layer', path: layerPath.get(n)!, outputs: [n.fusedBias ? n.fusedBias.outputs[0] : n.outputs[0]] });
      continue;
    }
    const mp = n.scope && modulePaths.get(n.scope)?.includes(n) ? n.scope : null;
    if (mp !== null) steps.push({ node: n, kind: 'layer', path: mp, outputs: [n.outputs[0]] });
    else steps.push({ node: n, kind: 'op', outputs: n.outputs });
  }
  for (const s of steps) opDef(s.node.op)!.checkPlanned?.(s.node, ctx);

  const layerPaths = new Map<string, NodeInfo>();
  for (const [n, p] of layerPath) if (!layerPaths.has(p)) layerPaths.set(p, n);
  return { steps: rnnPlans.length ? sortSteps(steps) : steps, layerPaths, modulePaths, rnnPlans };
}

/** Module paths for layers: the parameter's name, else the node's scope, else made up (conv_0). */
function layerPathsOf(layerNodes: NodeInfo[], rnnPaths: Set<string>): Map<NodeInfo, string> {
  const layerPath = new Map<NodeInfo, string>();
  const byWeight = new Map<string, string>();
  const used = new Map<string, string>(); // path → weight key that owns it
  for (const p of rnnPaths) used.set(p, `rnn:${p}`);
  const counters = new Map<string, number>();
  for (const n of layerNodes) {
    const layer = opDef(n.op)!.layer!;
    const key = n.inputs[1];
    const known = byWeight.get(key);
    if (known !== undefined) {
      layerPath.set(n, known);
      continue;
    }
    let p: string | null = null;
    for (const i of layer.params(n)) {
      p = pathOfParamName(i);
      if (p) break;
    }
    if (p === null && n.scope) p = n.scope;
    if (p === null || p === '' || used.has(p)) {
      const base = p || layer.stem || 'layer';
      let i = counters.get(base) ?? 0;
      while (used.has(`${base}_${i}`)) i++;
      counters.set(base, i + 1);
      p = `${base}_${i}`;
    }
    used.set(p, key);
    byWeight.set(key, p);
    layerPath.set(n, p);
  }
  return layerPath;
}

/** Parameter-free module ops: a scope that holds only this one kind of op (same attributes), and nothing below it. */
function moduleOpPaths(
  g: Graph,
  ctx: PlanContext,
  absorbed: Set<NodeInfo>,
  layerNodes: NodeInfo[],
  claimed: Set<string>,
): Map<string, NodeInfo[]> {
  const groups = new Map<string, NodeInfo[]>();
  for (const n of g.nodes) {
    if (!opDef(n.op)!.module || absorbed.has(n) || layerNodes.includes(n) || !n.scope) continue;
    groups.set(n.scope, [...(groups.get(n.scope) ?? []), n]);
  }
  // PyTorch names the second call of a shared module `relu_1`: merge it into `relu`
  for (const [p, ns] of [...groups]) {
    const m = /^(.*?)_(\d+)$/.exec(p);
    if (!m) continue;
    const base = groups.get(m[1]);
    if (base && base[0].op === ns[0].op && ns.every((x) => x.op === ns[0].op)) {
      base.push(...ns);
      groups.delete(p);
      for (const x of ns) x.scope = m[1];
    }
  }
  const allScopes = g.nodes.map((n) => n.scope).filter((s): s is string => !!s);
  const modulePaths = new Map<string, NodeInfo[]>();
  for (const [p, ns] of groups) {
    const op = ns[0].op;
    if (ns.some((x) => x.op !== op || !sameAttrs(x, ns[0]))) continue;
    if (claimed.has(p) || allScopes.some((s) => s.startsWith(p + '.')) || [...claimed].some((c) => c.startsWith(p + '.'))) continue;
    if (g.nodes.some((x) => x.scope === p && !ns.includes(x) && !absorbed.has(x))) continue;
    const accepts = opDef(op)!.module!.accepts;
    if (accepts && !ns.every((x) => accepts(x, ctx))) continue;
    modulePaths.set(p, ns);
  }
  return modulePaths;
}

function sameAttrs(a: NodeInfo, b: NodeInfo): boolean {
  const norm = (n: NodeInfo) =>
    JSON.stringify(
      n.attrs
        .names()
        .sort()
        .map((k) => [k, n.attrs.raw(k)]),
    );
  return norm(a) === norm(b);
}

/** Steps in an order where every value is computed before it is read (graph order where it already is). */
function sortSteps(steps: Step[]): Step[] {
  const producer = new Map<string, number>();
  steps.forEach((s, i) => {
    for (const o of s.outputs) if (o) producer.set(o, i);
  });
  const deps = steps.map(() => 0);
  const users = steps.map(() => [] as number[]);
  steps.forEach((s, i) => {
    for (const v of new Set(stepInputs(s))) {
      const p = v ? producer.get(v) : undefined;
      if (p === undefined || p === i) continue;
      deps[i]++;
      users[p].push(i);
    }
  });
  const ready = steps.map((_, i) => i).filter((i) => deps[i] === 0);
  const out: Step[] = [];
  while (ready.length) {
    // the earliest ready step first: graph order is kept wherever it is valid
    let k = 0;
    for (let j = 1; j < ready.length; j++) if (ready[j] < ready[k]) k = j;
    const i = ready.splice(k, 1)[0];
    out.push(steps[i]);
    for (const u of users[i]) if (--deps[u] === 0) ready.push(u);
  }
  if (out.length !== steps.length) throw new Error('internal: the recurrent layers make a cycle in the graph');
  return out;
}
