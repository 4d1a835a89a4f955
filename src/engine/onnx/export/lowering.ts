// The exporter's state while it builds one graph: the values of the recorded tensors, the
// dequantized views of int8 values, and the building blocks the lowerings share (ExportContext).
// Each captured call goes to its lowering: linger's Int layers to their op's (linger/ops/<op>/),
// float modules to floatModules.ts, recorded ops to tensorOps.ts.
import { tf } from '../../backend/tf';
import { Module } from '../../nn/module';
import '../../linger/ops';
import { intOpOf } from '../../linger/ops/registry';
import { qmax } from '../../quant/qvalue';
import { Tensor } from '../../tensor';
import { Capture, CapturedCall } from '../capture';
import { GraphBuilder } from '../graphBuilder';
import { DT, onnx, PLATFORM, THINKER, valueInfo } from '../proto';
import type { ExportContext, ExportMode, ExportValue } from './context';
import { lowerFloatModule } from './floatModules';
import { logicalValues } from './nodes';
import { lowerTensorOp } from './tensorOps';

/** What goes wrong exporting a model: names the call (module path or op) that could not be exported. */
export class OnnxExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxExportError';
  }
}

/** PyTorch's ONNX scope names: module `layer1.0.conv1` is `/layer1/layer1.0/conv1`. */
export function scopeName(modulePath: string): string {
  if (!modulePath) return '';
  const parts = modulePath.split('.');
  return parts.map((p, i) => '/' + (/^\d+$/.test(p) && i > 0 ? `${parts[i - 1]}.${p}` : p)).join('');
}

export function describe(c: CapturedCall, i: number): string {
  return c.kind === 'module' ? `${c.module!.typeName()} at '${c.target || '(root)'}'` : `op '${c.target}' (call ${i})`;
}

/** A lazily written value, written on its first read (ExportValue.materialize). */
function resolved(v: ExportValue): ExportValue {
  const make = v.materialize;
  if (make) {
    delete v.materialize;
    Object.assign(v, make());
  }
  return v;
}

export class Lowering implements ExportContext {
  readonly g = new GraphBuilder();
  private readonly values = new Map<Tensor, ExportValue>();
  private readonly byRaw = new Map<tf.Tensor, Tensor[]>();
  private readonly paramNames = new Map<tf.Tensor, string>();
  private readonly dequantized = new Map<string, string>();
  readonly mode: ExportMode;
  readonly opset: number;
  private readonly dynamicBatch: boolean;
  private readonly batch: number;
  readonly shared = new Map<string, string>();
  readonly warnings: string[] = [];

  constructor(
    private readonly model: Module,
    private readonly cap: Capture,
    o: { opset: number; dialect: 'qdq' | 'thinker' | 'float'; dynamicBatch: boolean },
  ) {
    this.mode = o.dialect;
    this.opset = o.opset;
    this.dynamicBatch = o.dynamicBatch && cap.input.rank >= 1;
    this.batch = cap.input.shape[0];
    for (const [k, p] of [...model.namedParameters(), ...model.namedBuffers()]) this.paramNames.set(p.raw, k);
  }

  run(inputName: string, outputName: string): onnx.IGraphProto {
    const { cap, g } = this;
    g.reserve(inputName);
    g.reserve(outputName);
    this.setValue(cap.input, { name: inputName });
    cap.calls.forEach((c, i) => {
      try {
        this.lower(c);
      } catch (e) {
        if (e instanceof OnnxExportError) throw e;
        throw new OnnxExportError(`exportOnnx: ${describe(c, i)}: ${(e as Error).message}`);
      }
    });
    // graph outputs: dequantized floats, under their public names
    const outs: onnx.IValueInfoProto[] = [];
    const taken = new Set<string>([inputName]);
    cap.outputs.forEach((t, i) => {
      let name = this.floatName(this.value(t), '');
      const want = i === 0 ? outputName : `${outputName}_${i}`;
      if (taken.has(name) || !g.nodes.some((n) => n.output?.includes(name))) {
        name = g.op('Identity', [name], `/Identity_${want}`);
      }
      g.rename(name, want);
      for (const v of this.values.values()) if (v.name === name) v.name = want;
      for (const [k, d] of this.dequantized) if (d === name) this.dequantized.set(k, want);
      taken.add(want);
      outs.push(valueInfo(want, DT.FLOAT, this.dims(t.shape)));
    });
    return {
      name: this.model.typeName(),
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(inputName, cap.input.dtype === 'int32' ? DT.INT32 : DT.FLOAT, this.dims(cap.input.shape))],
      output: outs,
    };
  }

  /** Static dims, with dim 0 symbolic when it is the batch. */
  dims(shape: number[]): (number | string)[] {
    return shape.map((d, i) => (i === 0 && this.dynamicBatch && d === this.batch ? 'batch' : d));
  }

  private setValue(t: Tensor, v: ExportValue): void {
    this.values.set(t, v);
    this.byRaw.set(t.raw, [...(this.byRaw.get(t.raw) ?? []), t]);
  }

  /** The graph value of a tensor: produced by an earlier call, an alias of one, or a constant. */
  value(t: Tensor | number): ExportValue {
    if (typeof t === 'number') return { name: this.g.scalar(t) };
    const v = this.values.get(t);
    if (v) return resolved(v);
    // detach() and friends: a new Tensor object over the same data and layout
    const alias = this.byRaw.get(t.raw)?.find((a) => (a.perm ?? []).join() === (t.perm ?? []).join());
    if (alias) return resolved(this.values.get(alias)!);
    const { dims, values } = logicalValues(t.raw, t.perm);
    const base = this.paramNames.get(t.raw) ?? 'const';
    const name = this.g.initializer(base, dims, t.dtype === 'int32' ? DT.INT32 : DT.FLOAT, values);
    const value = { name };
    this.setValue(t, value);
    return value;
  }

  /** A float view of a value (thinker int8 values get a Dequant, once). */
  floatName(v: ExportValue, where: string): string {
    if (v.int8Scale === undefined) return v.name;
    let d = this.dequantized.get(v.name);
    if (!d) {
      // linger writes Dequant's scale as scale_o, and thinker reads that name (docs/onnx.md)
      d = this.g.op('Dequant', [v.name], `${where}/Dequant`, { scale_o: { float: v.int8Scale } }, THINKER);
      this.dequantized.set(v.name, d);
    }
    return d;
  }

  warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  out(c: CapturedCall, v: ExportValue, i = 0): void {
    this.setValue(c.outputs[i], v);
  }

  /** True when a tensor is the result of an earlier call (not a constant of the graph). */
  isProduced(t: Tensor): boolean {
    return this.values.has(t);
  }

  // ---- dispatch -----------------------------------------------------------------------------
  private lower(c: CapturedCall): void {
    if (c.kind === 'op') return lowerTensorOp(this, c);
    const m = c.module!;
    const scope = scopeName(c.target) || '';
    const op = this.mode !== 'float' ? intOpOf(m) : undefined;
    if (op) return op.lower[this.mode as 'qdq' | 'thinker'](this, c, m, scope);
    lowerFloatModule(this, c, m, scope);
  }

  /** Reshape to the traced output shape; dim 0 copies the input's when it is the batch. */
  reshapeNode(x: string, inShape: number[], outShape: number[], scope: string, asked?: number[]): string {
    const infer = this.dynamicBatch && asked?.length === outShape.length ? asked.indexOf(-1) : -1;
    const target = outShape.map((d, i) =>
      i === infer ? -1 : i === 0 && this.dynamicBatch && inShape.length > 0 && inShape[0] === d && d === this.batch ? 0 : d,
    );
    return this.g.op('Reshape', [x, this.g.initializer('shape', [target.length], DT.INT64, target)], `${scope}/Reshape`);
  }

  reduceNode(op: string, x: string, axes: number[] | null, keep: boolean, scope: string): string {
    const g = this.g;
    const attrs: Record<string, number | number[]> = { keepdims: keep ? 1 : 0 };
    const asInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    const ins = [x];
    if (axes) {
      if (asInput) ins.push(g.initializer('axes', [axes.length], DT.INT64, axes));
      else attrs.axes = axes;
    }
    return g.op(op, ins, `${scope}/${op}`, attrs);
  }

  // ---- fixed stage, qdq dialect -------------------------------------------------------------
  //
  // Every tensor between layers is the engine's value q/s (float32), so float layers, reshapes
  // and the graph output need nothing special. A quantized layer:
  //   codes  q_x = Mul(x, s_x) when x carries s_x (exact: s_x is a power of two), else
  //          Clip(Floor(Mul(x, s_x) + 0.5), −B−1, B) in float32, the engine's own ops in order;
  //   acc    Conv/MatMul of integer-valued floats with the integer bias — exact while every
  //          partial sum stays under 2^24, which 128·Σ|q_w| + |q_b| bounds per output channel;
  //          beyond it ConvInteger/MatMulInteger (int32), or for ConvTranspose a split of the
  //          input channels into chunks that stay under the bound, summed in int32;
  //   out    Cast to double, Mul 2^k, Add 0.5, Floor, Clip(−B−1, B): exact in double for any
  //          int32 accumulator (the shifted sum needs at most 33 significant bits), so it equals
  //          the engine's shift with int32 floor division; then Cast to float and Div by s_o.
  // No QuantizeLinear/DequantizeLinear appears, so onnxruntime's QDQ fusions (which round half to
  // even with float scales) have no pattern to rewrite, and float Conv/MatMul stay exact under
  // any graph optimization level or kernel blocking because every partial sum is an exact integer.

  /** Input codes of a quantized layer, as float32 integers. */
  inputCodes(x: Tensor, sx: number, bits: number, scope: string): string {
    const g = this.g;
    const v = this.floatName(this.value(x), scope);
    const scaled = g.op('Mul', [v, g.scalar(sx)], `${scope}/QuantizeInput/Mul`);
    if (x.quantScale !== undefined) return scaled;
    const b = qmax(bits);
    const r = g.op('Floor', [g.op('Add', [scaled, g.scalar(0.5)], `${scope}/QuantizeInput/Add`)], `${scope}/QuantizeInput/Floor`);
    return g.op('Clip', [r, g.scalar(-b - 1), g.scalar(b)], `${scope}/QuantizeInput/Clip`);
  }

  /** q = clamp(⌊acc·2^k + 0.5⌋, −B−1, B) in double from a float or int32 accumulator; returns q/s_o as float. */
  requantize(acc: string, k: number, bits: number, so: number, scope: string): string {
    const g = this.g;
    const b = qmax(bits);
    const d = g.op('Cast', [acc], `${scope}/Requantize/Cast`, { to: DT.DOUBLE });
    // the engine's shift returns 0 for k < −30 (|acc|·2^k < 1/2 for any int32 accumulator)
    const shifted = g.op('Mul', [d, g.scalar(k < -30 ? 0 : 2 ** k, DT.DOUBLE)], `${scope}/Requantize/Mul`);
    const rounded = g.op(
      'Floor',
      [g.op('Add', [shifted, g.scalar(0.5, DT.DOUBLE)], `${scope}/Requantize/Add`)],
      `${scope}/Requantize/Floor`,
    );
    const q = g.op('Clip', [rounded, g.scalar(-b - 1, DT.DOUBLE), g.scalar(b, DT.DOUBLE)], `${scope}/Requantize/Clip`);
    const qf = g.op('Cast', [q], `${scope}/Requantize/CastFloat`, { to: DT.FLOAT });
    return g.op('Div', [qf, g.scalar(so)], `${scope}/Dequantize/Div`);
  }

  /** An int8 input for a thinker op: the value's codes when it has them at scale sx, else a Quant. */
  int8Input(x: Tensor, sx: number, bits: number, scope: string): string {
    const v = this.value(x);
    if (v.int8Scale !== undefined && v.int8Scale === sx) return v.name;
    const f = this.floatName(v, scope);
    return this.g.op('Quant', [f], `${scope}/Quant`, { data_bits: bits, scale_x: { float: sx }, ...PLATFORM }, THINKER);
  }

  scales(c: CapturedCall, withWeight: boolean): { sx: number; sw: number; so: number } {
    const s = c.scales ?? {};
    if (!s.x || !s.o || (withWeight && !s.w))
      throw new Error('its scales were not recorded (was the layer run in eval after calibration?)');
    return { sx: s.x, sw: s.w ?? 1, so: s.o };
  }
}
