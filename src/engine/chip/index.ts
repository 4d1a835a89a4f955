// linger.checkChip (docs/chip-rules.md): the chip's rules before training. A model at any stage
// is checked as the chip will see it: a fixed model by its thinker export, a float or traced one
// by its float export read as traceLayers + init make it (each Conv a Conv2dInt, each Linear a
// LinearInt, …). An ONNX model (a file's proto) is checked as it is.
import { isIntLayer } from '../linger/ops/registry';
import { Module } from '../nn/module';
import { buildOnnxModel } from '../onnx/export';
import type { onnx } from '../onnx/proto';
import { randn, Tensor } from '../tensor';
import { checkOnnxModel, sortFindings, type ChipReport, type CheckChipOptions } from './check';
import type { Finding } from './rules';

export { checkOnnxModel, formatFindings, ChipRulesError } from './check';
export type { ChipReport, CheckChipOptions } from './check';
export type { Finding, Severity } from './rules';
export type { ChipMemory, ChipLayerMemory } from './memory';
export { PLATFORMS } from './platforms';
export type { ChipPlatform } from './platforms';

/**
 * linger.checkChip: what the chip's toolchain (venus: thinker v1.1.0's tpacker) would refuse in
 * `model`, layer by layer, and the memory its plan needs. `example` is the input (a Tensor, or a
 * shape: batch first) the export runs on; the model is not changed (its train/eval mode is restored).
 */
export function checkChip(model: Module | onnx.IModelProto, example: Tensor | number[], opts: CheckChipOptions = {}): ChipReport {
  if (!(model instanceof Module)) return checkOnnxModel(model, opts);
  const x = example instanceof Tensor ? example : randn(example);
  const fixed = model.modules().some((m) => isIntLayer(m));
  const training = model.training;
  const warnings: string[] = [];
  let proto: onnx.IModelProto;
  try {
    model.eval();
    // static shapes, as the thinker export has: the batch is the example's (BmmInt aligns dim 0)
    proto = buildOnnxModel(model, x, {
      dialect: fixed ? 'thinker' : 'qdq',
      dynamicBatch: fixed ? undefined : false,
      onWarning: (w) => warnings.push(w),
    });
  } catch (e) {
    const msg = (e as Error).message;
    // the thinker export refuses a pattern thinker v1.1.0 rejects or miscomputes, naming the layer
    const m = /(\w+) at '([^']*)'/.exec(msg);
    const f: Finding = {
      layer: m ? m[2] : '',
      op: m ? m[1] : 'export',
      rule: 'export-refused',
      message: msg.replace(/^exportOnnx: /, ''),
      value: '',
      limit: '',
      severity: 'error',
      source: 'src/engine/onnx/export (docs/onnx.md, thinker conformance)',
    };
    return { platform: opts.platform ?? 'venus', toolchain: 'thinker v1.1.0 (tpacker)', findings: [f] };
  } finally {
    model.train(training);
  }
  const report = checkOnnxModel(proto, opts);
  for (const w of warnings) {
    const m = /(\w+) at '([^']*)'/.exec(w);
    report.findings.push({
      layer: m ? m[2] : '',
      op: m ? m[1] : 'export',
      rule: 'export-warning',
      message: w,
      value: '',
      limit: '',
      severity: 'warning',
      source: 'src/engine/onnx/export (docs/onnx.md, thinker conformance)',
    });
  }
  report.findings = sortFindings(report.findings);
  return report;
}
