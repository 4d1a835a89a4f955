import { tf } from '../backend/tf';
import { Module, withModuleCallHook } from '../nn/module';
import { Tensor, withoutRecording, withRecorder } from '../tensor';

/** Where a tensor came from: the traced function's input i, or output o of node n. */
export type TensorRef = { input: number } | { node: number; output: number };

/** One call recorded while tracing: a leaf module call or a functional/tensor op. */
export interface GraphNode {
  id: number;
  kind: 'module' | 'op';
  /** module: its path in the root model ('' for the root itself, '?' when not in it); op: the op name */
  target: string;
  /** module class name, or the op name */
  type: string;
  inputs: (TensorRef | { constant: number })[];
  inputShapes: number[][];
  outputShapes: number[][];
  attrs?: Record<string, unknown>;
  /** op: path of the module whose forward ran it ('' the root), when known */
  scope?: string;
}

/** The dataflow graph of one forward pass: plain data (JSON-serialisable). */
export interface Graph {
  /** dtype only for int32 inputs (token ids); float32 otherwise */
  inputs: { shape: number[]; dtype?: 'int32' }[];
  nodes: GraphNode[];
  outputs: TensorRef[];
}

/** Modules recorded as one node (their inner ops are not recorded): layers, not containers. */
export function isLeaf(m: Module): boolean {
  return m.children().length === 0 || (m as { traceAsLeaf?: boolean }).traceAsLeaf === true;
}

function flattenTensors(v: unknown, out: Tensor[] = []): Tensor[] {
  if (v instanceof Tensor) out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => flattenTensors(x, out));
  return out;
}
/** `v` with its tensors, in flattenTensors' order, replaced by `ts` (an LSTM's [out, [h, c]] keeps its shape) */
function refill(v: unknown, ts: Tensor[], at = { i: 0 }): unknown {
  if (v instanceof Tensor) return ts[at.i++];
  if (Array.isArray(v)) return v.map((x) => refill(x, ts, at));
  return v;
}

/**
 * Runs `target(...inputs)` once and records every leaf-module call and every functional op,
 * with which tensor feeds which consumer. Paths are resolved inside `root`. The forward runs in
 * eval mode (no running statistics change) and every tensor it makes is released.
 */
export function captureGraph(root: Module, target: Module, inputs: Tensor[]): Graph {
  const paths = new Map<Module, string>();
  for (const [p, m] of root.namedModules()) paths.set(m, p);
  const producer = new Map<Tensor, TensorRef>();
  inputs.forEach((t, i) => producer.set(t, { input: i }));
  const nodes: GraphNode[] = [];

  const refOf = (v: Tensor | number): TensorRef | { constant: number } => {
    if (typeof v === 'number') return { constant: v };
    const r = producer.get(v);
    if (r) return r;
    // a tensor made inside forward without a recorded op (a constant, a parameter used directly)
    return { constant: NaN };
  };
  // the non-leaf modules running: an op belongs to the innermost one
  const owners: Module[] = [];
  const addNode = (
    kind: 'module' | 'op',
    target: string,
    type: string,
    ins: (Tensor | number)[],
    outs: Tensor[],
    attrs?: Record<string, unknown>,
  ) => {
    const id = nodes.length;
    const owner = kind === 'op' && owners.length ? paths.get(owners[owners.length - 1]) : undefined;
    nodes.push({
      id,
      kind,
      target,
      type,
      inputs: ins.map(refOf),
      inputShapes: ins.map((t) => (typeof t === 'number' ? [] : t.shape)),
      outputShapes: outs.map((t) => t.shape),
      ...(attrs && Object.keys(attrs).length ? { attrs: plainAttrs(attrs) } : {}),
      ...(owner !== undefined ? { scope: owner } : {}),
    });
    outs.forEach((t, o) => producer.set(t, { node: id, output: o }));
  };

  const wasTraining = root.modules().map((m) => [m, m.training] as const);
  root.eval();
  let outputs: TensorRef[] = [];
  try {
    tf.tidy(() => {
      const result = withRecorder(
        (op, ins, out, attrs) => addNode('op', op, op, ins, [out], attrs),
        () =>
          withModuleCallHook(
            (m, args, run) => {
              if (!isLeaf(m)) {
                owners.push(m);
                try {
                  return run();
                } finally {
                  owners.pop();
                }
              }
              const out = withoutRecording(run);
              const ins = flattenTensors(args);
              // a module that returns its input (Identity) still gets an output of its own
              const outs = flattenTensors(out).map((t) => (ins.includes(t) ? new Tensor(t.raw, t.perm) : t));
              addNode('module', paths.get(m) ?? '?', m.typeName(), ins, outs);
              return refill(out, outs);
            },
            () => target(...inputs),
          ),
      );
      outputs = flattenTensors(result).map((t) => producer.get(t) ?? { input: -1 });
    });
  } finally {
    for (const [m, t] of wasTraining) m.training = t;
  }
  return { inputs: inputs.map((t) => ({ shape: t.shape, ...(t.dtype === 'int32' ? { dtype: 'int32' as const } : {}) })), nodes, outputs };
}

function plainAttrs(a: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(a, (_k, v) => (v instanceof Tensor ? { shape: v.shape } : v))) as Record<string, unknown>;
}

export function sameRef(a: TensorRef | { constant: number }, b: TensorRef): boolean {
  return 'node' in a && 'node' in b ? a.node === b.node && a.output === b.output : 'input' in a && 'input' in b && a.input === b.input;
}

/** Every consumer of a node's output: node ids, plus -1 for each time it is a graph output. */
export function consumersOf(g: Graph, ref: TensorRef): number[] {
  const out: number[] = [];
  for (const n of g.nodes) {
    for (const i of n.inputs) if (sameRef(i, ref)) out.push(n.id);
  }
  for (const o of g.outputs) if (sameRef(o, ref)) out.push(-1);
  return out;
}
