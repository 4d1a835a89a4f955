// Reading an ONNX model file into the importer's graph: the opset, initializers, the one float
// input and its shape, the nodes in topological order, and every node whose inputs are static
// folded into a constant (docs/onnx.md, "Import from PyTorch"). Nothing here names an op: whether
// an op is read at all, and whether it folds, is the registry's.
import { Attrs, DT_NAMES, onnx, readTensor, toInt } from '../proto';
import { ConstValue, constValue, sizeOf } from './constEval';
import { foldCall, NodeInfo, opDef } from './registry';

export interface ImportOptions {
  /** the input shape to build and check the model with (NCHW); default: the file's, batch 1 where it is symbolic */
  inputShape?: number[];
}

/** The graph as the planner sees it. */
export interface Graph {
  file: string;
  opset: number;
  /** initializers and folded values */
  consts: Map<string, ConstValue>;
  /** the initializers' names (parameters, named by PyTorch where the export kept them) */
  paramNames: Set<string>;
  /** each initializer's position in the file: PyTorch's state-dict order */
  initOrder: Map<string, number>;
  /** the nodes left to run, in topological order */
  nodes: NodeInfo[];
  inputName: string;
  inputShape: number[];
  outputNames: string[];
}

const MAX_INPUT = 1 << 26;
const MAX_FILE_INPUT = 1 << 22;

/** PyTorch's node name `/layer1/layer1.0/conv1/Conv` → module path `layer1.0.conv1` (null: no scope). */
export function scopeOfNodeName(name: string): string | null {
  if (!name.startsWith('/')) return null;
  const comps = name
    .split('/')
    .slice(1, -1)
    .filter((c) => c.length > 0);
  if (!comps.length) return '';
  const parts: string[] = [];
  let prev = '';
  for (const c of comps) {
    if (prev && c.startsWith(prev + '.')) parts.push(...c.slice(prev.length + 1).split('.'));
    else parts.push(...c.split('.'));
    prev = c;
  }
  return parts.filter((p) => p.length > 0).join('.');
}

export function readGraph(bytes: Uint8Array, file: string, opts: ImportOptions): Graph {
  const model = decode(bytes);
  const g: Graph = {
    file,
    opset: opsetOf(model),
    consts: new Map(),
    paramNames: new Set(),
    initOrder: new Map(),
    nodes: [],
    inputName: '',
    inputShape: [],
    outputNames: [],
  };
  readParts(g, model.graph!, opts);
  sortNodes(g);
  foldStatic(g);
  return g;
}

function decode(bytes: Uint8Array): onnx.ModelProto {
  if (bytes.length === 0) throw new Error('the file is empty');
  let m: onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`not a valid ONNX model (protobuf: ${(e as Error).message})`, { cause: e });
  }
  if (!m.graph) throw new Error('not an ONNX model: it has no graph');
  return m;
}

function opsetOf(m: onnx.ModelProto): number {
  const imports = m.opsetImport ?? [];
  const main = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!main) throw new Error('the model imports no default-domain opset');
  const opset = toInt(main.version as number, 'opset version');
  if (opset < 9 || opset > 21) throw new Error(`opset ${opset} is not supported (PyTorch exports with opset 11–17 are)`);
  return opset;
}

function readParts(self: Graph, g: onnx.IGraphProto, opts: ImportOptions): void {
  (g.initializer ?? []).forEach((t, i) => {
    const name = t.name ?? '';
    if (!name) throw new Error(`initializer ${i} has no name`);
    if (self.consts.has(name)) throw new Error(`initializer '${name}' is defined twice`);
    const v = readTensor(t, `initializer '${name}'`);
    self.consts.set(name, constValue(v.dims, v.dtype, v.data));
    self.paramNames.add(name);
    self.initOrder.set(name, i);
  });
  const inputs = (g.input ?? []).filter((i) => i.name && !self.consts.has(i.name));
  if (inputs.length !== 1) {
    throw new Error(
      `the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ') || 'none'}); importOnnx reads models with one input`,
    );
  }
  const inp = inputs[0];
  self.inputName = inp.name!;
  const tt = inp.type?.tensorType;
  if (tt && tt.elemType && tt.elemType !== 1)
    throw new Error(`input '${self.inputName}' is ${DT_NAMES[tt.elemType] ?? tt.elemType}; only float inputs are supported`);
  const fileDims = (tt?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && toInt(d.dimValue as number, 'input dim') > 0
      ? toInt(d.dimValue as number, 'input dim')
      : null,
  );
  let shape: number[];
  if (opts.inputShape) {
    shape = opts.inputShape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1))
      throw new Error(`inputShape [${String(shape)}] must be positive integers`);
    if (fileDims.length && fileDims.length !== shape.length)
      throw new Error(
        `inputShape [${shape.join(', ')}] has rank ${shape.length}, the model's input '${self.inputName}' rank ${fileDims.length}`,
      );
    fileDims.forEach((d, i) => {
      if (d !== null && i > 0 && d !== shape[i])
        throw new Error(
          `inputShape [${shape.join(', ')}] differs from the model's input [${fileDims.map((v) => v ?? '?').join(', ')}] at dim ${i}`,
        );
    });
  } else {
    if (!fileDims.length) throw new Error(`the input '${self.inputName}' has no shape in the file; pass { inputShape }`);
    shape = fileDims.map((d, i) => {
      if (d !== null) return d;
      if (i === 0) return 1;
      throw new Error(`dim ${i} of the input '${self.inputName}' is symbolic; pass { inputShape }`);
    });
  }
  // the file's own shape is trusted less than the caller's: a damaged dim must not allocate gigabytes
  if (sizeOf(shape) > (opts.inputShape ? MAX_INPUT : MAX_FILE_INPUT))
    throw new Error(`input shape [${shape.join(', ')}] is too large to build the model with; pass a smaller { inputShape }`);
  self.inputShape = [...shape];
  self.outputNames = (g.output ?? []).map((o) => o.name ?? '');
  if (!self.outputNames.length || self.outputNames.some((n) => !n)) throw new Error('the graph has no (named) outputs');

  const nodes = g.node ?? [];
  if (nodes.length > 100000) throw new Error(`${nodes.length} nodes is too many`);
  self.nodes = nodes.map((n, index) => {
    const op = n.opType ?? '';
    const name = n.name || `${op || 'node'}_${index}`;
    const what = `node '${name}' (${n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::` : ''}${op || '?'})`;
    if (!op) throw new Error(`${what}: no op type`);
    if (n.domain && n.domain !== 'ai.onnx') {
      throw new Error(
        `${what}: ops of the '${n.domain}' domain are not supported; importOnnx reads float models exported by PyTorch` +
          (n.domain === 'thinker' ? ' (thinker ops are fixed-point: import the float model instead)' : ''),
      );
    }
    if (!opDef(op)) throw new Error(`${what}: unsupported op '${op}'`);
    return {
      index,
      op,
      name,
      inputs: n.input ?? [],
      outputs: n.output ?? [],
      attrs: new Attrs(n, what),
      what,
      scope: n.name ? scopeOfNodeName(n.name) : null,
    };
  });
}

/** Kahn's topological order; every input defined, no cycles, no value defined twice. */
function sortNodes(self: Graph): void {
  const producer = new Map<string, number>();
  for (const n of self.nodes) {
    for (const o of n.outputs) {
      if (!o) continue;
      if (producer.has(o) || self.consts.has(o) || o === self.inputName) throw new Error(`${n.what}: value '${o}' is defined twice`);
      producer.set(o, n.index);
    }
  }
  const deps = self.nodes.map(() => 0);
  const users = self.nodes.map(() => [] as number[]);
  for (const n of self.nodes) {
    for (const i of n.inputs) {
      if (!i || self.consts.has(i) || i === self.inputName) continue;
      const p = producer.get(i);
      if (p === undefined) throw new Error(`${n.what}: input '${i}' is not defined by any node, initializer or graph input`);
      deps[n.index]++;
      users[p].push(n.index);
    }
  }
  for (const o of self.outputNames) {
    if (!producer.has(o) && !self.consts.has(o) && o !== self.inputName) throw new Error(`graph output '${o}' is not computed by any node`);
  }
  const ready = self.nodes.filter((n) => deps[n.index] === 0).map((n) => n.index);
  const order: NodeInfo[] = [];
  while (ready.length) {
    const i = ready.shift()!;
    order.push(self.nodes[i]);
    for (const u of users[i]) if (--deps[u] === 0) ready.push(u);
  }
  if (order.length !== self.nodes.length) {
    const stuck = self.nodes.find((n) => deps[n.index] > 0)!;
    throw new Error(`the graph has a cycle (through ${stuck.what})`);
  }
  self.nodes = order;
}

/** Evaluates at import every node its op folds when its inputs are static (Constant, shape arithmetic on constants, …). */
function foldStatic(self: Graph): void {
  const rest: NodeInfo[] = [];
  const isConst = (name: string) => self.consts.has(name);
  for (const n of self.nodes) {
    const d = opDef(n.op)!;
    const folds = d.fold && (d.foldsAtImport ? d.foldsAtImport(n, isConst) : n.inputs.every((i) => !i || isConst(i)));
    if (folds) {
      const outs = d.fold!(
        foldCall(
          n,
          n.inputs.map((i) => (i ? self.consts.get(i) : undefined)),
          self.opset,
          true,
        ),
      );
      n.outputs.forEach((o, k) => {
        if (o && outs[k]) self.consts.set(o, outs[k]);
      });
      continue;
    }
    rest.push(n);
  }
  self.nodes = rest;
}
