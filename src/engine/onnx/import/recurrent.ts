// ONNX import of PyTorch's nn.LSTM / nn.GRU exports (docs/onnx.md, "Importing LSTM/GRU").
// PyTorch writes one ONNX LSTM/GRU node per layer (both directions in it), with the gate rows
// reordered (LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h, linear_before_reset=1), W/R/B concatenated
// over directions, and glue around it: Transpose [1, 0, 2] for batch_first, Y [T, D, B, H] →
// [T, B, D·H] between layers (Squeeze, or Transpose + Reshape when bidirectional), Slice of h0/c0
// per layer, Concat of the final states. Here the chain of nodes of one module becomes one engine
// nn.LSTM / nn.GRU (numLayers, bidirectional, batchFirst recovered from the pattern), weights
// un-reordered so the state-dict keys and values equal PyTorch's; the model's forward calls that
// module once for the whole chain. What differs between the cells (gates and their order,
// activations, their own checks, the engine module) is in the op's own file (ops/LSTM.ts,
// ops/GRU.ts); the glue patterns here are shared.
import { tf } from '../../backend/tf';
import * as F from '../../nn/functional';
import { Module, Parameter } from '../../nn/module';
import { Tensor, tensor } from '../../tensor';
import { ConstValue, intsOf, isConst, shapeValue } from './constEval';
import { NodeInfo, opDef, RecurrentCell } from './registry';
import { asTensor, RtValue } from './values';

/** The node's cell as its op registered it (only nodes of recurrent ops are planned here). */
function cellOf(n: NodeInfo): RecurrentCell {
  return opDef(n.op)!.recurrent!;
}

/** What the forward needs to run one recurrent module: its inputs and where its results go. */
export interface RecurrentRun {
  /** the op (LSTM, GRU) */
  cell: string;
  /** whether the module takes and returns a cell state next to the hidden state (LSTM's) */
  cellState: boolean;
  layers: number;
  directions: number;
  hidden: number;
  batchFirst: boolean;
  /** the module's input (the sequence, batch-first when batchFirst) */
  input: string;
  /** initial states of each layer ('' where the node has none) */
  h0: string[];
  c0: string[];
  /** the output: the end of the glue chain PyTorch wrote (module layout), or the last node's Y (ONNX layout) */
  y: { name: string; native: boolean } | null;
  /** each layer's Y_h / Y_c ('' where unused) */
  yh: string[];
  yc: string[];
}

export interface RecurrentPlan {
  path: string;
  nodes: NodeInfo[];
  /** glue nodes the module call replaces */
  absorbed: NodeInfo[];
  /** Shape nodes of absorbed values: their dims come from the input's ([T, B, width], seq-first) */
  shapes: { node: NodeInfo; width: number }[];
  run: RecurrentRun;
  inputSize: number;
  bias: boolean;
}

interface PlanContext {
  nodes: NodeInfo[];
  consts: Map<string, ConstValue>;
  consumers: Map<string, NodeInfo[]>;
  outputNames: string[];
  paramNames: Set<string>;
  opset: number;
}

/** Checks a node is a PyTorch-style LSTM/GRU the engine's modules compute; returns its geometry. */
function checkNode(n: NodeInfo, consts: Map<string, ConstValue>): { cell: string; D: number; H: number; inF: number } {
  const cell = n.op;
  const cc = cellOf(n);
  const { attrs, what } = n;
  const G = cc.gates;
  const dir = attrs.string('direction', 'forward');
  if (dir !== 'forward' && dir !== 'bidirectional')
    throw new Error(`${what}: direction '${dir}' is not supported (PyTorch exports 'forward' or 'bidirectional')`);
  const D = dir === 'bidirectional' ? 2 : 1;
  for (const a of ['clip', 'activation_alpha', 'activation_beta'])
    if (attrs.has(a)) throw new Error(`${what}: the '${a}' attribute is not supported (PyTorch's ${cell} has none)`);
  if (attrs.has('activations')) {
    const raw = attrs.raw('activations')!;
    const acts = (raw.strings ?? []).map((s) => new TextDecoder().decode(s));
    const want = [...cc.activations, ...(D === 2 ? cc.activations : [])];
    if (acts.join() !== want.join())
      throw new Error(`${what}: activations [${acts.join(', ')}] are not supported (only PyTorch's [${want.join(', ')}])`);
  }
  if (attrs.int('layout', 0) !== 0) throw new Error(`${what}: layout=1 (batch-major) is not supported (PyTorch exports layout 0)`);
  cc.checkAttrs(n);
  if (n.inputs[4]) throw new Error(`${what}: sequence_lens is not supported (packed sequences)`);
  cc.checkInputs(n);
  const c = (i: number, label: string) => {
    const name = n.inputs[i];
    const v = name ? consts.get(name) : undefined;
    if (!v) throw new Error(`${what}: ${label} must be a constant (initializer)`);
    return v;
  };
  const W = c(1, 'W'),
    R = c(2, 'R');
  const H = attrs.int('hidden_size', R.dims[2] ?? 0);
  if (!Number.isInteger(H) || H < 1 || H > 65536) throw new Error(`${what}: hidden_size ${H} is out of range`);
  if (W.dims.length !== 3 || W.dims[0] !== D || W.dims[1] !== G * H || W.dims[2] < 1) {
    throw new Error(`${what}: W has shape [${W.dims.join(', ')}], expected [${D}, ${G * H}, input_size]`);
  }
  if (R.dims.join() !== [D, G * H, H].join())
    throw new Error(`${what}: R has shape [${R.dims.join(', ')}], expected [${D}, ${G * H}, ${H}]`);
  if (n.inputs[3]) {
    const B = c(3, 'B');
    if (B.dims.join() !== [D, 2 * G * H].join())
      throw new Error(`${what}: B has shape [${B.dims.join(', ')}], expected [${D}, ${2 * G * H}]`);
  }
  return { cell, D, H, inF: W.dims[2] };
}

/** Finds the LSTM/GRU nodes, chains them into modules and decides the glue each module call replaces. */
export function planRecurrent(ctx: PlanContext, usedPaths: Set<string>): RecurrentPlan[] {
  const { consts, consumers, outputNames, opset } = ctx;
  const producer = new Map<string, NodeInfo>();
  for (const n of ctx.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const usersOf = (v: string) => consumers.get(v) ?? [];
  const isOut = (v: string) => outputNames.includes(v);
  /** the only consumer of `v` other than Shape nodes (null if several, none, or a graph output) */
  const soleUser = (v: string): NodeInfo | null => {
    const us = usersOf(v).filter((u) => u.op !== 'Shape');
    return us.length === 1 && !isOut(v) ? us[0] : null;
  };
  const shapeUsers = (v: string) => usersOf(v).filter((u) => u.op === 'Shape');
  const perm = (n: NodeInfo) => (n.attrs.ints('perm') ?? []).join();
  const squeezeAxes = (n: NodeInfo) =>
    opset >= 13
      ? n.inputs[1] && consts.has(n.inputs[1])
        ? intsOf(consts.get(n.inputs[1])!, 'axes')
        : null
      : (n.attrs.ints('axes') ?? null);
  const reshapeOk = (n: NodeInfo, width: number) => {
    const s = n.inputs[1] ? consts.get(n.inputs[1]) : undefined;
    if (!s || n.attrs.int('allowzero', 0) !== 0) return false;
    const v = intsOf(s, 'shape');
    return v.length === 3 && v[0] === 0 && v[1] === 0 && (v[2] === -1 || v[2] === width);
  };
  /** Y [T, D, B, H] → [T, B, D·H] as PyTorch writes it: the nodes, or null */
  const flatten = (y: string, D: number, H: number): NodeInfo[] | null => {
    const a = soleUser(y);
    if (!a || shapeUsers(y).length) return null;
    if (D === 1) return a.op === 'Squeeze' && (squeezeAxes(a) ?? []).join() === '1' ? [a] : null;
    if (a.op !== 'Transpose' || perm(a) !== '0,2,1,3') return null;
    const b = soleUser(a.outputs[0]);
    if (!b || shapeUsers(a.outputs[0]).length || b.op !== 'Reshape' || b.inputs[0] !== a.outputs[0] || !reshapeOk(b, D * H)) return null;
    return [a, b];
  };

  const rnn = ctx.nodes.filter((n) => opDef(n.op)?.recurrent);
  const info = new Map(rnn.map((n) => [n, checkNode(n, consts)]));
  // chains: a node whose X is the previous node's Y, flattened
  const chains: { nodes: NodeInfo[]; glue: NodeInfo[]; shapes: { node: NodeInfo; width: number }[] }[] = [];
  const chainOf = new Map<NodeInfo, number>();
  for (const n of rnn) {
    const me = info.get(n)!;
    const x = n.inputs[0];
    let linked = false;
    const p = producer.get(x);
    for (const [k, ch] of chains.entries()) {
      const last = ch.nodes[ch.nodes.length - 1];
      const li = info.get(last)!;
      if (last.op !== n.op || li.D !== me.D || li.H !== me.H || me.inF !== me.D * me.H || last.scope !== n.scope) continue;
      const glue = flatten(last.outputs[0], li.D, li.H);
      if (!glue || glue[glue.length - 1].outputs[0] !== x || !p || soleUser(x) !== n) continue;
      ch.nodes.push(n);
      ch.glue.push(...glue);
      ch.shapes.push(...shapeUsers(x).map((s) => ({ node: s, width: me.D * me.H })));
      chainOf.set(n, k);
      linked = true;
      break;
    }
    if (!linked) {
      chainOf.set(n, chains.length);
      chains.push({ nodes: [n], glue: [], shapes: [] });
    }
  }

  const plans: RecurrentPlan[] = [];
  for (const ch of chains) {
    const first = ch.nodes[0],
      last = ch.nodes[ch.nodes.length - 1];
    const { cell, D, H, inF } = info.get(first)!;
    const absorbed = [...ch.glue];
    const shapes = [...ch.shapes];
    // batch_first: the module's own Transpose [1, 0, 2] in front of the first node
    let input = first.inputs[0];
    let batchFirst = false;
    const t = producer.get(input);
    if (t && t.op === 'Transpose' && perm(t) === '1,0,2' && t.scope === first.scope && soleUser(input) === first) {
      batchFirst = true;
      shapes.push(...shapeUsers(input).map((s) => ({ node: s, width: inF })));
      absorbed.push(t);
      input = t.inputs[0];
    }
    // the output: flattened (and transposed back when batch_first) as PyTorch's module returns it
    let y: RecurrentRun['y'] = null;
    const yName = last.outputs[0];
    if (yName && (usersOf(yName).length || isOut(yName))) {
      y = { name: yName, native: true };
      const glue = flatten(yName, D, H);
      if (glue) {
        let end = glue[glue.length - 1];
        const chain = [...glue];
        let ok = true;
        if (batchFirst) {
          const tb = soleUser(end.outputs[0]);
          ok = !!tb && tb.op === 'Transpose' && perm(tb) === '1,0,2' && tb.scope === first.scope && !shapeUsers(end.outputs[0]).length;
          if (ok) {
            chain.push(tb!);
            end = tb!;
          }
        }
        if (ok) {
          absorbed.push(...chain);
          y = { name: end.outputs[0], native: false };
        }
      }
    }
    // the module path: the node's scope, else the initializers' names (weight_ih_l0), else made up
    let path = first.scope ?? '';
    if (!path) {
      const G = cellOf(first).gates;
      for (const name of ctx.paramNames) {
        const m = /^(.+)\.weight_ih_l0$/.exec(name);
        const v = consts.get(name);
        if (m && !name.includes('::') && v && v.dims.join() === [G * H, inF].join() && !usedPaths.has(m[1])) {
          path = m[1];
          break;
        }
      }
    }
    if (!path) path = cell.toLowerCase();
    if (usedPaths.has(path)) {
      let i = 1;
      while (usedPaths.has(`${path}_${i}`)) i++;
      path = `${path}_${i}`;
    }
    usedPaths.add(path);
    plans.push({
      path,
      nodes: ch.nodes,
      absorbed,
      shapes,
      inputSize: inF,
      bias: !!first.inputs[3],
      run: {
        cell,
        cellState: cellOf(first).cellState,
        layers: ch.nodes.length,
        directions: D,
        hidden: H,
        batchFirst,
        input,
        y,
        h0: ch.nodes.map((n) => n.inputs[5] ?? ''),
        c0: cellOf(first).cellState ? ch.nodes.map((n) => n.inputs[6] ?? '') : [],
        yh: ch.nodes.map((n) => n.outputs[1] ?? ''),
        yc: cellOf(first).cellState ? ch.nodes.map((n) => n.outputs[2] ?? '') : [],
      },
    });
    // every layer after the first needs the same bias choice (one module has one `bias` flag)
    for (const n of ch.nodes)
      if (!!n.inputs[3] !== !!first.inputs[3]) throw new Error(`${n.what}: layers of one ${cell} differ in having a bias`);
  }
  return plans;
}

/** The engine module for a plan, with PyTorch's weights (gate rows put back in PyTorch's order). */
export function makeRecurrent(p: RecurrentPlan, consts: Map<string, ConstValue>): Module {
  const { cell, layers, directions: D, hidden: H, batchFirst } = p.run;
  const opts = { numLayers: layers, bidirectional: D === 2, batchFirst, bias: p.bias };
  const cc = cellOf(p.nodes[0]);
  const m = cc.make(p.inputSize, H, opts);
  const G = cc.gates,
    order = cc.order;
  const params = m as unknown as Record<string, Parameter>;
  /** direction d's [G·H, cols] block of an ONNX [D, G·H, cols] tensor, rows in PyTorch's order */
  const unorder = (v: ConstValue, d: number, cols: number, offset = 0): Float32Array => {
    const out = new Float32Array(G * H * cols);
    const base = d * (v.data.length / D) + offset;
    for (let j = 0; j < G; j++) {
      const src = v.data as ArrayLike<number>;
      const from = base + j * H * cols;
      const to = order[j] * H * cols;
      for (let k = 0; k < H * cols; k++) out[to + k] = src[from + k];
    }
    return out;
  };
  p.nodes.forEach((n, l) => {
    const W = consts.get(n.inputs[1])!,
      R = consts.get(n.inputs[2])!,
      B = n.inputs[3] ? consts.get(n.inputs[3])! : null;
    const inF = W.dims[2];
    if (inF !== (l === 0 ? p.inputSize : D * H)) throw new Error(`${n.what}: input size ${inF} does not fit layer ${l} of the ${cell}`);
    for (let d = 0; d < D; d++) {
      const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
      params[`weight_ih${sfx}`].assignLogical(tensor(unorder(W, d, inF), [G * H, inF]));
      params[`weight_hh${sfx}`].assignLogical(tensor(unorder(R, d, H), [G * H, H]));
      if (B) {
        params[`bias_ih${sfx}`].assignLogical(tensor(unorder(B, d, 1), [G * H]));
        params[`bias_hh${sfx}`].assignLogical(tensor(unorder(B, d, 1, G * H), [G * H]));
      }
    }
  });
  return m;
}

/** Runs a recurrent module on the graph's values: calls it once, returns the values of its outputs. */
export function runRecurrent(m: Module, r: RecurrentRun, get: (name: string) => RtValue | undefined, what: string): Map<string, RtValue> {
  const x = asTensor(get(r.input), what);
  if (x.rank !== 3) throw new Error(`${what}: expected a 3-d sequence, got [${x.shape.join(', ')}]`);
  const B = x.shape[r.batchFirst ? 0 : 1];
  const D = r.directions,
    H = r.hidden;
  const zeros = () => new Tensor(tf.zeros([D, B, H]));
  const state = (names: string[]): Tensor | undefined => {
    const vs = names.map((n) => (n ? get(n) : undefined));
    if (vs.every((v) => v === undefined || (isConst(v) && Array.prototype.every.call(v.data, (z: number) => z === 0)))) return undefined;
    const parts = vs.map((v) => (v === undefined ? zeros() : asTensor(v, what)));
    return parts.length === 1 ? parts[0] : F.cat(parts, 0);
  };
  let out: Tensor,
    hn: Tensor,
    cn: Tensor | null = null;
  if (r.cellState) {
    const h0 = state(r.h0),
      c0 = state(r.c0);
    const full = () => new Tensor(tf.zeros([r.layers * D, B, H]));
    const res = m(x, h0 || c0 ? [h0 ?? full(), c0 ?? full()] : undefined) as [Tensor, [Tensor, Tensor]];
    [out, [hn, cn]] = res;
  } else {
    [out, hn] = m(x, state(r.h0)) as [Tensor, Tensor];
  }
  const vals = new Map<string, RtValue>();
  if (r.y) {
    if (!r.y.native) vals.set(r.y.name, out);
    else {
      const seq = r.batchFirst ? out.transpose(0, 1) : out;
      const [T] = seq.shape;
      vals.set(r.y.name, seq.reshape([T, B, D, H]).permute([0, 2, 1, 3]));
    }
  }
  const layerOf = (s: Tensor, l: number) => new Tensor(tf.slice(s.logical(), [l * D, 0, 0], [D, B, H]));
  r.yh.forEach((n, l) => {
    if (n) vals.set(n, layerOf(hn, l));
  });
  if (cn)
    r.yc.forEach((n, l) => {
      if (n) vals.set(n, layerOf(cn!, l));
    });
  return vals;
}

/** A Shape node of a value the module call replaced: [T, B, width] from the module's input. */
export function recurrentShape(n: NodeInfo, x: Tensor, batchFirst: boolean, width: number): RtValue[] {
  const s = x.shape;
  const dims = batchFirst ? [s[1], s[0], width] : [s[0], s[1], width];
  return [shapeValue(dims, n.attrs)];
}
