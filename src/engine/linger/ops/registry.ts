// The registry of linger's fixed-point ops: one definition per op, given by the op's own folder
// (linger/ops/<op>/index.ts), and asked by init, checkpoint replay, export and the quantization
// report — nothing outside the op folders tests a module against a list of op classes.
// A module's definition is found by the nearest registered class on its prototype chain
// (nn/classTable.ts): its Int class if it is already fixed-point, else the float class it
// replaces. docs/architecture.md walks through adding an op.
import type { CapturedCall } from '../../onnx/capture';
import type { ExportContext } from '../../onnx/export/context';
import { ClassTable, ModuleClass } from '../../nn/classTable';
import type { Module } from '../../nn/module';
import type { Tensor } from '../../tensor';
import type { GraphNode } from '../../trace/graph';
import type { IntLayer, IntOrigin, QuantBits } from './base';

/** Lowers one captured call of a fixed-point layer into the ONNX graph (one per dialect). */
export type IntLowering<M extends Module = Module> = (ctx: ExportContext, c: CapturedCall, m: M, scope: string) => void;

/** One row of linger.quantReport (the report's own fields; see linger/init.ts). */
export interface QuantReportRow {
  path: string;
  type: string;
  bits: QuantBits;
  aheadRelu: boolean;
  scaleX: number;
  scaleW: number | null;
  scaleO: number;
  weightRange: [number, number] | null;
  biasRange: [number, number] | null;
  /** signal-to-quantization-noise ratio of the output against the float layer on the same input, dB */
  sqnrDb: number | null;
}

/** How init replaces one float module class with the op's Int layer. */
export interface Replacement {
  float: ModuleClass;
  from(m: Module, o: IntOrigin): Module;
}

/** An Int layer: a module of the fixed stage, with its export and its place in the report. */
export interface IntOpDef<M extends Module = Module> {
  /** linger's class name, as printed and as checkpoints' module trees record it */
  name: string;
  intClass: abstract new (...args: never[]) => M;
  /** the float classes init turns into this layer (a module-level op) */
  replaces?: Replacement[];
  /** replaced only when init's `quantModules` names it (linger's `quant_modules`) */
  optIn?: string;
  /** its printed bits are its own, not the model's defaults (LayerNormInt's parameter_bits is 16) */
  ownBits?: boolean;
  lower: { qdq: IntLowering<M>; thinker: IntLowering<M> };
  /** a report row of its own (default: the weighted layers' row, linger/init.ts) */
  report?(m: M, path: string, args: unknown[], out: unknown): QuantReportRow;
}

/**
 * A tensor op (add, cat, mul, …, a functional such as F.bmm) that the fixed stage hands to a layer
 * while the model runs: one layer per call site of the traced graph, named as linger names it, a
 * child of the module whose forward calls it (docs/fixed-point.md#conformance-with-linger-111).
 * `flag` ops are quantized only when init's `functions` names them (linger's SetFunction*Quant);
 * a stateless op (no `make`) needs no layer and no list.
 */
export interface TensorOpDef {
  /** the op name the tensor functions pass to the quantized-op hook (tensor.ts) */
  op: string;
  /**
   * the counter its layers are numbered by in their module (linger: one for the iq ops, one for
   * bmm); older checkpoints of ours kept these layers in a root ModuleList of this name
   */
  list?: string;
  /** the layer of the i-th call in its module is `_linger_round_tensor_<child><i>` (linger's naming) */
  child?: string;
  flag?: string;
  /** leaf modules whose op the hook sees (nn.Sigmoid for 'sigmoid'): the graph has the module */
  modules?: ModuleClass[];
  /** which graph op nodes are this op's call sites (default: every node with target `op`) */
  matches?(n: GraphNode): boolean;
  /** the layer of one call site, or null where it stays float */
  make?(bits: QuantBits, n: GraphNode): Module | null;
  /** the call handed to its layer; undefined computes the op in float */
  call(layer: Module | null, args: Tensor[], dim?: number, attrs?: Record<string, unknown>): Tensor | undefined;
  /** the export of a recorded call of the op itself (an op with no layer; others export as the layer's call) */
  lowerCall?(ctx: ExportContext, c: CapturedCall): void;
}

type Entry =
  { kind: 'int'; def: IntOpDef } | { kind: 'float'; def: IntOpDef; replacement: Replacement } | { kind: 'floatOnly'; why: string };

const TABLE = new ClassTable<Entry>();
const INT_OPS: IntOpDef[] = [];
const TENSOR_OPS = new Map<string, TensorOpDef>();
const INT_CLASSES = new Set<unknown>();

/** Registers a module-level op (its Int class and the float classes it replaces). */
export function defineIntOp<M extends Module>(def: IntOpDef<M>): IntOpDef<M> {
  const d = def as unknown as IntOpDef;
  TABLE.set(def.intClass as unknown as ModuleClass, { kind: 'int', def: d });
  INT_CLASSES.add(def.intClass);
  for (const r of def.replaces ?? []) TABLE.set(r.float, { kind: 'float', def: d, replacement: r });
  INT_OPS.push(d);
  return def;
}

/** Registers a tensor op the fixed stage quantizes (its layer class, if any, with defineIntOp). */
export function defineTensorOp(def: TensorOpDef): TensorOpDef {
  if (TENSOR_OPS.has(def.op)) throw new Error(`internal: tensor op '${def.op}' is registered twice`);
  TENSOR_OPS.set(def.op, def);
  return def;
}

/** Float classes with no fixed-point version: init leaves them in float and says so. */
export function defineFloatOnly(classes: ModuleClass[], why = 'no fixed-point version'): void {
  for (const c of classes) TABLE.set(c, { kind: 'floatOnly', why });
}

/** The Int op a module is an instance of (the nearest registered class decides), or undefined. */
export function intOpOf(m: Module): IntOpDef | undefined {
  const e = TABLE.lookup(m);
  return e?.kind === 'int' ? e.def : undefined;
}

export function isIntLayer(m: Module): m is Module & IntLayer {
  return intOpOf(m) !== undefined;
}

/** How init would replace `m` (undefined: already fixed-point, float-only, or unknown). */
export function replacementOf(m: Module): { def: IntOpDef; replacement: Replacement } | undefined {
  const e = TABLE.lookup(m);
  return e?.kind === 'float' ? { def: e.def, replacement: e.replacement } : undefined;
}

/** True for a module init leaves in float because no Int version exists. */
export function isFloatOnly(m: Module): boolean {
  return TABLE.lookup(m)?.kind === 'floatOnly';
}

export function intOps(): readonly IntOpDef[] {
  return INT_OPS;
}
/** The `quantModules` names init accepts. */
export function optInNames(): string[] {
  return INT_OPS.flatMap((d) => (d.optIn ? [d.optIn] : []));
}

export function tensorOp(op: string): TensorOpDef | undefined {
  return TENSOR_OPS.get(op);
}
export function tensorOps(): TensorOpDef[] {
  return [...TENSOR_OPS.values()];
}
/** The `functions` names init accepts (linger's SetFunction*Quant switches). */
export function functionFlags(): string[] {
  return [...new Set(tensorOps().flatMap((d) => (d.flag ? [d.flag] : [])))];
}
/** The counters of the fixed stage's op layers, each with its flag (undefined: always on). */
export function opLists(): { list: string; flag?: string }[] {
  const out = new Map<string, string | undefined>();
  for (const d of tensorOps()) if (d.list && !out.has(d.list)) out.set(d.list, d.flag);
  return [...out].map(([list, flag]) => ({ list, flag }));
}

/** The prefix of every op layer's name (linger's LINGER_MIX_INT8_MANUAL_ROUND_LAYERS). */
export const OP_LAYER_PREFIX = '_linger_round_tensor_';
/** The name of the op layer of a module's `index`-th call of the op's counter. */
export function opLayerName(def: TensorOpDef, index: number): string {
  return `${OP_LAYER_PREFIX}${def.child ?? def.op}${index}`;
}
/** The counter (`list`) whose op layers a child of this name is, or undefined. */
export function opListOfLayerName(name: string): string | undefined {
  if (!name.startsWith(OP_LAYER_PREFIX)) return undefined;
  const rest = name.slice(OP_LAYER_PREFIX.length);
  return tensorOps().find((d) => d.list && rest.startsWith(d.child ?? d.op) && /^\d+$/.test(rest.slice((d.child ?? d.op).length)))?.list;
}

/** The tensor op a graph node is a call site of, or undefined (`owner`: the module a module node names). */
export function tensorOpOfNode(n: GraphNode, owner: Module | undefined): TensorOpDef | undefined {
  if (n.kind === 'module') {
    if (!owner) return undefined;
    return tensorOps().find((d) => d.modules?.some((c) => owner instanceof c));
  }
  const d = TENSOR_OPS.get(n.target);
  return d && (d.matches ? d.matches(n) : true) ? d : undefined;
}
