// The ONNX import's op registry (docs/onnx.md, "Import from PyTorch"). Every ONNX op the importer
// reads is one file in ops/ that registers what the op is, so adding an op is adding a file:
// - `layer`: a node with constant weights becomes an engine layer at a PyTorch module path, its
//   parameters under PyTorch's state-dict keys (Conv, Gemm, BatchNormalization, …);
// - `module`: a parameter-free op that becomes a module when its node's scope is a leaf module of
//   its own (Relu, MaxPool, Flatten, …);
// - `run`: what the node computes on runtime values (a tensor op);
// - `fold`: what it computes on constants (const-foldable: shape arithmetic, Constant), at import
//   when its inputs are static and in the forward when they come from the input's shape;
// - `recurrent`: an LSTM/GRU cell, whose nodes recurrent.ts chains into one nn.LSTM / nn.GRU.
// The graph reader, the planner and the model's forward ask the registry and name no op. Ops import
// this file; it imports no op (ops/index.ts loads them all, and import/index.ts loads ops/index.ts).
import type { Module } from '../../nn/module';
import type { Tensor } from '../../tensor';
import type { Attrs } from '../proto';
import { ConstValue, isConst } from './constEval';
import { asTensor, RtValue } from './values';

export interface NodeInfo {
  index: number;
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
  /** for errors: node 'name' (Op) */
  what: string;
  /** the PyTorch module path its name encodes (null: no scope in the name) */
  scope: string | null;
  /** set by planning: the bias Add fused into this MatMul layer (the layer writes the Add's output) */
  fusedBias?: NodeInfo;
  /** set by planning: the spatial zero padding of a Pad fused into this pool */
  fusedPad?: [number, number];
}

/** What a tensor op sees: the node, its input values (undefined: an omitted optional input), the opset. */
export interface OpCall {
  n: NodeInfo;
  ins: (RtValue | undefined)[];
  opset: number;
  /** input 0 as a tensor */
  x(): Tensor;
  /** an operand of a binary op with `other`: a scalar constant as a number, else a tensor */
  operand(v: RtValue | undefined, other: Tensor): Tensor | number;
}

/** What a fold sees: the node, its constant inputs (undefined: omitted), and when it runs. */
export interface FoldCall {
  n: NodeInfo;
  ins: (ConstValue | undefined)[];
  opset: number;
  /** true while the graph is read (static values), false in a forward (values from the input's shape) */
  atImport: boolean;
  /** input i, which the op requires */
  need(i: number): ConstValue;
}

/** What planning knows about the graph, for the ops that decide their node's role. */
export interface PlanContext {
  consts: Map<string, ConstValue>;
  /** the nodes reading each value */
  consumers: Map<string, NodeInfo[]>;
  opset: number;
  isConst(name: string | undefined): boolean;
  isOutput(name: string): boolean;
  /**
   * Takes a node out of the program: its work is done by the layer or module it was fused into.
   * `alias`: its output is still written, equal to its input (a Pad the pool it feeds pads for).
   */
  absorb(n: NodeInfo, alias?: boolean): void;
}

/** What building a module sees. */
export interface BuildContext {
  opset: number;
  /** the constant (initializer or folded value) of that name */
  constant(name: string): ConstValue;
}

export interface LayerDef {
  /**
   * Whether this node becomes the layer (its weights are constants). May throw, naming the node,
   * when the op can only be a layer and the node does not fit.
   */
  accepts(n: NodeInfo, ctx: PlanContext): boolean;
  /** the inputs holding its parameters, whose names give the module path (`layer1.0.conv1.weight`) */
  params(n: NodeInfo): string[];
  /** the path stem when neither the parameters nor the node name give one (`conv` → conv_0) */
  stem: string;
  /** the engine layer with the node's weights; `x` is its input in the build run */
  make(n: NodeInfo, x: Tensor, ctx: BuildContext): Module;
}

export interface ModuleDef {
  /** whether this node is the module (Clip only as ReLU6); default: every node is */
  accepts?(n: NodeInfo, ctx: PlanContext): boolean;
  /** the engine module; `x` is its input in the build run */
  make(n: NodeInfo, x: Tensor, ctx: BuildContext): Module;
}

/** An ONNX recurrent op as PyTorch exports its nn.LSTM / nn.GRU (recurrent.ts plans the chains). */
export interface RecurrentCell {
  /** gate blocks per direction */
  gates: number;
  /** ONNX gate block j holds PyTorch's block order[j] (the inverse of the export's reorder) */
  order: number[];
  /** the activations PyTorch's cell computes, for one direction (the only value accepted) */
  activations: string[];
  /** whether the cell has a cell state (input initial_c at 6, output Y_c at 2) */
  cellState: boolean;
  /** the cell's own attribute checks, run after the shared ones */
  checkAttrs(n: NodeInfo): void;
  /** the cell's own input checks, run after the shared ones */
  checkInputs(n: NodeInfo): void;
  make(inputSize: number, hidden: number, opts: { numLayers: number; bidirectional: boolean; batchFirst: boolean; bias: boolean }): Module;
}

/** One ONNX op: what the importer does with its nodes. */
export interface OpDef {
  op: string;
  /** the node on runtime values; an op without one is folded, a layer, a module, absorbed or an error */
  run?(c: OpCall): RtValue[];
  /** the node on constants: used whenever every input is a constant */
  fold?(c: FoldCall): ConstValue[];
  /** whether a node folds while the graph is read (default: every input it names is a constant) */
  foldsAtImport?(n: NodeInfo, isConst: (name: string) => boolean): boolean;
  /** its constant operands become engine tensors once at build, not at every forward */
  tensorConsts?: boolean;
  layer?: LayerDef;
  module?: ModuleDef;
  recurrent?: RecurrentCell;
  /** planning for an op that is no layer: it may absorb its node or a neighbour (Pad) */
  plan?(n: NodeInfo, ctx: PlanContext): void;
  /** checks once every node's role is decided (MaxPool: its indices output is unused) */
  checkPlanned?(n: NodeInfo, ctx: PlanContext): void;
}

const DEFS = new Map<string, OpDef>();

/** Registers an op (one call per op, in its own file). */
export function def(d: OpDef): void {
  if (DEFS.has(d.op)) throw new Error(`internal: the ONNX op ${d.op} is registered twice`);
  DEFS.set(d.op, d);
}

/** The op's definition; undefined: the importer does not read it. */
export function opDef(op: string): OpDef | undefined {
  return DEFS.get(op);
}

export function foldCall(n: NodeInfo, ins: (ConstValue | undefined)[], opset: number, atImport: boolean): FoldCall {
  return {
    n,
    ins,
    opset,
    atImport,
    need: (i) => {
      const v = ins[i];
      if (!v) throw new Error(`${n.what}: input ${i} is missing`);
      return v;
    },
  };
}

/** One node on runtime values: the fold when every input is a constant, else the tensor op. */
export function execOp(n: NodeInfo, ins: (RtValue | undefined)[], opset: number): RtValue[] {
  const { op, what } = n;
  const d = DEFS.get(op);
  if (d?.fold && ins.every((v) => v === undefined || isConst(v)))
    return d.fold(foldCall(n, ins as (ConstValue | undefined)[], opset, false));
  if (!d?.run) {
    if (d?.fold) throw new Error(`${what}: ${op} on a computed tensor is not supported (only on shapes and constants)`);
    throw new Error(`${what}: unsupported op '${op}'`);
  }
  return d.run({
    n,
    ins,
    opset,
    x: () => asTensor(ins[0], what),
    operand: (v, other) => {
      if (v === undefined) throw new Error(`${what}: an input is missing`);
      if (isConst(v) && v.data.length === 1 && v.dims.length <= other.rank) return v.data[0];
      return asTensor(v, what);
    },
  });
}
