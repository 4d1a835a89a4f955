// What the chip's packer sees of a model: the nodes of its ONNX graph (thinker dialect for a
// fixed model; the float export's standard ops for a float or traced one, each read as the Int op
// init makes of it), with every value's shape propagated from the static input shape. The rules
// (rules.ts) and the memory plan (memory.ts) read these records only.
import { Attrs, DT, onnx, readTensor, toInt } from '../onnx/proto';

/** The Int op a node is or becomes on the chip (linger's name, as tpacker registers it). */
export type ChipOp =
  'Conv2dInt' | 'Conv1dInt' | 'ConvTranspose2dInt' | 'MaxPool' | 'AvgPool2dInt' | 'LinearInt' | 'BmmInt' | 'Transpose' | 'other';

export interface ChipNode {
  /** the module path of the layer (e.g. 'features.0'); '' for an op of the root's forward */
  layer: string;
  name: string;
  /** the ONNX op type as written */
  opType: string;
  op: ChipOp;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
  /** kernel [h, w] (conv1d: [k]), strides, dilations, pads as ONNX writes them: [begin…, end…] */
  kernel?: number[];
  strides?: number[];
  dilations?: number[];
  pads?: number[];
  group?: number;
  /** the weight initializer's dims */
  weight?: number[];
}

export interface ChipGraph {
  nodes: ChipNode[];
  /** every value's shape, where known (the graph's input is static: the export's example) */
  shapes: Map<string, number[]>;
  /** bytes per element of every value the nodes produce (int8 codes: 1; float: 4) */
  bytes: Map<string, number>;
  /** the initializers' dims */
  initializers: Map<string, { dims: number[]; bytes: number }>;
  input: string;
  /** the graph's outputs, as the model names them */
  outputs: string[];
  /** initializers holding integers (Reshape's shape, Slice's starts…): their values */
  ints: Map<string, number[]>;
  dialect: string;
}

/** The module path of a node named by the exporter's scopes ('/features/features.0/Conv' → 'features.0'). */
export function layerOfNode(name: string): string {
  const parts = name.split('/').filter((p) => p);
  parts.pop(); // the op
  const path: string[] = [];
  for (const p of parts) {
    const prev = path.length ? path[path.length - 1] : undefined;
    // scopeName writes an index as 'features.0' after 'features' (onnx/export/lowering.ts)
    if (prev !== undefined && p.startsWith(`${prev}.`) && /^\d+$/.test(p.slice(prev.length + 1))) path.push(p.slice(prev.length + 1));
    else path.push(p);
  }
  // an exporter sub-scope (a split transpose, a layer's own helper nodes) is not a module
  while (path.length && /^[A-Z]/.test(path[path.length - 1])) path.pop();
  return path.join('.');
}

const DT_BYTES: Record<number, number> = { [DT.FLOAT]: 4, [DT.INT8]: 1, [DT.UINT8]: 1, [DT.INT16]: 2, [DT.INT32]: 4, [DT.INT64]: 8 };

function opOf(n: onnx.INodeProto, rank: number | undefined, weightFromInit: boolean): ChipOp {
  const t = n.opType ?? '';
  switch (t) {
    case 'Conv2dInt':
    case 'Conv1dInt':
    case 'ConvTranspose2dInt':
    case 'AvgPool2dInt':
    case 'LinearInt':
    case 'BmmInt':
    case 'Transpose':
      return t;
    case 'MaxPool':
      return 'MaxPool';
    case 'AveragePool':
      return 'AvgPool2dInt';
    case 'Conv':
      return rank === 3 ? 'Conv1dInt' : 'Conv2dInt';
    case 'ConvTranspose':
      return 'ConvTranspose2dInt';
    case 'Gemm':
      return 'LinearInt';
    case 'MatMul':
      return weightFromInit ? 'LinearInt' : 'BmmInt';
    default:
      return 'other';
  }
}

function broadcast(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[a.length - r + i] ?? 1,
      y = b[b.length - r + i] ?? 1;
    return x === 1 ? y : x;
  });
}

/** Reads a model's graph into chip records. */
export function chipGraph(model: onnx.IModelProto): ChipGraph {
  const g = model.graph;
  if (!g?.node || !g.input?.length) throw new Error('checkChip: the ONNX model has no graph');
  const dialect =
    model.metadataProps?.find((p) => p.key === 'linger.dialect')?.value ??
    (g.node.some((n) => n.domain === 'thinker') ? 'thinker' : 'float');
  const initializers = new Map<string, { dims: number[]; bytes: number }>();
  const initValues = new Map<string, onnx.ITensorProto>();
  for (const t of g.initializer ?? []) {
    const dims = (t.dims ?? []).map((d, i) => toInt(d as never, `${t.name} dim ${i}`));
    initializers.set(t.name!, { dims, bytes: DT_BYTES[t.dataType ?? 1] ?? 4 });
    initValues.set(t.name!, t);
  }
  const shapes = new Map<string, number[]>();
  const bytes = new Map<string, number>();
  for (const [k, v] of initializers) shapes.set(k, v.dims);
  const input = g.input.find((i) => !initializers.has(i.name!))!;
  const inDims =
    input.type?.tensorType?.shape?.dim?.map((d) =>
      d.dimValue === undefined || d.dimValue === null ? 1 : toInt(d.dimValue as never, 'input dim'),
    ) ?? [];
  shapes.set(input.name!, inDims);
  bytes.set(input.name!, DT_BYTES[input.type?.tensorType?.elemType ?? 1] ?? 4);
  const intsOf = (name: string): number[] | undefined => {
    const t = initValues.get(name);
    if (!t) return undefined;
    const v = readTensor(t, name);
    return Array.from(v.data as ArrayLike<number>, Number);
  };
  const nodes: ChipNode[] = [];
  for (const n of g.node) {
    const name = n.name ?? '';
    const attrs = new Attrs(n, name);
    const ins = (n.input ?? []).filter((x) => x !== '');
    const x = shapes.get(ins[0]);
    const w = ins[1] !== undefined ? initializers.get(ins[1])?.dims : undefined;
    const op = opOf(n, x?.length, w !== undefined);
    const rec: ChipNode = { layer: layerOfNode(name), name, opType: n.opType ?? '', op, inputs: ins, outputs: n.output ?? [], attrs };
    if (op === 'Conv2dInt' || op === 'Conv1dInt' || op === 'ConvTranspose2dInt' || op === 'MaxPool' || op === 'AvgPool2dInt') {
      const sp = op === 'Conv1dInt' ? 1 : 2;
      rec.kernel = attrs.ints('kernel_shape') ?? (w ? w.slice(2) : Array(sp).fill(1));
      rec.strides = attrs.ints('strides') ?? Array(sp).fill(1);
      rec.dilations = attrs.ints('dilations') ?? Array(sp).fill(1);
      rec.pads = attrs.ints('pads') ?? Array(2 * sp).fill(0);
      rec.group = attrs.int('group', 1);
      rec.weight = w;
    } else if (op === 'LinearInt') rec.weight = w;
    nodes.push(rec);
    // the output shape, for the ops a packed model is made of; unknown otherwise
    let out: number[] | undefined;
    const t = n.opType ?? '';
    if (x) {
      if (rec.kernel && w && (op === 'Conv2dInt' || op === 'Conv1dInt')) {
        const sp = rec.kernel.length;
        out = [
          x[0],
          w[0],
          ...rec.kernel.map(
            (k, i) => Math.floor((x[2 + i] + rec.pads![i] + rec.pads![i + sp] - (k - 1) * rec.dilations![i] - 1) / rec.strides![i]) + 1,
          ),
        ];
      } else if (rec.kernel && w && op === 'ConvTranspose2dInt') {
        const op2 = attrs.ints('output_padding') ?? [0, 0];
        out = [
          x[0],
          w[1] * rec.group!,
          ...rec.kernel.map(
            (k, i) => (x[2 + i] - 1) * rec.strides![i] - rec.pads![i] - rec.pads![i + 2] + (k - 1) * rec.dilations![i] + 1 + (op2[i] ?? 0),
          ),
        ];
      } else if (rec.kernel && (op === 'MaxPool' || op === 'AvgPool2dInt')) {
        const ceil = attrs.int('ceil_mode', 0) ? Math.ceil : Math.floor;
        out = [x[0], x[1], ...rec.kernel.map((k, i) => ceil((x[2 + i] + rec.pads![i] + rec.pads![i + 2] - k) / rec.strides![i]) + 1)];
      } else if (op === 'LinearInt' && w) {
        const transB = t === 'Gemm' ? attrs.int('transB', 0) === 1 : t === 'LinearInt';
        out = [...x.slice(0, -1), transB ? w[0] : w[w.length - 1]];
      } else if ((op === 'BmmInt' || t === 'MatMul') && shapes.get(ins[1])) {
        const y = shapes.get(ins[1])!;
        out = [...x.slice(0, -1), y[y.length - 1]];
      } else if (t === 'Transpose') {
        const perm = attrs.ints('perm') ?? x.map((_, i) => x.length - 1 - i);
        out = perm.map((p) => x[p]);
      } else if (t === 'Flatten') {
        const a = attrs.int('axis', 1);
        out = [x.slice(0, a).reduce((p, q) => p * q, 1), x.slice(a).reduce((p, q) => p * q, 1)];
      } else if (t === 'Reshape') {
        const s = intsOf(ins[1]);
        if (s) {
          const total = x.reduce((p, q) => p * q, 1);
          const dims = s.map((d, i) => (d === 0 ? x[i] : d));
          const known = dims.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
          out = dims.map((d) => (d === -1 ? total / known : d));
        }
      } else if (t === 'Concat' || t === 'iqCat') {
        const a = attrs.int('axis', 1);
        const all = ins.map((i) => shapes.get(i));
        if (all.every((s) => s)) {
          const ax = a < 0 ? a + x.length : a;
          out = x.map((d, i) => (i === ax ? all.reduce((p, s) => p + s![i], 0) : d));
        }
      } else if (t === 'GRUInt' || t === 'LSTMInt') {
        // linger's recurrent ops: the sequence [B, T, H] (batch_first) or [T, B, H], then the last state(s)
        const h = attrs.int('hidden_size', 0);
        const bf = attrs.int('batch_first', 0) === 1;
        const dirs = attrs.int('bidirectional', 0) ? 2 : 1;
        const [b, tt] = bf ? [x[0], x[1]] : [x[1], x[0]];
        const outs = (n.output ?? []).map((_, i) => (i === 0 ? (bf ? [b, tt, h * dirs] : [tt, b, h * dirs]) : [dirs, b, h]));
        (n.output ?? []).forEach((o, i) => shapes.set(o, outs[i]));
        out = undefined;
      } else if (t === 'Slice') {
        const [st, en, ax, sp] = [1, 2, 3, 4].map((k) => (ins[k] ? intsOf(ins[k]) : undefined));
        if (st && en) {
          const axes = ax ?? st.map((_, i) => i);
          out = [...x];
          axes.forEach((a0, i) => {
            const a = a0 < 0 ? a0 + x.length : a0;
            const clamp = (v: number) => Math.max(0, Math.min(x[a], v < 0 ? v + x[a] : v));
            const step = sp?.[i] ?? 1;
            out![a] = Math.max(0, Math.ceil((clamp(en[i]) - clamp(st[i])) / step));
          });
        }
      } else if (t === 'Squeeze' || t === 'Unsqueeze') {
        const axes = attrs.ints('axes') ?? (ins[1] ? intsOf(ins[1]) : undefined);
        if (t === 'Squeeze') out = x.filter((d, i) => (axes ? !axes.some((a) => (a < 0 ? a + x.length : a) === i) : d !== 1));
        else if (axes) {
          out = [...x];
          const r = x.length + axes.length;
          for (const a of axes.map((v) => (v < 0 ? v + r : v)).sort((p, q) => p - q)) out.splice(a, 0, 1);
        }
      } else if (t === 'GRU' || t === 'LSTM') {
        // ONNX's: Y [T, D, B, H], then Y_h (and Y_c) [D, B, H]
        const h = attrs.int('hidden_size', 0);
        const d = attrs.string('direction', 'forward') === 'bidirectional' ? 2 : 1;
        (n.output ?? []).forEach((o, i) => shapes.set(o, i === 0 ? [x[0], d, x[1], h] : [d, x[1], h]));
        out = undefined;
      } else if (t === 'Gather' || t === 'Split') {
        out = undefined;
      } else if (ins.length >= 2 && shapes.get(ins[1]) && !initializers.has(ins[1])) {
        out = broadcast(x, shapes.get(ins[1])!); // elementwise of two values
      } else {
        out = x; // unary / elementwise with constants: Quant, Dequant, Relu, Clip, BN, iqSigmoid, …
      }
    }
    // bytes per element: thinker ops write their o_bits (default int8), Dequant float32, the
    // others keep their input's; a float or traced model is checked as init makes it (int8 codes)
    const ob =
      dialect !== 'thinker' ? 1 : t === 'Dequant' ? 4 : n.domain === 'thinker' ? attrs.int('o_bits', 8) / 8 : (bytes.get(ins[0]) ?? 1);
    // (linger's recurrent ops also give their last state, as float: thinker v1.1.0 resource_packer/ops/GRUInt.py:86)
    (n.output ?? []).forEach((o, i) => {
      if (out) shapes.set(o, out);
      bytes.set(o, (t === 'GRUInt' || t === 'LSTMInt') && i > 0 && dialect === 'thinker' ? 4 : ob);
    });
  }
  const ints = new Map<string, number[]>();
  for (const [k, t] of initValues) if (t.dataType === DT.INT64 || t.dataType === DT.INT32) ints.set(k, intsOf(k)!);
  const outputs = (g.output ?? []).map((o) => o.name!);
  return { nodes, shapes, bytes, initializers, input: input.name!, outputs, ints, dialect };
}
