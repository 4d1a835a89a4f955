// ONNX export at every stage (docs/onnx.md). One eval forward pass is recorded (capture.ts) and each
// call is lowered to ONNX nodes (lowering.ts):
// - float and traced stages: standard ops (a fused ConvBN is its folded conv; normalize clamps
//   are Clip);
// - fixed stage, dialect 'qdq': standard ops only, computing exactly what the engine's integer
//   eval computes (each op's lowering in linger/ops/<op>/ says why its arithmetic is exact);
// - fixed stage, dialect 'thinker': linger's custom `thinker` domain (Quant, Conv2dInt, …,
//   Dequant) with int8 weights and int32 biases, for the chip toolchain.
import * as path from 'node:path';
import { tf } from '../../backend/tf';
import { isIntLayer } from '../../linger/ops/registry';
import { Module } from '../../nn/module';
import { Tensor } from '../../tensor';
import { Capture, captureForExport } from '../capture';
import { encodeModel, onnx, THINKER, writeFileAtomic } from '../proto';
import { isPlainLayer } from './floatModules';
import { ChipRulesError, checkOnnxModel } from '../../chip/check';
import { describe, Lowering, OnnxExportError } from './lowering';

export { OnnxExportError, scopeName } from './lowering';

export type OnnxDialect = 'qdq' | 'thinker';

export interface ExportOptions {
  /** fixed-stage models: 'qdq' (standard ONNX, bit-exact in onnxruntime; default) or 'thinker' */
  dialect?: OnnxDialect;
  /** the default ONNX opset (13–21; default 13) */
  opset?: number;
  inputName?: string;
  outputName?: string;
  /**
   * export dim 0 of the input (and of the outputs that carry it) as a symbolic batch size (default
   * true; the 'thinker' dialect is always static: tpacker v1.1.0 needs static shapes, docs/onnx.md)
   */
  dynamicBatch?: boolean;
  /** what the export says about the file (a layer thinker v1.1.0 computes differently); default: process.emitWarning */
  onWarning?: (message: string) => void;
}

/**
 * linger.exportOnnx: records one eval forward pass of `model` on `dummyInput` and writes it as an
 * ONNX model to `file` (atomically: temp file, fsync, rename). Returns the file path.
 */
export async function exportOnnx(model: Module, dummyInput: Tensor, file: string, opts: ExportOptions = {}): Promise<string> {
  const proto = buildOnnxModel(model, dummyInput, opts);
  // a thinker file tpacker would refuse is not written: the findings say why (docs/chip-rules.md)
  if (proto.metadataProps?.some((p) => p.key === 'linger.dialect' && p.value === 'thinker')) {
    const report = checkOnnxModel(proto, { platform: 'venus' });
    const errors = report.findings.filter((f) => f.severity === 'error');
    if (errors.length) throw new ChipRulesError(errors, report.platform);
  }
  writeFileAtomic(file, encodeModel(proto));
  return path.resolve(file);
}

/** The ONNX model exportOnnx writes, as a protobuf object (tests and tools inspect it). */
export function buildOnnxModel(model: Module, dummyInput: Tensor, opts: ExportOptions = {}): onnx.IModelProto {
  const opset = opts.opset ?? 13;
  if (!Number.isInteger(opset) || opset < 13 || opset > 21)
    throw new OnnxExportError(`exportOnnx: opset ${opset} is not supported (13 to 21)`);
  const dialect = opts.dialect ?? 'qdq';
  if (dialect !== 'qdq' && dialect !== 'thinker')
    throw new OnnxExportError(`exportOnnx: unknown dialect '${String(dialect)}' (qdq or thinker)`);
  if (!(dummyInput instanceof Tensor)) throw new OnnxExportError('exportOnnx: dummyInput must be a Tensor');
  if (dummyInput.dtype !== 'float32' && dummyInput.dtype !== 'int32')
    throw new OnnxExportError('exportOnnx: dummyInput must be a float32 tensor (or int32 indices)');
  const fixed = model.modules().some((m) => isIntLayer(m));
  if (dialect === 'thinker' && !fixed) {
    throw new OnnxExportError(
      "exportOnnx: the 'thinker' dialect describes fixed-point layers; run linger.init (and QAT or calibrate) first, or export with the default dialect",
    );
  }
  if (fixed && dialect === 'thinker' && opts.dynamicBatch === true) {
    throw new OnnxExportError(
      "exportOnnx: the 'thinker' dialect has static shapes (tpacker packs no symbolic dimension): the batch is the dummy input's dim 0; leave dynamicBatch unset",
    );
  }
  const dynamicBatch = fixed && dialect === 'thinker' ? false : (opts.dynamicBatch ?? true);
  let graph!: onnx.IGraphProto;
  let warnings: string[] = [];
  tf.tidy(() => {
    const exportable = (m: Module) => isPlainLayer(m) || isIntLayer(m);
    const cap = captureForExport(model, dummyInput, exportable);
    // a second pass on other data tells constants made in forward from values computed by ops
    // the engine does not record (argmax, eq, casts), which would otherwise freeze into constants
    // (indices: the same values in reverse order, so they stay valid)
    const other =
      dummyInput.dtype === 'int32'
        ? new Tensor(tf.reshape(tf.reverse(tf.reshape(dummyInput.logical(), [-1])), dummyInput.shape))
        : new Tensor(tf.mul(tf.sin(tf.add(tf.mul(dummyInput.logical(), 12.9898), 0.7)), 2)); // not monotonic: argmax changes too
    checkUnrecorded(model, cap, captureForExport(model, other, exportable));
    const lowering = new Lowering(model, cap, { opset, dialect: fixed ? dialect : 'float', dynamicBatch });
    graph = lowering.run(opts.inputName ?? 'input', opts.outputName ?? 'output');
    warnings = lowering.warnings;
  });
  for (const w of warnings) (opts.onWarning ?? ((m: string) => process.emitWarning(m, 'LingerExportWarning')))(w);
  const domains = [{ domain: '', version: opset }];
  if (fixed && dialect === 'thinker') domains.push({ domain: THINKER, version: 1 });
  return {
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : opset >= 15 ? 8 : 7,
    producerName: 'linger-studio',
    producerVersion: '0.1.0',
    opsetImport: domains,
    graph,
    metadataProps: [
      { key: 'linger.stage', value: model.stage() },
      { key: 'linger.dialect', value: fixed ? dialect : 'float' },
    ],
  };
}

// ---- checks -------------------------------------------------------------------------------------

/**
 * Every tensor the forward used without a recorded producer must be a constant: a parameter or
 * buffer, or a value that did not change when the input did. Anything else was computed by an op
 * the engine does not record, and exporting it as a constant would be silently wrong.
 */
function checkUnrecorded(model: Module, a: Capture, b: Capture): void {
  const params = new Set<tf.Tensor>([...model.namedParameters(), ...model.namedBuffers()].map(([, p]) => p.raw));
  const same =
    a.calls.length === b.calls.length &&
    a.calls.every((c, i) => c.target === b.calls[i].target && c.inputs.length === b.calls[i].inputs.length) &&
    a.outputs.length === b.outputs.length;
  if (!same)
    throw new OnnxExportError(
      'exportOnnx: the forward pass runs different layers or ops for different inputs (data-dependent control flow), which one ONNX graph cannot express',
    );
  const produced = new Set<tf.Tensor>([a.input.raw]);
  const check = (t: Tensor | number, twin: Tensor | number, where: string) => {
    if (typeof t === 'number' || produced.has(t.raw) || params.has(t.raw)) return;
    const u = (twin as Tensor).dataSync(),
      v = t.dataSync();
    if (u.length !== v.length || v.some((x, i) => !Object.is(x, u[i]))) {
      throw new OnnxExportError(
        `exportOnnx: ${where} is computed by an op this engine does not record (e.g. argmax, eq, a dtype cast, clone), so it cannot be exported; compute it with recorded tensor ops or outside the model`,
      );
    }
  };
  a.calls.forEach((c, i) => {
    c.inputs.forEach((t, j) => check(t, b.calls[i].inputs[j], `input ${j} of ${describe(c, i)}`));
    for (const o of c.outputs) produced.add(o.raw);
  });
  a.outputs.forEach((t, i) => check(t, b.outputs[i], `output ${i} of the model`));
}
