// ONNX import (SPEC §7): a float model exported by PyTorch (torch.onnx.export, opset 11–17; both
// the default eval export, which folds BN into Conv and anonymises weights, and the PRESERVE export,
// which keeps BN and state-dict names) becomes an nn.Module whose children are real engine layers
// named after PyTorch's module paths. The module's forward interprets the graph: layer nodes call
// the child at their path (looked up on every call, so traceLayers/init can replace children),
// other nodes run the engine's tensor ops, and shape arithmetic is evaluated on plain numbers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend/tf';
import { ReLU, ReLU6, Sigmoid, Tanh } from '../nn/activation';
import { BatchNorm1d, BatchNorm2d } from '../nn/batchnorm';
import { Conv1d, Conv2d, ConvTranspose2d, hidden } from '../nn/conv';
import { withoutInit } from '../nn/init';
import { Linear } from '../nn/linear';
import { Flatten, Softmax } from '../nn/misc';
import { Module, Parameter } from '../nn/module';
import { AdaptiveAvgPool2d, AvgPool2d, MaxPool2d } from '../nn/pooling';
import { Tensor, tensor } from '../tensor';
import {
  CONST_OPS, ConstValue, constValue, evalConst, intsOf, isConst, scalarOf, sizeOf,
} from './constEval';
import { checkGeometry, constTensor, execOp, keepConstTensor, NodeInfo, poolGeometry, RtValue } from './importOps';
import { makeRecurrent, planRecurrent, RECURRENT_OPS, RecurrentPlan, RecurrentRun, recurrentShape, runRecurrent } from './importRecurrent';
import { Attrs, DT_NAMES, onnx, readTensor, toInt } from './proto';
import { setRecipe } from '../parallel/recipe';

export interface ImportOptions {
  /** the input shape to build and check the model with (NCHW); default: the file's, batch 1 where it is symbolic */
  inputShape?: number[];
}

/** A model file importOnnx cannot read: names the file and the problem (op and node where there is one). */
export class OnnxImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxImportError';
  }
}

/** linger.importOnnx: reads a float ONNX model (as PyTorch exports it) into an nn.Module. */
export async function importOnnx(file: string, opts: ImportOptions = {}): Promise<Module> {
  let bytes: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a file');
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new OnnxImportError(`${file}: cannot read the file (${(e as Error).message})`);
  }
  const model = importOnnxBuffer(bytes, { ...opts, file });
  setRecipe(model, { kind: 'onnx', file: path.resolve(file), ...(opts.inputShape ? { inputShape: opts.inputShape } : {}) });
  return model;
}

/** importOnnx on bytes already in memory (`file` only names them in errors). */
export function importOnnxBuffer(bytes: Uint8Array, opts: ImportOptions & { file?: string } = {}): OnnxModel {
  const file = opts.file ?? '<buffer>';
  try {
    return new Importer(bytes, file, opts).run();
  } catch (e) {
    if (e instanceof OnnxImportError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new OnnxImportError(`${file}: ${msg}`);
  }
}

// ---- the imported model ---------------------------------------------------------------------

interface Step {
  node: NodeInfo;
  /**
   * layer: call the module at `path`; op: the node's own semantics; alias: output = input;
   * rnn: call the LSTM/GRU at `path` for a chain of nodes (`rnn` says which values); shape: a Shape
   * node of a value the rnn call replaced (dims from the rnn's input)
   */
  kind: 'layer' | 'op' | 'alias' | 'rnn' | 'shape';
  path?: string;
  rnn?: RecurrentRun;
  shape?: { input: string; batchFirst: boolean; width: number };
  /** outputs under other names (a MatMul whose bias Add was absorbed writes the Add's output) */
  outputs: string[];
}

/** A container for module paths (layer1, layer1.0, …) of an imported model. */
export class OnnxScope extends Module {
  forward(): never { throw new Error('an imported model runs from its root (this is a container of its layers)'); }
}

/** An imported ONNX model: layers as children, the graph as its forward. */
export class OnnxModel extends Module {
  declare readonly program: Step[];
  declare readonly constants: Map<string, ConstValue>;
  declare readonly inputName: string;
  declare readonly outputNames: string[];
  /** the shape the model was built and checked with */
  declare readonly inputShape: number[];
  declare readonly opset: number;
  declare readonly file: string;
  /** modules created during the build run, not yet in the tree */
  declare pending: Map<string, Module> | null;

  forward(x: Tensor): Tensor | Tensor[] {
    const want = this.inputShape;
    if (!(x instanceof Tensor)) throw new Error('OnnxModel: the input must be a Tensor');
    const s = x.shape;
    if (s.length !== want.length || s.some((d, i) => i > 0 && d !== want[i])) {
      throw new Error(`OnnxModel (${this.file}): expected an input of shape [N, ${want.slice(1).join(', ')}], got [${s.join(', ')}]`);
    }
    const env = new Map<string, RtValue>(this.constants);
    env.set(this.inputName, x);
    for (const step of this.program) runStep(this, step, env);
    const outs = this.outputNames.map((n) => {
      const v = env.get(n);
      if (v === undefined) throw new Error(`OnnxModel: graph output '${n}' was not computed`);
      return isConst(v) ? constTensor(v) : v;
    });
    return outs.length === 1 ? outs[0] : outs;
  }

  resolve(path: string): Module {
    return this.pending?.get(path) ?? this.getSubmodule(path);
  }
}

function runStep(model: OnnxModel, step: Step, env: Map<string, RtValue>): void {
  const n = step.node;
  const get = (i: number): RtValue | undefined => {
    const name = n.inputs[i];
    if (!name) return undefined;
    const v = env.get(name);
    if (v === undefined) throw new Error(`${n.what}: input '${name}' has no value`);
    return v;
  };
  try {
    let outs: RtValue[];
    if (step.kind === 'alias') outs = [get(0)!];
    else if (step.kind === 'rnn') {
      const r = step.rnn!;
      const vals = runRecurrent(model.resolve(step.path!), r, (name) => {
        const v = env.get(name);
        if (v === undefined) throw new Error(`${n.what}: input '${name}' has no value`);
        return v;
      }, n.what);
      for (const [k, v] of vals) env.set(k, v);
      return;
    } else if (step.kind === 'shape') {
      const sh = step.shape!;
      const x = env.get(sh.input);
      if (x === undefined || isConst(x)) throw new Error(`${n.what}: input '${sh.input}' has no value`);
      outs = recurrentShape(n, model.opset, x, sh.batchFirst, sh.width);
    }
    else if (step.kind === 'layer') {
      const x = get(0);
      if (x === undefined) throw new Error(`${n.what}: no input`);
      outs = [model.resolve(step.path!)(isConst(x) ? constTensor(x) : x) as Tensor];
    } else outs = execOp(n, n.inputs.map((_, i) => get(i)), model.opset);
    step.outputs.forEach((name, i) => {
      if (name && outs[i] !== undefined) env.set(name, outs[i]);
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.includes(n.what) ? msg : `${n.what}: ${msg}`);
  }
}

// ---- the importer ---------------------------------------------------------------------------

const LAYER_OPS = new Set(['Conv', 'ConvTranspose', 'BatchNormalization', 'Gemm', 'MatMul']);
/** Parameter-free ops that become a module when their scope is a leaf module of their own. */
const MODULE_OPS = new Set(['Relu', 'Sigmoid', 'Tanh', 'Clip', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Flatten', 'Softmax']);
const TENSOR_OPS = new Set([
  ...LAYER_OPS, ...MODULE_OPS, 'Add', 'Sub', 'Mul', 'Div', 'Concat', 'Reshape', 'Transpose', 'Identity', 'Dropout', 'Exp', 'Log', 'Sqrt',
  'Neg', 'Abs', 'Pow', 'Unsqueeze', 'Squeeze', 'LogSoftmax', 'ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'Cast', 'Pad', 'Constant',
  ...RECURRENT_OPS,
]);
const MAX_INPUT = 1 << 26;
const MAX_FILE_INPUT = 1 << 22;
/** Ops whose constant operands are tensors (made once at import), not shapes. */
const TENSOR_CONST_OPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Concat', 'MatMul', 'Gemm']);

/** PyTorch's node name `/layer1/layer1.0/conv1/Conv` → module path `layer1.0.conv1` (null: no scope). */
export function scopeOfNodeName(name: string): string | null {
  if (!name.startsWith('/')) return null;
  const comps = name.split('/').slice(1, -1).filter((c) => c.length > 0);
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

/** `layer1.0.conv1.weight` → `layer1.0.conv1`; anonymous names (onnx::Conv_55) give null. */
function pathOfParamName(name: string): string | null {
  const m = /^([A-Za-z_][\w]*(?:\.[\w]+)*)\.(weight|bias|running_mean|running_var)$/.exec(name);
  return m && !name.includes('::') ? m[1] : null;
}

const RESERVED = new Set<string>();
for (let p: object | null = Module.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
  for (const k of Object.getOwnPropertyNames(p)) RESERVED.add(k);
}
for (const k of ['training', 'program', 'constants', 'inputName', 'outputNames', 'inputShape', 'opset', 'file', 'pending', 'constructor', '__proto__', 'prototype']) RESERVED.add(k);

class Importer {
  private readonly consts = new Map<string, ConstValue>();
  private readonly paramNames = new Set<string>();
  private initOrder = new Map<string, number>();
  private nodes: NodeInfo[] = [];
  private opset = 0;
  private inputName = '';
  private inputShape: number[] = [];
  private outputNames: string[] = [];

  constructor(private readonly bytes: Uint8Array, private readonly file: string, private readonly opts: ImportOptions) {}

  run(): OnnxModel {
    const model = this.decode();
    const graph = model.graph!;
    this.readGraph(graph);
    this.sortNodes();
    this.foldStatic();
    const { steps, layerPaths, modulePaths, rnnPlans } = this.plan();
    return this.build(steps, layerPaths, modulePaths, rnnPlans);
  }

  private decode(): onnx.ModelProto {
    if (this.bytes.length === 0) throw new Error('the file is empty');
    let m: onnx.ModelProto;
    try {
      m = onnx.ModelProto.decode(this.bytes);
    } catch (e) {
      throw new Error(`not a valid ONNX model (protobuf: ${(e as Error).message})`);
    }
    if (!m.graph) throw new Error('not an ONNX model: it has no graph');
    const imports = m.opsetImport ?? [];
    const main = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
    if (!main) throw new Error('the model imports no default-domain opset');
    this.opset = toInt(main.version as number, 'opset version');
    if (this.opset < 9 || this.opset > 21) throw new Error(`opset ${this.opset} is not supported (PyTorch exports with opset 11–17 are)`);
    return m;
  }

  private readGraph(g: onnx.IGraphProto): void {
    (g.initializer ?? []).forEach((t, i) => {
      const name = t.name ?? '';
      if (!name) throw new Error(`initializer ${i} has no name`);
      if (this.consts.has(name)) throw new Error(`initializer '${name}' is defined twice`);
      const v = readTensor(t, `initializer '${name}'`);
      this.consts.set(name, constValue(v.dims, v.dtype, v.data));
      this.paramNames.add(name);
      this.initOrder.set(name, i);
    });
    const inputs = (g.input ?? []).filter((i) => i.name && !this.consts.has(i.name));
    if (inputs.length !== 1) {
      throw new Error(`the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ') || 'none'}); importOnnx reads models with one input`);
    }
    const inp = inputs[0];
    this.inputName = inp.name!;
    const tt = inp.type?.tensorType;
    if (tt && tt.elemType && tt.elemType !== 1) throw new Error(`input '${this.inputName}' is ${DT_NAMES[tt.elemType] ?? tt.elemType}; only float inputs are supported`);
    const fileDims = (tt?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && toInt(d.dimValue as number, 'input dim') > 0 ? toInt(d.dimValue as number, 'input dim') : null));
    let shape: number[];
    if (this.opts.inputShape) {
      shape = this.opts.inputShape;
      if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`inputShape [${String(shape)}] must be positive integers`);
      if (fileDims.length && fileDims.length !== shape.length) throw new Error(`inputShape [${shape.join(', ')}] has rank ${shape.length}, the model's input '${this.inputName}' rank ${fileDims.length}`);
      fileDims.forEach((d, i) => {
        if (d !== null && i > 0 && d !== shape[i]) throw new Error(`inputShape [${shape.join(', ')}] differs from the model's input [${fileDims.map((v) => v ?? '?').join(', ')}] at dim ${i}`);
      });
    } else {
      if (!fileDims.length) throw new Error(`the input '${this.inputName}' has no shape in the file; pass { inputShape }`);
      shape = fileDims.map((d, i) => {
        if (d !== null) return d;
        if (i === 0) return 1;
        throw new Error(`dim ${i} of the input '${this.inputName}' is symbolic; pass { inputShape }`);
      });
    }
    // the file's own shape is trusted less than the caller's: a damaged dim must not allocate gigabytes
    if (sizeOf(shape) > (this.opts.inputShape ? MAX_INPUT : MAX_FILE_INPUT)) throw new Error(`input shape [${shape.join(', ')}] is too large to build the model with; pass a smaller { inputShape }`);
    this.inputShape = [...shape];
    this.outputNames = (g.output ?? []).map((o) => o.name ?? '');
    if (!this.outputNames.length || this.outputNames.some((n) => !n)) throw new Error('the graph has no (named) outputs');

    const nodes = g.node ?? [];
    if (nodes.length > 100000) throw new Error(`${nodes.length} nodes is too many`);
    this.nodes = nodes.map((n, index) => {
      const op = n.opType ?? '';
      const name = n.name || `${op || 'node'}_${index}`;
      const what = `node '${name}' (${n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::` : ''}${op || '?'})`;
      if (!op) throw new Error(`${what}: no op type`);
      if (n.domain && n.domain !== 'ai.onnx') {
        throw new Error(`${what}: ops of the '${n.domain}' domain are not supported; importOnnx reads float models exported by PyTorch` +
          (n.domain === 'thinker' ? ' (thinker ops are fixed-point: import the float model instead)' : ''));
      }
      if (!TENSOR_OPS.has(op) && !CONST_OPS.has(op)) throw new Error(`${what}: unsupported op '${op}'`);
      return { index, op, name, inputs: n.input ?? [], outputs: n.output ?? [], attrs: new Attrs(n, what), what, scope: n.name ? scopeOfNodeName(n.name) : null };
    });
  }

  /** Kahn's topological order; every input defined, no cycles, no value defined twice. */
  private sortNodes(): void {
    const producer = new Map<string, number>();
    for (const n of this.nodes) {
      for (const o of n.outputs) {
        if (!o) continue;
        if (producer.has(o) || this.consts.has(o) || o === this.inputName) throw new Error(`${n.what}: value '${o}' is defined twice`);
        producer.set(o, n.index);
      }
    }
    const deps = this.nodes.map(() => 0);
    const users = this.nodes.map(() => [] as number[]);
    for (const n of this.nodes) {
      for (const i of n.inputs) {
        if (!i || this.consts.has(i) || i === this.inputName) continue;
        const p = producer.get(i);
        if (p === undefined) throw new Error(`${n.what}: input '${i}' is not defined by any node, initializer or graph input`);
        deps[n.index]++;
        users[p].push(n.index);
      }
    }
    for (const o of this.outputNames) {
      if (!producer.has(o) && !this.consts.has(o) && o !== this.inputName) throw new Error(`graph output '${o}' is not computed by any node`);
    }
    const ready = this.nodes.filter((n) => deps[n.index] === 0).map((n) => n.index);
    const order: NodeInfo[] = [];
    while (ready.length) {
      const i = ready.shift()!;
      order.push(this.nodes[i]);
      for (const u of users[i]) if (--deps[u] === 0) ready.push(u);
    }
    if (order.length !== this.nodes.length) {
      const stuck = this.nodes.find((n) => deps[n.index] > 0)!;
      throw new Error(`the graph has a cycle (through ${stuck.what})`);
    }
    this.nodes = order;
  }

  /** Evaluates at import every node whose inputs are all constants (Identity aliases, Constant, …). */
  private foldStatic(): void {
    const rest: NodeInfo[] = [];
    for (const n of this.nodes) {
      if (n.op === 'Constant') {
        this.constantNode(n);
        continue;
      }
      const allConst = n.inputs.every((i) => !i || this.consts.has(i));
      if (allConst && CONST_OPS.has(n.op) && (n.op !== 'Shape' || (n.inputs[0] && this.consts.has(n.inputs[0])))) {
        const outs = evalConst({ op: n.op, opset: this.opset, what: n.what, attrs: n.attrs }, n.inputs.map((i) => (i ? this.consts.get(i) : undefined)).concat(this.constantOfShapeValue(n)));
        n.outputs.forEach((o, k) => { if (o && outs[k]) this.consts.set(o, outs[k]); });
        continue;
      }
      rest.push(n);
    }
    this.nodes = rest;
  }

  private constantOfShapeValue(n: NodeInfo): (ConstValue | undefined)[] {
    if (n.op !== 'ConstantOfShape') return [];
    const t = n.attrs.tensor('value');
    if (!t) return [];
    const v = readTensor(t, `${n.what} value`);
    return [constValue(v.dims, v.dtype, v.data)];
  }

  private constantNode(n: NodeInfo): void {
    const a = n.attrs;
    let v: ConstValue;
    const t = a.tensor('value');
    if (t) {
      const r = readTensor(t, `${n.what} value`);
      v = constValue(r.dims, r.dtype, r.data);
    } else if (a.has('value_float')) v = constValue([], 'float', Float32Array.of(a.float('value_float', 0)));
    else if (a.has('value_int')) v = constValue([], 'int', [a.int('value_int', 0)]);
    else if (a.has('value_ints')) { const l = a.ints('value_ints')!; v = constValue([l.length], 'int', l); }
    else if (a.has('value_floats')) {
      const raw = a.raw('value_floats')!;
      const l = raw.floats ?? [];
      v = constValue([l.length], 'float', Float32Array.from(l));
    } else throw new Error(`${n.what}: no supported value attribute (${a.names().join(', ') || 'none'})`);
    if (n.outputs[0]) this.consts.set(n.outputs[0], v);
  }

  /** Decides, for every remaining node, a layer (with its module path), a module op, an alias or an op. */
  private plan(): { steps: Step[]; layerPaths: Map<string, NodeInfo>; modulePaths: Map<string, NodeInfo[]>; rnnPlans: RecurrentPlan[] } {
    const isC = (name: string | undefined) => !!name && this.consts.has(name);
    const consumers = new Map<string, NodeInfo[]>();
    for (const n of this.nodes) for (const i of n.inputs) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
    const isOutput = (v: string) => this.outputNames.includes(v);
    const absorbed = new Set<NodeInfo>();
    const extraPad = new Map<NodeInfo, [number, number]>();
    const biasOf = new Map<NodeInfo, NodeInfo>();
    const steps: Step[] = [];

    // LSTM/GRU: a chain of nodes (one per layer) and its glue become one module call
    const rnnPathSet = new Set<string>();
    const rnnPlans = planRecurrent({ nodes: this.nodes, consts: this.consts, consumers, outputNames: this.outputNames, paramNames: this.paramNames, opset: this.opset }, rnnPathSet);
    const rnnRole = new Map<NodeInfo, { plan: RecurrentPlan; width?: number }>();
    for (const p of rnnPlans) {
      for (const n of [...p.nodes, ...p.absorbed]) rnnRole.set(n, { plan: p });
      for (const { node, width } of p.shapes) rnnRole.set(node, { plan: p, width });
    }

    // layers: nodes whose weights are constants
    const layerNodes: NodeInfo[] = [];
    for (const n of this.nodes) {
      if (n.op === 'Conv' || n.op === 'ConvTranspose') {
        if (!isC(n.inputs[1]) || (n.inputs[2] && !isC(n.inputs[2]))) throw new Error(`${n.what}: a convolution with a computed weight or bias is not supported`);
        layerNodes.push(n);
      } else if (n.op === 'BatchNormalization') {
        if (!n.inputs.slice(1, 5).every(isC) || n.inputs.length < 5) throw new Error(`${n.what}: BatchNormalization needs constant scale, bias, mean and variance`);
        if (n.attrs.int('training_mode', 0) === 1) throw new Error(`${n.what}: a training-mode BatchNormalization is not supported (export the model in eval mode)`);
        layerNodes.push(n);
      } else if (n.op === 'Gemm' && isC(n.inputs[1]) && (!n.inputs[2] || isC(n.inputs[2])) && !n.attrs.int('transA', 0)) {
        layerNodes.push(n);
      } else if (n.op === 'MatMul' && isC(n.inputs[1]) && this.consts.get(n.inputs[1])!.dims.length === 2 && !isC(n.inputs[0])) {
        layerNodes.push(n);
        const outC = this.consts.get(n.inputs[1])!.dims[1];
        const users = consumers.get(n.outputs[0]) ?? [];
        const add = users[0];
        if (users.length === 1 && add.op === 'Add' && !isOutput(n.outputs[0])) {
          const other = add.inputs[0] === n.outputs[0] ? add.inputs[1] : add.inputs[0];
          const c = other ? this.consts.get(other) : undefined;
          if (c && c.dims.length === 1 && c.dims[0] === outC && (add.scope === null || add.scope === n.scope)) {
            absorbed.add(add);
            biasOf.set(n, add);
          }
        }
      } else if (n.op === 'Pad') {
        this.planPad(n, consumers, absorbed, extraPad);
      }
    }

    // module paths for layers: the parameter's name, else the node's scope, else made up
    const layerPath = new Map<NodeInfo, string>();
    const byWeight = new Map<string, string>();
    const used = new Map<string, string>(); // path → weight key that owns it
    for (const p of rnnPathSet) used.set(p, `rnn:${p}`);
    const counters = new Map<string, number>();
    const paramInputs = (n: NodeInfo) => (n.op === 'BatchNormalization' ? n.inputs.slice(1, 5) : n.inputs.slice(1, 3)).filter(Boolean);
    for (const n of layerNodes) {
      const key = n.inputs[1];
      const known = byWeight.get(key);
      if (known !== undefined) { layerPath.set(n, known); continue; }
      let p: string | null = null;
      for (const i of paramInputs(n)) { p = pathOfParamName(i); if (p) break; }
      if (p === null && n.scope) p = n.scope;
      if (p === null || p === '' || used.has(p)) {
        const base = p || { Conv: 'conv', ConvTranspose: 'conv_transpose', BatchNormalization: 'bn', Gemm: 'linear', MatMul: 'linear' }[n.op] || 'layer';
        let i = counters.get(base) ?? 0;
        while (used.has(`${base}_${i}`)) i++;
        counters.set(base, i + 1);
        p = `${base}_${i}`;
      }
      used.set(p, key);
      byWeight.set(key, p);
      layerPath.set(n, p);
    }

    // parameter-free module ops: a scope that holds only this one kind of op, and nothing below it
    const groups = new Map<string, NodeInfo[]>();
    for (const n of this.nodes) {
      if (!MODULE_OPS.has(n.op) || absorbed.has(n) || layerNodes.includes(n) || !n.scope) continue;
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
    const allScopes = this.nodes.map((n) => n.scope).filter((s): s is string => !!s);
    const claimed = new Set<string>([...layerPath.values(), ...rnnPathSet]);
    const modulePaths = new Map<string, NodeInfo[]>();
    for (const [p, ns] of groups) {
      const op = ns[0].op;
      if (ns.some((x) => x.op !== op || !sameAttrs(x, ns[0]))) continue;
      if (claimed.has(p) || allScopes.some((s) => s.startsWith(p + '.')) || [...claimed].some((c) => c.startsWith(p + '.'))) continue;
      if (this.nodes.some((x) => x.scope === p && !ns.includes(x) && !absorbed.has(x) && x.op !== 'Constant')) continue;
      if (op === 'Clip' && !ns.every((x) => isRelu6(x, this.consts, this.opset))) continue;
      if (op === 'Flatten' && ns.some((x) => x.attrs.int('axis', 1) !== 1)) continue;
      modulePaths.set(p, ns);
    }

    // steps in graph order
    for (const n of this.nodes) {
      const rr = rnnRole.get(n);
      if (rr) {
        const r = rr.plan.run;
        if (rr.width !== undefined) steps.push({ node: n, kind: 'shape', shape: { input: r.input, batchFirst: r.batchFirst, width: rr.width }, outputs: n.outputs });
        else if (n === rr.plan.nodes[rr.plan.nodes.length - 1]) {
          steps.push({ node: rr.plan.nodes[0], kind: 'rnn', path: rr.plan.path, rnn: r, outputs: [r.y?.name ?? '', ...r.yh, ...r.yc].filter(Boolean) });
        }
        continue;
      }
      if (absorbed.has(n)) {
        if (n.op === 'Pad') steps.push({ node: n, kind: 'alias', outputs: [n.outputs[0]] });
        continue;
      }
      const bias = biasOf.get(n);
      if (layerPath.has(n)) {
        steps.push({ node: n, kind: 'layer', path: layerPath.get(n)!, outputs: [bias ? bias.outputs[0] : n.outputs[0]] });
        continue;
      }
      const mp = n.scope && modulePaths.get(n.scope)?.includes(n) ? n.scope : null;
      if (mp !== null) steps.push({ node: n, kind: 'layer', path: mp, outputs: [n.outputs[0]] });
      else steps.push({ node: n, kind: 'op', outputs: n.outputs });
    }
    for (const s of steps) if (s.node.op === 'MaxPool' && s.node.outputs[1] && (consumers.get(s.node.outputs[1])?.length || isOutput(s.node.outputs[1]))) {
      throw new Error(`${s.node.what}: MaxPool's indices output is not supported`);
    }

    const layerPaths = new Map<string, NodeInfo>();
    for (const [n, p] of layerPath) {
      if (!layerPaths.has(p)) layerPaths.set(p, n);
      if (biasOf.has(n)) (n as NodeInfo & { biasNode?: NodeInfo }).biasNode = biasOf.get(n);
    }
    for (const [n, pads] of extraPad) (n as NodeInfo & { extraPad?: [number, number] }).extraPad = pads;
    return { steps: rnnPlans.length ? sortSteps(steps) : steps, layerPaths, modulePaths, rnnPlans };
  }

  /** A zero-valued constant Pad: an alias when it pads nothing, else folded into the average pool it feeds. */
  private planPad(n: NodeInfo, consumers: Map<string, NodeInfo[]>, absorbed: Set<NodeInfo>, extraPad: Map<NodeInfo, [number, number]>): void {
    const mode = n.attrs.string('mode', 'constant');
    const pads = this.opset >= 11 ? (n.inputs[1] && this.consts.has(n.inputs[1]) ? intsOf(this.consts.get(n.inputs[1])!, `${n.what} pads`) : null) : n.attrs.ints('pads') ?? null;
    const value = this.opset >= 11 ? (n.inputs[2] && this.consts.has(n.inputs[2]) ? scalarOf(this.consts.get(n.inputs[2])!, `${n.what} value`) : 0) : n.attrs.float('value', 0);
    if (!pads) throw new Error(`${n.what}: Pad with computed pads is not supported`);
    if (mode !== 'constant' || value !== 0) throw new Error(`${n.what}: only zero padding is supported (mode ${mode}, value ${value})`);
    if (pads.every((p) => p === 0)) { absorbed.add(n); return; }
    const users = consumers.get(n.outputs[0]) ?? [];
    const pool = users[0];
    const r = pads.length / 2;
    const ok = users.length === 1 && pool.op === 'AveragePool' && r === 4 && pads[0] === 0 && pads[1] === 0 && pads[4] === 0 && pads[5] === 0 &&
      pads[2] === pads[6] && pads[3] === pads[7] && !this.outputNames.includes(n.outputs[0]);
    if (!ok) throw new Error(`${n.what}: padding [${pads.join(', ')}] is supported only as the symmetric spatial zero padding of an average pool`);
    absorbed.add(n);
    extraPad.set(pool, [pads[2], pads[3]]);
  }

  /** The model: modules made during a first forward on zeros (when input ranks are known), then put in the tree. */
  private build(steps: Step[], layerPaths: Map<string, NodeInfo>, modulePaths: Map<string, NodeInfo[]>, rnnPlans: RecurrentPlan[]): OnnxModel {
    const model = new OnnxModel();
    // graph outputs that are the input or constants still need a step to appear in env
    hidden(model, {
      program: steps, constants: new Map(this.consts), inputName: this.inputName, outputNames: this.outputNames,
      inputShape: this.inputShape, opset: this.opset, file: this.file, pending: new Map<string, Module>(),
    });
    // constants that feed tensor ops become engine tensors once, here (not inside the build's tidy)
    for (const s of steps) {
      if (s.kind !== 'op' || !TENSOR_CONST_OPS.has(s.node.op)) continue;
      for (const i of s.node.inputs) { const c = i ? this.consts.get(i) : undefined; if (c && c.data.length > 1) keepConstTensor(c); }
    }
    const creators = new Map<string, (x: Tensor) => Module>();
    for (const [p, n] of layerPaths) creators.set(p, (x) => this.makeLayer(n, x));
    for (const [p, ns] of modulePaths) creators.set(p, (x) => this.makeModuleOp(ns[0], x));
    for (const p of rnnPlans) creators.set(p.path, () => makeRecurrent(p, this.consts));
    const order: string[] = [];
    const pending = model.pending!;
    model.resolve = (path: string) => {
      let m = pending.get(path);
      if (!m) {
        const make = creators.get(path);
        if (!make) throw new Error(`internal: no module for path '${path}'`);
        m = withoutInit(() => make(lastInput!));
        m.eval();
        pending.set(path, m);
        order.push(path);
      }
      return m;
    };
    let lastInput: Tensor | null = null;
    const env = new Map<string, RtValue>(this.consts);
    tf.tidy(() => {
      const x = tf.zeros(this.inputShape);
      env.set(this.inputName, new Tensor(x));
      for (const s of steps) {
        if (s.kind === 'layer') {
          const v = env.get(s.node.inputs[0]);
          lastInput = v === undefined ? null : isConst(v) ? constTensor(v) : v;
        }
        runStep(model, s, env);
        for (const o of s.outputs) {
          const v = env.get(o);
          if (v && !isConst(v) && v.size > (1 << 26)) throw new Error(`${s.node.what}: its output [${v.shape.join(', ')}] is too large`);
        }
      }
      for (const o of this.outputNames) if (!env.has(o)) throw new Error(`graph output '${o}' was not computed`);
    });
    delete (model as { resolve?: unknown }).resolve;
    // the layers own their weights now: keep only the constants that ops and outputs read
    const read = new Set<string>(this.outputNames);
    for (const s of steps) for (const i of stepInputs(s)) if (i) read.add(i);
    for (const k of [...model.constants.keys()]) if (!read.has(k)) model.constants.delete(k);
    this.attach(model, order, pending);
    model.pending = null;
    model.eval();
    return model;
  }

  /** Puts the modules into the tree: PyTorch's order (the initializers') when every layer is named, else call order. */
  private attach(model: OnnxModel, order: string[], mods: Map<string, Module>): void {
    const named = order.map((p) => {
      const m = mods.get(p)!;
      const keys = [...m.ownParameters(), ...m.ownBuffers()].map(([k]) => `${p}.${k}`).filter((k) => this.initOrder.has(k));
      return keys.length ? Math.min(...keys.map((k) => this.initOrder.get(k)!)) : null;
    });
    const hasParams = (p: string) => mods.get(p)!.ownParameters().length > 0;
    const byInit = order.every((p, i) => !hasParams(p) || named[i] !== null);
    const key = new Map<string, number>();
    let last = -1, step = 0;
    order.forEach((p, i) => {
      if (byInit && named[i] !== null) { last = named[i]!; step = 0; key.set(p, last); }
      else key.set(p, byInit ? last + (++step) * 1e-6 : i);
    });
    // a container's key is its first descendant's
    const nodeKey = (p: string) => Math.min(...order.filter((q) => q === p || q.startsWith(p + '.')).map((q) => key.get(q)!));
    const safe = new Map<string, string>();
    const safeName = (parent: Module, k: string) => {
      let name = k;
      while (RESERVED.has(name) || (name in parent && !((parent as unknown as Record<string, unknown>)[name] instanceof Module))) name += '_';
      return name;
    };
    const sorted = [...order].sort((a, b) => nodeKey(a) - nodeKey(b) || (a < b ? -1 : 1));
    const containerFor = (path: string): Module => {
      if (!path) return model;
      const parts = path.split('.');
      let cur: Module = model;
      let walked = '';
      for (const part of parts) {
        walked = walked ? `${walked}.${part}` : part;
        const name = safe.get(walked) ?? safeName(cur, part);
        safe.set(walked, name);
        const rec = cur as unknown as Record<string, Module>;
        if (!(rec[name] instanceof Module)) rec[name] = new OnnxScope();
        cur = rec[name];
      }
      return cur;
    };
    // containers are made when their first module is attached, so field order follows the sort
    const finalPath = new Map<string, string>();
    for (const p of sorted) {
      const parts = p.split('.');
      const parentPath = parts.slice(0, -1).join('.');
      const parent = containerFor(parentPath);
      const leaf = parts[parts.length - 1];
      let name = safeName(parent, leaf);
      if ((parent as unknown as Record<string, unknown>)[name] instanceof Module) name = `${name}_${Object.keys(parent).length}`;
      (parent as unknown as Record<string, Module>)[name] = mods.get(p)!;
      const parentFinal = parentPath ? parentPath.split('.').map((_, i, arr) => safe.get(arr.slice(0, i + 1).join('.'))!).join('.') : '';
      finalPath.set(p, parentFinal ? `${parentFinal}.${name}` : name);
    }
    for (const s of model.program) if (s.path !== undefined) s.path = finalPath.get(s.path) ?? s.path;
  }

  // ---- layer construction -----------------------------------------------------------------------
  private c(name: string): ConstValue { return this.consts.get(name)!; }

  private makeLayer(n: NodeInfo, x: Tensor): Module {
    const { what, attrs } = n;
    const assign = (p: Parameter | null, v: ConstValue | undefined, dims: number[], label: string) => {
      if (!p || !v) return;
      if (sizeOf(v.dims) !== sizeOf(dims)) throw new Error(`${what}: ${label} has shape [${v.dims.join(', ')}], expected [${dims.join(', ')}]`);
      p.assignLogical(tensor(Float32Array.from(v.data), dims));
    };
    switch (n.op) {
      case 'Conv': case 'ConvTranspose': {
        const w = this.c(n.inputs[1]);
        const b = n.inputs[2] ? this.c(n.inputs[2]) : undefined;
        const rank = w.dims.length;
        if (rank !== 4 && !(rank === 3 && n.op === 'Conv')) throw new Error(`${what}: a ${rank - 2}-d convolution is not supported (1-d and 2-d are)`);
        const sp = rank - 2;
        const group = attrs.int('group', 1);
        const k = attrs.ints('kernel_shape') ?? w.dims.slice(2);
        const s = attrs.ints('strides') ?? Array(sp).fill(1);
        const d = attrs.ints('dilations') ?? Array(sp).fill(1);
        const autoPad = attrs.string('auto_pad', 'NOTSET');
        if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new Error(`${what}: auto_pad ${autoPad} is not supported`);
        const pads = autoPad === 'VALID' ? Array(2 * sp).fill(0) : attrs.ints('pads') ?? Array(2 * sp).fill(0);
        if (k.length !== sp || s.length !== sp || d.length !== sp || pads.length !== 2 * sp) throw new Error(`${what}: kernel, strides, dilations or pads do not match the ${sp}-d weight`);
        if (k.some((v, i) => v !== w.dims[2 + i])) throw new Error(`${what}: kernel_shape [${k.join(', ')}] differs from the weight's [${w.dims.slice(2).join(', ')}]`);
        checkGeometry(what, [...k, ...s, ...d, group], 1);
        checkGeometry(what, pads, 0);
        for (let i = 0; i < sp; i++) if (pads[i] !== pads[i + sp]) throw new Error(`${what}: asymmetric padding [${pads.join(', ')}] is not supported`);
        const padding = pads.slice(0, sp);
        const hasBias = b !== undefined;
        if (n.op === 'ConvTranspose') {
          if (attrs.has('output_shape')) throw new Error(`${what}: output_shape is not supported (PyTorch exports pads and output_padding)`);
          const op = attrs.ints('output_padding') ?? [0, 0];
          checkGeometry(what, op, 0);
          const [inC, outG] = w.dims;
          if (inC % group !== 0) throw new Error(`${what}: ${inC} input channels do not split into ${group} groups`);
          const [, , h, wd] = x.shape;
          const out = [0, 1].map((i) => (([h, wd][i] - 1) * s[i] - 2 * padding[i] + d[i] * (k[i] - 1) + op[i] + 1));
          if (out.some((v) => v < 1) || x.shape[0] * outG * group * out[0] * out[1] > (1 << 26)) throw new Error(`${what}: output size ${out.join('×')} is invalid or too large`);
          const m = new ConvTranspose2d(inC, outG * group, [k[0], k[1]], { stride: s, padding, dilation: d, groups: group, outputPadding: op, bias: hasBias });
          assign(m.weight, w, w.dims, 'the weight');
          assign(m.bias, b, [outG * group], 'the bias');
          return m;
        }
        const [outC, inG] = w.dims;
        if (outC % group !== 0) throw new Error(`${what}: ${outC} output channels do not split into ${group} groups`);
        if (x.shape[0] * outC * sizeOf(x.shape.slice(2)) > (1 << 26)) throw new Error(`${what}: its output would be too large`);
        if (sp === 1) {
          const m = new Conv1d(inG * group, outC, k[0], { stride: s[0], padding: padding[0], dilation: d[0], groups: group, bias: hasBias });
          assign(m.weight, w, w.dims, 'the weight');
          assign(m.bias, b, [outC], 'the bias');
          return m;
        }
        const m = new Conv2d(inG * group, outC, [k[0], k[1]], { stride: s, padding, dilation: d, groups: group, bias: hasBias });
        assign(m.weight, w, w.dims, 'the weight');
        assign(m.bias, b, [outC], 'the bias');
        return m;
      }
      case 'BatchNormalization': {
        const [scale, bias, mean, variance] = n.inputs.slice(1, 5).map((i) => this.c(i));
        const c = scale.data.length;
        if ([bias, mean, variance].some((v) => v.data.length !== c)) throw new Error(`${what}: scale, bias, mean and variance differ in length`);
        const eps = float32Shortest(attrs.float('epsilon', 1e-5));
        const momentum = float32Shortest(1 - float32Shortest(attrs.float('momentum', 0.9)));
        if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) throw new Error(`${what}: epsilon ${eps} or momentum out of range`);
        const rank = x.rank;
        if (x.shape[1] !== c) throw new Error(`${what}: input has ${x.shape[1]} channels, the statistics ${c}`);
        const m = rank === 4 ? new BatchNorm2d(c, { eps, momentum }) : rank === 2 || rank === 3 ? new BatchNorm1d(c, { eps, momentum }) : null;
        if (!m) throw new Error(`${what}: a rank-${rank} input is not supported`);
        assign(m.weight, scale, [c], 'the scale');
        assign(m.bias, bias, [c], 'the bias');
        assign(m.running_mean, mean, [c], 'the mean');
        assign(m.running_var, variance, [c], 'the variance');
        return m;
      }
      case 'Gemm': {
        const w = this.c(n.inputs[1]);
        if (w.dims.length !== 2) throw new Error(`${what}: the weight must be 2-d, got [${w.dims.join(', ')}]`);
        const alpha = attrs.float('alpha', 1), beta = attrs.float('beta', 1);
        const transB = attrs.int('transB', 0) === 1;
        const [outF, inF] = transB ? w.dims : [w.dims[1], w.dims[0]];
        const wv = transB ? w : evalConst({ op: 'Transpose', opset: this.opset, what, attrs: { int: () => 0, float: () => 0, ints: () => [1, 0] } }, [w])[0];
        const b = n.inputs[2] ? this.c(n.inputs[2]) : undefined;
        if (b && b.data.length !== outF && b.data.length !== 1) throw new Error(`${what}: bias of ${b.data.length} values for ${outF} outputs`);
        const m = new Linear(inF, outF, { bias: !!b });
        assign(m.weight, alpha === 1 ? wv : constValue(wv.dims, 'float', Float32Array.from(wv.data, (v) => v * alpha)), [outF, inF], 'the weight');
        if (b) assign(m.bias, constValue([outF], 'float', Float32Array.from({ length: outF }, (_, i) => beta * b.data[b.data.length === 1 ? 0 : i])), [outF], 'the bias');
        return m;
      }
      case 'MatMul': {
        const w = this.c(n.inputs[1]);
        const [inF, outF] = w.dims;
        const bn = (n as NodeInfo & { biasNode?: NodeInfo }).biasNode;
        const bName = bn ? (bn.inputs[0] === n.outputs[0] ? bn.inputs[1] : bn.inputs[0]) : undefined;
        const m = new Linear(inF, outF, { bias: !!bName });
        const wt = evalConst({ op: 'Transpose', opset: this.opset, what, attrs: { int: () => 0, float: () => 0, ints: () => [1, 0] } }, [w])[0];
        assign(m.weight, wt, [outF, inF], 'the weight');
        if (bName) assign(m.bias, this.c(bName), [outF], 'the bias');
        return m;
      }
      default:
        throw new Error(`internal: ${what} is not a layer`);
    }
  }

  private makeModuleOp(n: NodeInfo, x: Tensor): Module {
    switch (n.op) {
      case 'Relu': return new ReLU();
      case 'Sigmoid': return new Sigmoid();
      case 'Tanh': return new Tanh();
      case 'Clip': return new ReLU6();
      case 'Flatten': return new Flatten(1, -1);
      case 'Softmax': {
        const axis = n.attrs.int('axis', this.opset >= 13 ? -1 : 1);
        const r = x.rank;
        const a = axis < 0 ? axis + r : axis;
        if (this.opset < 13 && a !== r - 1) throw new Error(`${n.what}: Softmax over a non-last axis at opset ${this.opset} is not supported`);
        return new Softmax(a);
      }
      case 'GlobalAveragePool':
        if (x.rank !== 4) throw new Error(`${n.what}: only 4-d (NCHW) inputs are supported`);
        return new AdaptiveAvgPool2d([1, 1]);
      case 'MaxPool': case 'AveragePool': {
        const p = poolGeometry(n, (n as NodeInfo & { extraPad?: [number, number] }).extraPad ?? 0);
        // PyTorch prints kernel_size=2 for a square window: keep single numbers where both sides agree
        const one = (v: [number, number]): number | [number, number] => (v[0] === v[1] ? v[0] : v);
        if (n.op === 'MaxPool') return new MaxPool2d(one(p.kernel), { stride: one(p.stride), padding: one(p.padding), ceilMode: p.ceil });
        return new AvgPool2d(one(p.kernel), { stride: one(p.stride), padding: one(p.padding) });
      }
      default:
        throw new Error(`internal: ${n.what} is not a module op`);
    }
  }
}

/** The values a step reads (a layer only its input: its weights are the module's). */
function stepInputs(s: Step): string[] {
  if (s.kind === 'layer') return s.node.inputs.slice(0, 1);
  if (s.kind === 'shape') return [s.shape!.input];
  if (s.kind === 'rnn') return [s.rnn!.input, ...s.rnn!.h0, ...s.rnn!.c0].filter(Boolean);
  return s.node.inputs;
}

/** Steps in an order where every value is computed before it is read (graph order where it already is). */
function sortSteps(steps: Step[]): Step[] {
  const producer = new Map<string, number>();
  steps.forEach((s, i) => { for (const o of s.outputs) if (o) producer.set(o, i); });
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

function sameAttrs(a: NodeInfo, b: NodeInfo): boolean {
  const norm = (n: NodeInfo) => JSON.stringify(n.attrs.names().sort().map((k) => [k, n.attrs.raw(k)]));
  return norm(a) === norm(b);
}

function isRelu6(n: NodeInfo, consts: Map<string, ConstValue>, opset: number): boolean {
  if (opset < 11) return n.attrs.float('min', NaN) === 0 && n.attrs.float('max', NaN) === 6;
  const v = (i: number) => (n.inputs[i] && consts.has(n.inputs[i]) ? consts.get(n.inputs[i])!.data : null);
  const lo = v(1), hi = v(2);
  return !!lo && !!hi && lo.length === 1 && hi.length === 1 && lo[0] === 0 && hi[0] === 6;
}

/** The shortest decimal that reads back as the same float32 (1e-5, not 9.999999747378752e-06). */
function float32Shortest(v: number): number {
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const c = parseFloat(f.toPrecision(p));
    if (Math.fround(c) === f) return c;
  }
  return f;
}
