// What a lowering sees while the exporter builds the graph: the one interface every op's lowering
// (float modules, tensor ops, linger's Int layers in linger/ops/<op>/lower.ts) is written against.
import type { Tensor } from '../../tensor';
import type { CapturedCall } from '../capture';
import type { GraphBuilder } from '../graphBuilder';

export type ExportMode = 'float' | 'qdq' | 'thinker';

/** A value in the graph: its name and, in the thinker dialect, the scale of its int8 codes. */
export interface ExportValue {
  name: string;
  int8Scale?: number;
  /** a value written only when something reads it (its nodes, or an error: thinker's GRUInt h_n) */
  materialize?: () => ExportValue;
}

export interface ExportContext {
  g: GraphBuilder;
  /** 'float' below the fixed stage; a fixed-stage model's dialect otherwise */
  mode: ExportMode;
  opset: number;
  /** the graph value of a tensor (produced by an earlier call, an alias of one, or a constant) */
  value(t: Tensor | number): ExportValue;
  /** a float view of a value (thinker int8 values get a Dequant, once) */
  floatName(v: ExportValue, where: string): string;
  /** sets the call's i-th output (default 0) */
  out(c: CapturedCall, v: ExportValue, i?: number): void;
  /** thinker: an int8 input at scale sx (the value's codes, or a Quant) */
  int8Input(x: Tensor, sx: number, bits: number, scope: string): string;
  /** qdq: a quantized layer's input codes as float32 integers */
  inputCodes(x: Tensor, sx: number, bits: number, scope: string): string;
  /** qdq: clamp(⌊acc·2^k + 1/2⌋, −B−1, B)/s_o in double, from a float or int32 accumulator */
  requantize(acc: string, k: number, bits: number, so: number, scope: string): string;
  /** the scales a quantized layer recorded for this call (an error when missing) */
  scales(c: CapturedCall, withWeight: boolean): { sx: number; sw: number; so: number };
  /** Reshape to the traced output shape (dim 0 follows the input's when it is the batch) */
  reshapeNode(x: string, inShape: number[], outShape: number[], scope: string, asked?: number[]): string;
  /** ReduceSum/ReduceMean/… with axes as an input or an attribute, as the opset wants */
  reduceNode(op: string, x: string, axes: number[] | null, keep: boolean, scope: string): string;
  /** Static dims, with dim 0 symbolic when it is the batch of a dynamic-batch export */
  dims(shape: number[]): (number | string)[];
  /** true when a tensor is the result of an earlier call (not a constant of the graph) */
  isProduced(t: Tensor): boolean;
  /** names made once per graph (the activation tables) */
  shared: Map<string, string>;
  /** a warning about the exported file (said once): e.g. a layer thinker computes differently */
  warn(message: string): void;
}
