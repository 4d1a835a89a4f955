// The graph tpacker plans memory for (docs/chip-rules.md, "Memory"): the model's graph after
// thinker v1.1.0's graph passes that change which tensors exist — a conv followed by its
// activation becomes one op, a Transpose that only moves unit axes becomes a Reshape, chained
// Reshapes become one, a group conv becomes Split + one conv per group + iqCat, a conv whose packed
// weights pass 32 KB becomes several convs + iqCat — with every tensor's bytes as tpacker counts
// them (its packed weight layout, 16-byte aligned). Cited lines are of thinker v1.1.0's thinker/.
import { asInit } from './asinit';
import type { ChipGraph, ChipNode } from './graph';

export interface PackEntry {
  name: string;
  shape: number[];
  /** bytes per element */
  elem: number;
  kind: 'input' | 'output' | 'value' | 'const';
  /** a constant's shape after tpacker packs it (its bytes are this product × elem) */
  packed?: number[];
  /** the node producing it ('' for the input and the constants) */
  src?: PackNode;
}

export interface PackNode {
  name: string;
  layer: string;
  /** the op as tpacker names it (a float model's ops as init makes them) */
  op: string;
  inputs: string[];
  outputs: string[];
  /** the model's node this one is (or was split from) */
  src: ChipNode;
  group: number;
  index: number;
}

export interface PackGraph {
  nodes: PackNode[];
  /** tpacker's entries in its order (load_model.py:145-201: input, constants by first use, node outputs; later ones appended) */
  entries: Map<string, PackEntry>;
  outputs: string[];
}

const A = (x: number, a: number) => Math.ceil(x / a) * a;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
/** a tensor's bytes as tpacker counts them: 16-byte aligned (graph/Tensor.py:41-43) */
export const nbytes = (e: PackEntry) => A(prod(e.packed ?? e.shape) * e.elem, 16);
const CONVS = new Set(['Conv2dInt', 'Conv1dInt', 'ConvTranspose2dInt']);

function opName(n: ChipNode): string {
  if (n.op !== 'other') return n.op;
  return n.opType === 'Add' ? 'iqAdd' : n.opType === 'Concat' ? 'iqCat' : n.opType;
}

/**
 * Builds tpacker's graph of a ChipGraph. `io`: 'float' as packed with `-s Remove_QuantDequant`
 * (the Quant / Dequant at the edges kept: the packed model takes and gives float32, as
 * scripts/conformance/chip_run.py packs), 'int' as tpacker's default strips them.
 */
export function packGraph(g: ChipGraph, io: 'float' | 'int' = 'float'): PackGraph {
  const entries = new Map<string, PackEntry>();
  const thinker = g.dialect === 'thinker';
  entries.set(g.input, { name: g.input, shape: g.shapes.get(g.input) ?? [], elem: g.bytes.get(g.input) ?? 4, kind: 'input' });
  for (const n of g.nodes)
    n.inputs.forEach((v, i) => {
      const init = g.initializers.get(v);
      if (!init || entries.has(v)) return;
      // a float or traced model's weights become int8 codes, its biases int32 (init)
      const elem = thinker || g.ints.has(v) ? init.bytes : i === 1 && n.op !== 'other' ? 1 : 4;
      entries.set(v, { name: v, shape: init.dims, elem, kind: 'const' });
    });
  const nodes: PackNode[] = g.nodes.map((n, index) => ({
    name: n.name,
    layer: n.layer,
    op: opName(n),
    inputs: [...n.inputs],
    outputs: [...n.outputs],
    src: n,
    group: n.group ?? 1,
    index,
  }));
  for (const n of nodes)
    for (const o of n.outputs)
      entries.set(o, {
        name: o,
        shape: g.shapes.get(o) ?? [],
        elem: g.bytes.get(o) ?? 1,
        kind: g.outputs.includes(o) ? 'output' : 'value',
      });
  const pg: PackGraph = { nodes, entries, outputs: g.outputs };
  if (!thinker) asInit(pg);
  fuseActivations(pg);
  if (io === 'int') removeQuantDequant(pg);
  transposeToReshape(pg);
  divideGroups(pg);
  splitConvs(pg);
  sortNodes(pg);
  for (const n of pg.nodes) for (const v of n.inputs.slice(1)) pack(pg, n, v);
  return pg;
}

const users = (pg: PackGraph, v: string) => pg.nodes.filter((n) => n.inputs.includes(v));
const remove = (pg: PackGraph, n: PackNode) => pg.nodes.splice(pg.nodes.indexOf(n), 1);

/** a conv (2-D or transposed) and the Relu / Prelu / Clip reading it alone: one op (graph_optimizer/simple_fusion/methods.py:42-69) */
function fuseActivations(pg: PackGraph): void {
  for (const n of [...pg.nodes]) {
    if ((n.op !== 'Conv2dInt' && n.op !== 'ConvTranspose2dInt') || n.outputs.length !== 1) continue;
    const o = n.outputs[0];
    const u = users(pg, o);
    if (u.length !== 1 || pg.outputs.includes(o) || !['Relu', 'Prelu', 'Clip'].includes(u[0].op)) continue;
    remove(pg, u[0]);
    pg.entries.delete(o);
    n.outputs = u[0].outputs;
  }
}

/**
 * tpacker's default strategy (graph_optimizer/simple_fusion/methods.py:11-40, 71-137): the input's
 * Quant goes when only layout ops (Transpose, Reshape, Concat, Gather, Unsqueeze, Slice) lead to
 * it — the input is then int8 — and a Dequant goes when it writes an output, or when no compute op
 * lies between it and an output.
 */
function removeQuantDequant(pg: PackGraph): void {
  const LAYOUT = new Set(['Transpose', 'Reshape', 'Concat', 'Gather', 'Unsqueeze', 'Slice']);
  const COMPUTE = new Set(['Conv2dInt', 'Conv1dInt', 'LinearInt', 'LSTMInt', 'LogSoftmax', 'Concat']);
  const input = [...pg.entries.values()].find((e) => e.kind === 'input');
  const quants: PackNode[] = [];
  const path: string[] = [];
  const toQuant = (vs: string[]): boolean => {
    for (const v of vs)
      for (const n of users(pg, v)) {
        if (LAYOUT.has(n.op)) {
          path.push(...n.outputs);
          return toQuant(n.outputs);
        }
        if (n.op === 'Quant') quants.push(n);
        else if (n.op !== 'Shape') return false;
      }
    return true;
  };
  if (input && toQuant([input.name]) && quants.length) {
    input.elem = quants[0].src.attrs.int('data_bits', 8) / 8;
    for (const v of path) pg.entries.get(v)!.elem = input.elem;
    for (const q of quants) {
      for (const n of users(pg, q.outputs[0])) n.inputs = n.inputs.map((v) => (v === q.outputs[0] ? q.inputs[0] : v));
      pg.entries.delete(q.outputs[0]);
      remove(pg, q);
    }
  }
  const toOutput = (vs: string[]): boolean => {
    for (const v of vs)
      for (const n of users(pg, v)) {
        if (COMPUTE.has(n.op)) return false;
        if (pg.outputs.includes(n.outputs[0])) return true;
        return toOutput(n.outputs);
      }
    return false;
  };
  for (const d of [...pg.nodes]) {
    if (d.op !== 'Dequant') continue;
    const [x, y] = [d.inputs[0], d.outputs[0]];
    if (pg.outputs.includes(y)) {
      pg.outputs = [...pg.outputs.filter((o) => o !== y), x];
      pg.entries.get(x)!.kind = 'output';
    } else if (toOutput([y])) {
      const next = users(pg, y)[0];
      next.inputs[0] = x;
    } else continue;
    pg.entries.delete(y);
    remove(pg, d);
  }
}

/** a Transpose keeping the order of its non-unit axes becomes a Reshape; a Reshape read only by a Reshape goes (methods.py:139-195) */
function transposeToReshape(pg: PackGraph): void {
  for (const n of pg.nodes) {
    if (n.op !== 'Transpose') continue;
    const x = pg.entries.get(n.inputs[0])?.shape;
    if (!x) continue;
    const perm = n.src.attrs.ints('perm') ?? x.map((_, i) => x.length - 1 - i);
    const moved = perm.map((p) => x[p]).filter((d) => d !== 1);
    if (moved.join() !== x.filter((d) => d !== 1).join()) continue;
    n.op = 'Reshape';
    n.inputs = [n.inputs[0], n.name];
    pg.entries.set(n.name, { name: n.name, shape: [x.length], elem: 8, kind: 'const' });
  }
  for (const n of [...pg.nodes]) {
    if (n.op !== 'Reshape') continue;
    const u = users(pg, n.outputs[0]);
    if (u.length !== 1 || u[0].op !== 'Reshape') continue;
    u[0].inputs = u[0].inputs.map((v) => (v === n.outputs[0] ? n.inputs[0] : v));
    remove(pg, n);
  }
}

/**
 * a clone of an entry, as op_divide / op_split make them: a clone of a graph output stays one
 * (it lives to the last node: op_split.py:489, op_divide.py:68), a split of the input is made
 * normal (op_divide.py:39)
 */
function newEntry(pg: PackGraph, like: string, name: string, shape: number[], normal = false): string {
  const e = pg.entries.get(like)!;
  const kind = normal || e.kind === 'input' ? 'value' : e.kind;
  pg.entries.set(name, { ...e, name, shape, kind, packed: undefined });
  return name;
}

function convOutShape(pg: PackGraph, n: PackNode, channels: number): number[] {
  const s = [...(pg.entries.get(n.outputs[0])?.shape ?? [])];
  if (s.length > 1) s[1] = channels;
  return s;
}

/** a group conv (1 < group < outputs): Split, one conv per group, iqCat (graph_optimizer/op_divide.py:14-100) */
function divideGroups(pg: PackGraph): void {
  for (const n of [...pg.nodes]) {
    const w = pg.entries.get(n.inputs[1])?.shape;
    if (!CONVS.has(n.op) || !w || n.group === 1 || n.group === w[0]) continue;
    const gr = n.group;
    const cs = w[0] / gr;
    const x = pg.entries.get(n.inputs[0])!;
    const split: PackNode = { ...n, name: `${n.name}_split`, op: 'Split', inputs: [n.inputs[0]], outputs: [], group: 1 };
    const cat: PackNode = { ...n, name: `${n.name}_concat`, op: 'iqCat', inputs: [], outputs: n.outputs, group: 1 };
    for (let i = 0; i < gr; i++) {
      const xs = [...x.shape];
      xs[1] /= gr;
      split.outputs.push(newEntry(pg, n.inputs[0], `${n.inputs[0]}_${i}`, xs, true));
      const ins = n.inputs.map((v, k) =>
        k === 0 ? split.outputs[i] : newEntry(pg, v, `${v}_${i}`, [cs, ...pg.entries.get(v)!.shape.slice(1)]),
      );
      const oc = n.op === 'ConvTranspose2dInt' ? w[1] : cs;
      const out = newEntry(pg, n.outputs[0], `${n.outputs[0]}_${n.name}_${i}`, convOutShape(pg, n, oc));
      cat.inputs.push(out);
      pg.nodes.push({ ...n, name: `${n.name}_${i}`, inputs: ins, outputs: [out], group: 1 });
    }
    for (const v of n.inputs.slice(1)) pg.entries.delete(v);
    remove(pg, n);
    pg.nodes.push(split, cat);
  }
}

/**
 * a conv whose packed weights, ALIGN2(outputs)·ALIGN8(inputs)·kernel, pass 32 KB: convs of at most
 * ⌊32768 / (ALIGN8(inputs)·kernel)⌋ (even) outputs each, then iqCat (graph_optimizer/op_split.py:
 * 179-276 Conv1dInt, 409-512 Conv2dInt). A transposed conv is not split (op_split.py:600-624);
 * LinearInt is split only when its weights pass the threshold tpacker lowers after a plan over
 * 640 KB (combine.py:97-153, op_split.py:625-793), which a model that packs does not reach.
 */
function splitConvs(pg: PackGraph): void {
  for (const n of [...pg.nodes]) {
    const w = pg.entries.get(n.inputs[1])?.shape;
    if ((n.op !== 'Conv2dInt' && n.op !== 'Conv1dInt') || !w || (n.group !== 1 && n.group === w[0])) continue;
    const k = prod(w.slice(2));
    if (A(w[1], 8) * A(w[0], 2) * k <= 32768) continue;
    const max = Math.floor(32768 / (A(w[1], 8) * k)) & ~1;
    if (max === 0) continue; // one output's weights pass 32 KB: tpacker stops (a rule's error, rules.ts)
    const num = Math.ceil(w[0] / max);
    const cat: PackNode = { ...n, name: `${n.name}_concat`, op: 'iqCat', inputs: [], outputs: n.outputs, group: 1 };
    for (let i = 0; i < num; i++) {
      const co = Math.min(w[0], (i + 1) * max) - i * max;
      const ins = n.inputs.map((v, j) =>
        j === 0 ? v : newEntry(pg, v, `${v}_${n.name}_${i}`, [co, ...pg.entries.get(v)!.shape.slice(1)]),
      );
      const out = newEntry(pg, n.outputs[0], `${n.outputs[0]}_${n.name}_${i}`, convOutShape(pg, n, co));
      cat.inputs.push(out);
      pg.nodes.push({ ...n, name: `${n.name}_${i}`, inputs: ins, outputs: [out] });
    }
    for (const v of n.inputs.slice(1)) pg.entries.delete(v);
    remove(pg, n);
    pg.nodes.push(cat);
  }
}

/** nodes in the order tpacker runs them: depth first from the graph's outputs, inputs in order (graph/Graph.py:126-144); unused entries go (Graph.py:79-97) */
function sortNodes(pg: PackGraph): void {
  const src = new Map<string, PackNode>();
  for (const n of pg.nodes) for (const o of n.outputs) src.set(o, n);
  const placed = new Set<PackNode>();
  const order: PackNode[] = [];
  const visit = (vs: string[]) => {
    for (const v of vs) {
      const n = src.get(v);
      if (!n || placed.has(n)) continue;
      visit(n.inputs);
      placed.add(n);
      order.push(n);
    }
  };
  visit(pg.outputs);
  pg.nodes = order;
  order.forEach((n, i) => {
    n.index = i;
    for (const o of n.outputs) {
      const e = pg.entries.get(o);
      if (e) e.src = n;
    }
  });
  const used = new Set([...pg.outputs, ...order.flatMap((n) => [...n.inputs, ...n.outputs])]);
  for (const k of [...pg.entries.keys()]) if (!used.has(k) && pg.entries.get(k)!.kind !== 'input') pg.entries.delete(k);
}

/** a constant's shape as tpacker packs it (each op's pack_params, thinker/resource_packer/ops/*.py) */
function pack(pg: PackGraph, n: PackNode, v: string): void {
  const e = pg.entries.get(v);
  if (!e || e.kind !== 'const' || v !== n.inputs[1]) return;
  const w = e.shape;
  if (n.op === 'Conv2dInt' && w.length === 4) {
    const [co, ci, kh, kw] = w;
    // depthwise: outputs to 16 (ops/Conv2dInt.py:337-359); other: outputs to 2, inputs to 8, [co, kh, kw, ci] (:397-446)
    e.packed = ci === 1 && n.group === co ? [A(co, 16), 1, kh, kw] : [A(co, 2), kh, kw, A(ci, 8)];
  } else if (n.op === 'Conv1dInt' && w.length === 3) {
    const [co, ci, k] = w;
    // a kernel over 5 is only transposed (ops/Conv1dInt.py:241-244); else as Conv2dInt (:273-381)
    e.packed = k > 5 ? [k, ci, co] : ci === 1 && n.group === co ? [A(co, 16), 1, k, 1] : [A(co, 2), k, 1, A(ci, 8)];
  } else if (n.op === 'ConvTranspose2dInt' && w.length === 4) {
    // weights are [inputs, outputs / group, kh, kw]: outputs to 2, inputs (per group) to 8 (ops/ConvTranspose2dInt.py:206-283)
    const [ci, co, kh, kw] = w;
    e.packed = n.group !== 1 ? [n.group * A(co, 2), kh, kw, A(ci / n.group, 8)] : [A(co, 2), kh, kw, A(ci, 8)];
  } else if ((n.op === 'LinearInt' || n.op === 'GRUInt' || n.op === 'LSTMInt') && w.length === 2) {
    // transposed, not padded (ops/LinearInt.py:158-165, GRUInt.py:99-105, LstmInt.py:126-132)
    e.packed = [w[1], w[0]];
  }
  if (n.op === 'GRUInt' || n.op === 'LSTMInt') {
    const h = pg.entries.get(n.inputs[2]);
    if (h && h.shape.length === 2) h.packed = [h.shape[1], h.shape[0]];
  }
}
